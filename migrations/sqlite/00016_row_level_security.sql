-- +goose Up
-- PostgreSQL's row-level security (the same version there) has no SQLite
-- equivalent; SQLite is one process's file, and the services' org_id
-- filters are its only wall. The version keeps both histories aligned.
SELECT 1;

-- +goose Down
SELECT 1;
