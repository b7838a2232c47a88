-- +goose Up
-- Keyset pagination walks (created_at, id) in both directions; the purge
-- finds expired rows by expires_at.
CREATE INDEX projects_created_at_id_idx ON projects (created_at, id);
DROP INDEX projects_created_at_idx;
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
CREATE INDEX email_verification_tokens_expires_at_idx ON email_verification_tokens (expires_at);

-- +goose Down
DROP INDEX email_verification_tokens_expires_at_idx;
DROP INDEX refresh_tokens_expires_at_idx;
DROP INDEX users_created_at_id_idx;
CREATE INDEX projects_created_at_idx ON projects (created_at);
DROP INDEX projects_created_at_id_idx;
