-- +goose Up
-- An OAuth client (client credentials grant) acts for its owner, the admin
-- who registered it, with a subset of the owner's scopes. Only HMACs of
-- secrets are stored; after a rotation the previous secret stays valid until
-- previous_expires_at.
CREATE TABLE oauth_clients (
    id                  TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL UNIQUE,
    owner_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    secret_hash         TEXT NOT NULL,
    pepper_version      INTEGER NOT NULL,
    previous_hash       TEXT,
    previous_pepper     INTEGER,
    previous_expires_at DATETIME,
    scopes              TEXT NOT NULL,
    audience            TEXT NOT NULL,
    token_ttl_seconds   INTEGER NOT NULL,
    auth_method         TEXT NOT NULL,
    disabled_at         DATETIME,
    created_at          DATETIME NOT NULL
);
CREATE INDEX oauth_clients_created_at_id_idx ON oauth_clients (created_at, id);

-- +goose Down
DROP TABLE oauth_clients;
