-- +goose Up
-- An API key acts for its owner with a subset of the owner's scopes. Only an
-- HMAC of the secret is stored (pepper_version names the server secret it was
-- made with); during a rotation the previous secret's HMAC stays valid until
-- previous_expires_at.
CREATE TABLE api_keys (
    id                  UUID PRIMARY KEY,
    user_id             UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    start               TEXT NOT NULL,
    secret_hash         TEXT NOT NULL UNIQUE,
    pepper_version      INTEGER NOT NULL,
    previous_hash       TEXT UNIQUE,
    previous_pepper     INTEGER,
    previous_expires_at TIMESTAMPTZ,
    scopes              TEXT NOT NULL,
    allowed_cidrs       TEXT NOT NULL DEFAULT '',
    rate_limit          TEXT NOT NULL DEFAULT '',
    expires_at          TIMESTAMPTZ,
    revoked_at          TIMESTAMPTZ,
    last_used_at        TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_keys_user_id_created_at_idx ON api_keys (user_id, created_at, id);
CREATE INDEX api_keys_created_at_id_idx ON api_keys (created_at, id);

-- +goose Down
DROP TABLE api_keys;
