-- +goose Up
-- Webhooks for auth events (Standard Webhooks). webhook_endpoints are the
-- receivers platform operators register; their signing secret is sealed
-- with MFA_KEY (the previous one kept until previous_expires_at, so a
-- rotation overlaps). webhook_messages are the outbox: one row per event
-- and endpoint, written in the transaction of the change, delivered by the
-- background worker with retries, then delivered or dead.
CREATE TABLE webhook_endpoints (
    id                     TEXT PRIMARY KEY,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    events                 TEXT NOT NULL,
    secret                 TEXT NOT NULL,
    key_version            INTEGER NOT NULL,
    previous_secret        TEXT,
    previous_key_version   INTEGER,
    previous_expires_at    DATETIME,
    disabled_at            DATETIME,
    created_by             TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at             DATETIME NOT NULL,
    updated_at             DATETIME NOT NULL
);

CREATE TABLE webhook_messages (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    delivered_at    DATETIME
);
CREATE INDEX webhook_messages_due_idx ON webhook_messages (status, next_attempt_at);
CREATE INDEX webhook_messages_endpoint_idx ON webhook_messages (endpoint_id, created_at);

-- +goose Down
DROP TABLE webhook_messages;
DROP TABLE webhook_endpoints;
