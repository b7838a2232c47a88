// Package migrations embeds the versioned SQL schema, one history per
// dialect with the same version numbers, and applies it with goose.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialects this package holds migrations for.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// FS returns the migrations of one dialect.
func FS(dialect string) (fs.FS, error) {
	return fs.Sub(files, dialect)
}

// Provider builds a goose provider for db. On PostgreSQL it takes an
// advisory session lock, so several instances starting at once migrate once.
func Provider(db *sql.DB, dialect string) (*goose.Provider, error) {
	fsys, err := FS(dialect)
	if err != nil {
		return nil, err
	}
	switch dialect {
	case Postgres:
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		return goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	case SQLite:
		return goose.NewProvider(goose.DialectSQLite3, db, fsys)
	default:
		return nil, fmt.Errorf("no migrations for dialect %q", dialect)
	}
}

// Up applies every pending migration and returns the versions it applied.
func Up(ctx context.Context, db *sql.DB, dialect string) ([]int64, error) {
	p, err := Provider(db, dialect)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply migrations: %w", err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// Down rolls back the most recent migration.
func Down(ctx context.Context, db *sql.DB, dialect string) error {
	p, err := Provider(db, dialect)
	if err != nil {
		return err
	}
	if _, err := p.Down(ctx); err != nil {
		return fmt.Errorf("roll back migration: %w", err)
	}
	return nil
}

// Status writes one line per migration: version, state, file.
func Status(ctx context.Context, db *sql.DB, dialect string, w io.Writer) error {
	p, err := Provider(db, dialect)
	if err != nil {
		return err
	}
	list, err := p.Status(ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "%05d  %-28s  %s\n", s.Source.Version, applied, s.Source.Path)
	}
	return nil
}
