-- +goose Up
-- Mail is written here in the same transaction as the change that causes
-- it, and a background worker delivers it (services/outbox.go): a slow or
-- dead mail relay never holds up a request, and no mail is lost when one
-- fails. status: pending, sent or abandoned (after MAIL_MAX_ATTEMPTS).
CREATE TABLE mail_outbox (
    id              UUID PRIMARY KEY,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_to_address_idx ON mail_outbox (to_address, created_at);

-- +goose Down
DROP TABLE mail_outbox;
