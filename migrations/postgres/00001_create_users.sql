-- +goose Up
CREATE TABLE users (
    id             UUID PRIMARY KEY,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL DEFAULT 'viewer' CHECK (role IN ('viewer', 'editor', 'admin')),
    tier           TEXT NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'paid', 'enterprise')),
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
-- Emails are unique whatever their case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE email_verification_tokens (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX email_verification_tokens_user_id_idx ON email_verification_tokens (user_id);

-- +goose Down
DROP TABLE email_verification_tokens;
DROP TABLE users;
