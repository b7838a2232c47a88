-- +goose Up
-- Enterprise sign-in per organization. org_domains are the domains an
-- organization claims, verified by a DNS TXT record; only a verified domain
-- routes an address to the organization's connections (home-realm
-- discovery) and only its addresses may sign in through them, so one
-- organization's IdP cannot speak for another's people. sso_connections are
-- the organization's OpenID Connect or SAML 2.0 identity providers (a
-- client secret sealed like the MFA secrets; a SAML IdP's metadata XML), with
-- how their groups map to the org's roles. saml_assertions are the assertion
-- IDs already used, kept until they expire: a replay fails on any instance.
-- These tables stay outside row-level security like memberships: they are
-- read across organizations at every sign-in, before any org is known.
-- users gain the name and picture a provider gives (attribute mapping).
ALTER TABLE organizations ADD COLUMN sso_enforced BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN picture_url TEXT NOT NULL DEFAULT '';

CREATE TABLE org_domains (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain      TEXT NOT NULL,
    -- the value to publish at _tollgate-challenge.<domain>: public by design
    token       TEXT NOT NULL,
    verified_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, domain)
);
-- one organization per verified domain
CREATE UNIQUE INDEX org_domains_verified_idx ON org_domains (domain) WHERE verified_at IS NOT NULL;

CREATE TABLE sso_connections (
    id                  UUID PRIMARY KEY,
    org_id              UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind                TEXT NOT NULL, -- oidc or saml
    name                TEXT NOT NULL,
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    issuer              TEXT NOT NULL DEFAULT '',
    client_id           TEXT NOT NULL DEFAULT '',
    client_secret       TEXT NOT NULL DEFAULT '', -- sealed with MFA_KEY
    scopes              TEXT NOT NULL DEFAULT '', -- beyond openid email profile, space-separated ("groups" for Okta)
    key_version         INTEGER NOT NULL DEFAULT 0,
    idp_metadata        TEXT NOT NULL DEFAULT '',
    allow_idp_initiated BOOLEAN NOT NULL DEFAULT FALSE,
    -- attribute (SAML) or claim (OIDC) names, and the group -> role map
    email_attribute     TEXT NOT NULL DEFAULT '',
    name_attribute      TEXT NOT NULL DEFAULT '',
    groups_attribute    TEXT NOT NULL DEFAULT '',
    role_mapping        TEXT NOT NULL DEFAULT '{}',
    default_role        TEXT NOT NULL DEFAULT 'viewer',
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX sso_connections_org_id_idx ON sso_connections (org_id);

CREATE TABLE saml_assertions (
    id         TEXT PRIMARY KEY, -- SHA-256 of the connection and the assertion ID
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX saml_assertions_expires_at_idx ON saml_assertions (expires_at);

ALTER TABLE oauth_flows ADD COLUMN connection_id UUID REFERENCES sso_connections (id) ON DELETE CASCADE;
ALTER TABLE oauth_codes ADD COLUMN org_id UUID REFERENCES organizations (id) ON DELETE CASCADE;

-- +goose Down
ALTER TABLE oauth_codes DROP COLUMN org_id;
ALTER TABLE oauth_flows DROP COLUMN connection_id;
DROP TABLE saml_assertions;
DROP TABLE sso_connections;
DROP TABLE org_domains;
ALTER TABLE users DROP COLUMN picture_url;
ALTER TABLE users DROP COLUMN name;
ALTER TABLE organizations DROP COLUMN sso_enforced;
