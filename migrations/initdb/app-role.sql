-- docker-compose.yml's PostgreSQL runs this once, on an empty volume: the
-- role the app connects as. It owns nothing and is neither superuser nor
-- BYPASSRLS, so row-level security binds it; `migrate` (as the tables'
-- owner, DATABASE_OWNER_URL) grants it the rows after each migration.
-- A development password, like the owner's in docker-compose.yml.
CREATE ROLE tollgate_app LOGIN PASSWORD 'tollgate_app' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
