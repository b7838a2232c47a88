-- +goose Up
-- Row-level security: a second wall behind the services' own org_id
-- filters. Each org-scoped transaction sets app.org_id (set_config(...,
-- true), so it ends with the transaction and pooled connections never
-- carry it over); a query that forgot its org filter then still sees only
-- that organization's rows, and one run outside any scope sees none.
-- app.all_orgs = 'on' opens every organization to the few reads that must
-- find the org first (a key by its hash, an invitation by its token) and
-- to platform work (purges, a user's keys across orgs).
-- FORCE applies the policies to the tables' owner too; superusers and
-- BYPASSRLS roles still skip them, so the app must not connect as one
-- (DATABASE_URL is the app's role, DATABASE_OWNER_URL the migrations').
-- memberships and audit_events stay outside: memberships are the map of
-- who is where, read across organizations at every sign-in, and the audit
-- log is one hash chain verified across all of them.
-- +goose StatementBegin
DO $$
DECLARE
    t text;
    allowed text := $p$org_id = NULLIF(current_setting('app.org_id', true), '')::uuid OR current_setting('app.all_orgs', true) = 'on'$p$;
BEGIN
    FOREACH t IN ARRAY ARRAY['projects', 'api_keys', 'oauth_clients', 'invitations'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY org_isolation ON %I USING (%s) WITH CHECK (%s)', t, allowed, allowed);
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['invitations', 'oauth_clients', 'api_keys', 'projects'] LOOP
        EXECUTE format('DROP POLICY org_isolation ON %I', t);
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
END $$;
-- +goose StatementEnd
