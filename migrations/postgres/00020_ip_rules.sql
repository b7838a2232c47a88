-- +goose Up
-- IP allow and block rules (CIDR, IPv4 or IPv6): from the admin API, or
-- temporary blocks made after repeated rate-limit refusals (source auto).
-- Instances keep a copy in memory and reload it when another instance
-- changes a rule (a version counter in Redis). Rules from configuration
-- are not stored.
CREATE TABLE ip_rules (
    id         UUID PRIMARY KEY,
    cidr       TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('allow', 'block')),
    source     TEXT NOT NULL CHECK (source IN ('admin', 'auto')),
    reason     TEXT NOT NULL DEFAULT '',
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);
CREATE INDEX ip_rules_expires_at_idx ON ip_rules (expires_at);

-- +goose Down
DROP TABLE ip_rules;
