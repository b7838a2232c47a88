-- +goose Up
-- Mail bodies carry reset and verification links: they are stored as
-- AES-GCM ciphertext under the MFA key of key_version (0: clear, rows from
-- before this migration) and emptied once sent or abandoned. Bodies of mail
-- already sent go now.
ALTER TABLE mail_outbox ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
UPDATE mail_outbox SET body = '' WHERE status <> 'pending';

-- +goose Down
ALTER TABLE mail_outbox DROP COLUMN key_version;
