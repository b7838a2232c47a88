-- +goose Up
-- Recovery codes are stored as an HMAC keyed with MFA_KEY of key_version
-- and salted with the user id; 0 marks the unkeyed SHA-256 of older codes.
ALTER TABLE mfa_recovery_codes ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE mfa_recovery_codes DROP COLUMN key_version;
