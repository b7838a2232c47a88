-- +goose Up
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
CREATE INDEX projects_created_at_idx ON projects (created_at);

-- +goose Down
DROP TABLE projects;
