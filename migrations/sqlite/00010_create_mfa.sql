-- +goose Up
-- TOTP multi-factor authentication. The secret is encrypted at rest
-- (AES-GCM with MFA_KEY of key_version); last_step is the last accepted
-- time step, so a code works once. Recovery codes and the short-lived
-- login challenges (mfa_token) are stored as SHA-256 only.
CREATE TABLE mfa_totp (
    user_id      TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    key_version  INTEGER NOT NULL,
    confirmed_at DATETIME,
    last_step    INTEGER NOT NULL DEFAULT 0,
    created_at   DATETIME NOT NULL
);
CREATE TABLE mfa_recovery_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL UNIQUE,
    used_at    DATETIME,
    created_at DATETIME NOT NULL
);
CREATE INDEX mfa_recovery_codes_user_id_idx ON mfa_recovery_codes (user_id);
CREATE TABLE mfa_challenges (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at DATETIME NOT NULL,
    used_at    DATETIME,
    attempts   INTEGER NOT NULL DEFAULT 0,
    client_ip  TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE mfa_challenges;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_totp;
