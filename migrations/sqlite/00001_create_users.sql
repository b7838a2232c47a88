-- +goose Up
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL DEFAULT 'viewer' CHECK (role IN ('viewer', 'editor', 'admin')),
    tier           TEXT NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'paid', 'enterprise')),
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     DATETIME NOT NULL,
    updated_at     DATETIME NOT NULL
);
-- Emails are unique whatever their case.
CREATE UNIQUE INDEX users_email_lower_key ON users (email COLLATE NOCASE);

CREATE TABLE email_verification_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at DATETIME NOT NULL,
    used_at    DATETIME,
    created_at DATETIME NOT NULL
);
CREATE INDEX email_verification_tokens_user_id_idx ON email_verification_tokens (user_id);

-- +goose Down
DROP TABLE email_verification_tokens;
DROP TABLE users;
