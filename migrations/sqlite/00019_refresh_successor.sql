-- +goose Up
-- A rotated refresh token keeps its successor, sealed with MFA_KEY, for
-- REFRESH_REUSE_GRACE: a second tab or a retried request that presents it
-- in that window gets the same successor instead of an error. The purge
-- clears it once the grace period is over.
ALTER TABLE refresh_tokens ADD COLUMN successor_secret TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_key_version INTEGER;

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN successor_key_version;
ALTER TABLE refresh_tokens DROP COLUMN successor_secret;
