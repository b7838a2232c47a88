-- +goose NO TRANSACTION
-- +goose Up
-- Organizations (tenants); see the PostgreSQL migration for the model.
-- Foreign keys are off meanwhile, as in 00014: users is rebuilt without
-- its role (SQLite cannot drop a column a constraint names), and the
-- tenants' tables gain org_id with ADD COLUMN, whose default (the default
-- organization, for the rows already there) SQLite cannot drop later; the
-- app always writes org_id.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    tier       TEXT REFERENCES tiers (name),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX organizations_created_at_id_idx ON organizations (created_at, id);
INSERT INTO organizations (id, name, slug, tier, created_at, updated_at)
    VALUES ('00000000-0000-4000-8000-000000000001', 'Default', 'default', NULL, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'), strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));

INSERT INTO roles (name) VALUES ('owner');
CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL REFERENCES roles (name),
    created_at DATETIME NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id, created_at);
CREATE INDEX memberships_org_id_created_at_idx ON memberships (org_id, created_at, user_id);
INSERT INTO memberships (org_id, user_id, role, created_at)
    SELECT '00000000-0000-4000-8000-000000000001', id, role, created_at FROM users;

CREATE TABLE users_new (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL COLLATE NOCASE,
    password_hash       TEXT NOT NULL,
    tier                TEXT NOT NULL DEFAULT 'free' REFERENCES tiers (name),
    email_verified      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    password_changed_at DATETIME
);
INSERT INTO users_new (id, email, password_hash, tier, email_verified, created_at, updated_at, password_changed_at)
    SELECT id, email, password_hash, tier, email_verified, created_at, updated_at, password_changed_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE UNIQUE INDEX users_email_lower_key ON users (email COLLATE NOCASE);
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email       TEXT NOT NULL COLLATE NOCASE,
    role        TEXT NOT NULL REFERENCES roles (name),
    token_hash  TEXT NOT NULL UNIQUE,
    inviter_id  TEXT REFERENCES users (id) ON DELETE SET NULL,
    expires_at  DATETIME NOT NULL,
    accepted_at DATETIME,
    accepted_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  DATETIME,
    created_at  DATETIME NOT NULL
);
CREATE INDEX invitations_org_id_created_at_idx ON invitations (org_id, created_at, id);
CREATE INDEX invitations_expires_at_idx ON invitations (expires_at);

ALTER TABLE projects ADD COLUMN org_id TEXT NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001' REFERENCES organizations (id) ON DELETE CASCADE;
CREATE INDEX projects_org_id_created_at_id_idx ON projects (org_id, created_at, id);
ALTER TABLE api_keys ADD COLUMN org_id TEXT NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001' REFERENCES organizations (id) ON DELETE CASCADE;
CREATE INDEX api_keys_org_id_idx ON api_keys (org_id);
ALTER TABLE oauth_clients ADD COLUMN org_id TEXT NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001' REFERENCES organizations (id) ON DELETE CASCADE;
CREATE INDEX oauth_clients_org_id_idx ON oauth_clients (org_id);
ALTER TABLE refresh_tokens ADD COLUMN org_id TEXT REFERENCES organizations (id) ON DELETE SET NULL;
CREATE INDEX refresh_tokens_org_id_idx ON refresh_tokens (org_id);
ALTER TABLE audit_events ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_org_id_idx ON audit_events (org_id, seq);
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- Rows of other organizations go; the default organization's stay. The
-- columns with a REFERENCES clause cannot be dropped, so their tables are
-- rebuilt as they were.
PRAGMA foreign_keys = OFF;
BEGIN;
DROP INDEX audit_events_org_id_idx;
ALTER TABLE audit_events DROP COLUMN org_id;

CREATE TABLE refresh_tokens_old (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  DATETIME NOT NULL,
    revoked_at  DATETIME,
    replaced_by TEXT,
    created_at  DATETIME NOT NULL,
    client_ip   TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT ''
);
INSERT INTO refresh_tokens_old SELECT id, user_id, family_id, token_hash, expires_at, revoked_at, replaced_by, created_at, client_ip, user_agent FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_old RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

CREATE TABLE oauth_clients_old (
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
INSERT INTO oauth_clients_old SELECT id, client_id, owner_id, name, secret_hash, pepper_version, previous_hash, previous_pepper,
    previous_expires_at, scopes, audience, token_ttl_seconds, auth_method, disabled_at, created_at FROM oauth_clients WHERE org_id = '00000000-0000-4000-8000-000000000001';
DROP TABLE oauth_clients;
ALTER TABLE oauth_clients_old RENAME TO oauth_clients;
CREATE INDEX oauth_clients_created_at_id_idx ON oauth_clients (created_at, id);

CREATE TABLE api_keys_old (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    start               TEXT NOT NULL,
    secret_hash         TEXT NOT NULL UNIQUE,
    pepper_version      INTEGER NOT NULL,
    previous_hash       TEXT UNIQUE,
    previous_pepper     INTEGER,
    previous_expires_at DATETIME,
    scopes              TEXT NOT NULL,
    allowed_cidrs       TEXT NOT NULL DEFAULT '',
    rate_limit          TEXT NOT NULL DEFAULT '',
    expires_at          DATETIME,
    revoked_at          DATETIME,
    last_used_at        DATETIME,
    created_at          DATETIME NOT NULL
);
INSERT INTO api_keys_old SELECT id, user_id, name, start, secret_hash, pepper_version, previous_hash, previous_pepper, previous_expires_at,
    scopes, allowed_cidrs, rate_limit, expires_at, revoked_at, last_used_at, created_at FROM api_keys WHERE org_id = '00000000-0000-4000-8000-000000000001';
DROP TABLE api_keys;
ALTER TABLE api_keys_old RENAME TO api_keys;
CREATE INDEX api_keys_user_id_created_at_idx ON api_keys (user_id, created_at, id);
CREATE INDEX api_keys_created_at_id_idx ON api_keys (created_at, id);

CREATE TABLE projects_old (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);
INSERT INTO projects_old SELECT id, owner_id, name, description, created_at, updated_at FROM projects WHERE org_id = '00000000-0000-4000-8000-000000000001';
DROP TABLE projects;
ALTER TABLE projects_old RENAME TO projects;
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
CREATE INDEX projects_created_at_id_idx ON projects (created_at, id);

DROP TABLE invitations;
CREATE TABLE users_old (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL COLLATE NOCASE,
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL DEFAULT 'viewer' REFERENCES roles (name),
    tier                TEXT NOT NULL DEFAULT 'free' REFERENCES tiers (name),
    email_verified      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    password_changed_at DATETIME
);
INSERT INTO users_old (id, email, password_hash, role, tier, email_verified, created_at, updated_at, password_changed_at)
    SELECT u.id, u.email, u.password_hash, COALESCE((SELECT CASE m.role WHEN 'owner' THEN 'admin' ELSE m.role END FROM memberships m
        WHERE m.user_id = u.id AND m.org_id = '00000000-0000-4000-8000-000000000001'), 'viewer'), u.tier, u.email_verified, u.created_at, u.updated_at, u.password_changed_at FROM users u;
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
CREATE UNIQUE INDEX users_email_lower_key ON users (email COLLATE NOCASE);
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
DROP TABLE memberships;
DELETE FROM roles WHERE name = 'owner';
DROP TABLE organizations;
COMMIT;
PRAGMA foreign_keys = ON;
