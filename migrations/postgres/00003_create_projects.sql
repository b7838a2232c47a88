-- +goose Up
CREATE TABLE projects (
    id          UUID PRIMARY KEY,
    owner_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
CREATE INDEX projects_created_at_idx ON projects (created_at);

-- +goose Down
DROP TABLE projects;
