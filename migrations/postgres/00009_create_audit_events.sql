-- +goose Up
-- The audit log: one row per security-relevant change, written in the same
-- transaction as the change. Rows form a hash chain: hash is an HMAC (with
-- the server's audit key) over the previous row's hash and this row's
-- content, so an edited, removed or inserted row breaks verification.
-- audit_chain holds the head (the last row) and the anchor (the last row
-- removed by the retention purge, where verification starts).
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    target_type TEXT NOT NULL DEFAULT '',
    target_id   TEXT NOT NULL DEFAULT '',
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, seq);
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);
CREATE TABLE audit_chain (
    id          INTEGER PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    last_hash   TEXT NOT NULL,
    anchor_seq  BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL
);
INSERT INTO audit_chain (id, last_seq, last_hash, anchor_seq, anchor_hash) VALUES (1, 0, '', 0, '');

-- +goose Down
DROP TABLE audit_chain;
DROP TABLE audit_events;
