-- +goose NO TRANSACTION
-- +goose Up
-- The roles and tiers an account may hold are rows, not a CHECK list: a
-- fork adds one with an INSERT (docs/make-it-yours.md), and caller.Roles()
-- and caller.Tiers() must list the same (TestRolesAndTiersMatchTheDatabase).
-- SQLite cannot change a column's constraints, so users is rebuilt, as its
-- documentation says (foreign keys off meanwhile: the tables that
-- reference users keep their rows; the app holds one connection).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE roles (name TEXT PRIMARY KEY);
INSERT INTO roles (name) VALUES ('viewer'), ('editor'), ('admin');
CREATE TABLE tiers (name TEXT PRIMARY KEY);
INSERT INTO tiers (name) VALUES ('free'), ('paid'), ('enterprise');
CREATE TABLE users_new (
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
INSERT INTO users_new (id, email, password_hash, role, tier, email_verified, created_at, updated_at, password_changed_at)
    SELECT id, email, password_hash, role, tier, email_verified, created_at, updated_at, password_changed_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE UNIQUE INDEX users_email_lower_key ON users (email COLLATE NOCASE);
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE users_old (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL COLLATE NOCASE,
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL DEFAULT 'viewer' CHECK (role IN ('viewer', 'editor', 'admin')),
    tier                TEXT NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'paid', 'enterprise')),
    email_verified      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    password_changed_at DATETIME
);
INSERT INTO users_old SELECT id, email, password_hash, role, tier, email_verified, created_at, updated_at, password_changed_at FROM users;
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
CREATE UNIQUE INDEX users_email_lower_key ON users (email COLLATE NOCASE);
CREATE INDEX users_created_at_id_idx ON users (created_at, id);
DROP TABLE tiers;
DROP TABLE roles;
COMMIT;
PRAGMA foreign_keys = ON;
