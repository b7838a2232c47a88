-- +goose Up
-- The roles and tiers an account may hold are rows, not a CHECK list: a
-- fork adds one with an INSERT (docs/make-it-yours.md), and caller.Roles()
-- and caller.Tiers() must list the same (TestRolesAndTiersMatchTheDatabase).
CREATE TABLE roles (name TEXT PRIMARY KEY);
INSERT INTO roles (name) VALUES ('viewer'), ('editor'), ('admin');
CREATE TABLE tiers (name TEXT PRIMARY KEY);
INSERT INTO tiers (name) VALUES ('free'), ('paid'), ('enterprise');
ALTER TABLE users DROP CONSTRAINT users_role_check, DROP CONSTRAINT users_tier_check;
ALTER TABLE users ADD CONSTRAINT users_role_fkey FOREIGN KEY (role) REFERENCES roles (name),
    ADD CONSTRAINT users_tier_fkey FOREIGN KEY (tier) REFERENCES tiers (name);

-- +goose Down
ALTER TABLE users DROP CONSTRAINT users_role_fkey, DROP CONSTRAINT users_tier_fkey;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('viewer', 'editor', 'admin')),
    ADD CONSTRAINT users_tier_check CHECK (tier IN ('free', 'paid', 'enterprise'));
DROP TABLE tiers;
DROP TABLE roles;
