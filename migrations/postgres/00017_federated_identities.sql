-- +goose Up
-- Sign-in through an identity provider (OpenID Connect). identities link a
-- provider's subject to a user; oauth_flows are the sign-ins in progress
-- (state, nonce and PKCE verifier, bound to the browser that started
-- them); oauth_codes are the one-time codes the callback hands the front
-- end, traded once for a token pair. Secrets are stored as SHA-256 only.
CREATE TABLE identities (
    id             UUID PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    subject        TEXT NOT NULL,
    email          TEXT NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    last_used_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user_id_idx ON identities (user_id);

CREATE TABLE oauth_flows (
    id             UUID PRIMARY KEY,
    state_hash     TEXT NOT NULL UNIQUE,
    browser_hash   TEXT NOT NULL,
    provider       TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    verifier       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL DEFAULT '',
    -- set: linking a provider to this signed-in user, not a sign-in
    link_user_id   UUID REFERENCES users (id) ON DELETE CASCADE,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE oauth_codes (
    id             UUID PRIMARY KEY,
    code_hash      TEXT NOT NULL UNIQUE,
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    code_challenge TEXT NOT NULL DEFAULT '',
    -- a link's code carries the identity to link (a sign-in's names the user)
    link           BOOLEAN NOT NULL DEFAULT FALSE,
    subject        TEXT NOT NULL DEFAULT '',
    email          TEXT NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE oauth_codes;
DROP TABLE oauth_flows;
DROP TABLE identities;
