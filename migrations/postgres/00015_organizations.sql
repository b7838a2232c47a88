-- +goose Up
-- Organizations (tenants). Every user-made row a tenant owns carries
-- org_id; a role is held per organization (memberships), not per user.
-- One organization exists from the start, the default: an app that never
-- makes a second one works as before it (registration joins it, its
-- owners and admins are the platform operators). Its tier is NULL: each
-- member keeps their own (users.tier), as before organizations.
CREATE TABLE organizations (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    tier       TEXT REFERENCES tiers (name),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX organizations_created_at_id_idx ON organizations (created_at, id);
INSERT INTO organizations (id, name, slug, tier, created_at, updated_at)
    VALUES ('00000000-0000-4000-8000-000000000001', 'Default', 'default', NULL, now(), now());

INSERT INTO roles (name) VALUES ('owner');
CREATE TABLE memberships (
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL REFERENCES roles (name),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id, created_at);
CREATE INDEX memberships_org_id_created_at_idx ON memberships (org_id, created_at, user_id);
-- Every account joins the default organization with the role it had.
INSERT INTO memberships (org_id, user_id, role, created_at)
    SELECT '00000000-0000-4000-8000-000000000001', id, role, created_at FROM users;
ALTER TABLE users DROP COLUMN role;

-- An invitation's token is mailed; only its SHA-256 is kept.
CREATE TABLE invitations (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL REFERENCES roles (name),
    token_hash  TEXT NOT NULL UNIQUE,
    inviter_id  UUID REFERENCES users (id) ON DELETE SET NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    accepted_by UUID REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX invitations_org_id_created_at_idx ON invitations (org_id, created_at, id);
CREATE INDEX invitations_expires_at_idx ON invitations (expires_at);

-- The rows a tenant owns. Existing ones belong to the default organization.
ALTER TABLE projects ADD COLUMN org_id UUID NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001'
    REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE projects ALTER COLUMN org_id DROP DEFAULT;
CREATE INDEX projects_org_id_created_at_id_idx ON projects (org_id, created_at, id);
ALTER TABLE api_keys ADD COLUMN org_id UUID NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001'
    REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE api_keys ALTER COLUMN org_id DROP DEFAULT;
CREATE INDEX api_keys_org_id_idx ON api_keys (org_id);
ALTER TABLE oauth_clients ADD COLUMN org_id UUID NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001'
    REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE oauth_clients ALTER COLUMN org_id DROP DEFAULT;
CREATE INDEX oauth_clients_org_id_idx ON oauth_clients (org_id);
-- A session's active organization (NULL: none, or it was deleted).
ALTER TABLE refresh_tokens ADD COLUMN org_id UUID REFERENCES organizations (id) ON DELETE SET NULL;
CREATE INDEX refresh_tokens_org_id_idx ON refresh_tokens (org_id);
-- Audit rows name the organization they happened in ('' : none); no
-- foreign key: the log outlives what it describes.
ALTER TABLE audit_events ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_org_id_idx ON audit_events (org_id, seq);

-- +goose Down
DROP INDEX audit_events_org_id_idx;
ALTER TABLE audit_events DROP COLUMN org_id;
ALTER TABLE refresh_tokens DROP COLUMN org_id;
DELETE FROM oauth_clients WHERE org_id <> '00000000-0000-4000-8000-000000000001';
ALTER TABLE oauth_clients DROP COLUMN org_id;
DELETE FROM api_keys WHERE org_id <> '00000000-0000-4000-8000-000000000001';
ALTER TABLE api_keys DROP COLUMN org_id;
DELETE FROM projects WHERE org_id <> '00000000-0000-4000-8000-000000000001';
ALTER TABLE projects DROP COLUMN org_id;
DROP TABLE invitations;
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'viewer' REFERENCES roles (name);
UPDATE users SET role = CASE m.role WHEN 'owner' THEN 'admin' ELSE m.role END
    FROM memberships m WHERE m.user_id = users.id AND m.org_id = '00000000-0000-4000-8000-000000000001';
DROP TABLE memberships;
DELETE FROM roles WHERE name = 'owner';
DROP TABLE organizations;
