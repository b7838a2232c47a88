-- +goose Up
-- When the password was last set: a reset ends the API keys and OAuth
-- clients created since (whoever knew the old password may have made them).
-- Until the first change it is the account's creation.
ALTER TABLE users ADD COLUMN password_changed_at DATETIME;
UPDATE users SET password_changed_at = created_at;

-- +goose Down
ALTER TABLE users DROP COLUMN password_changed_at;
