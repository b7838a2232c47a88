package database

import (
	"context"
	"database/sql"

	"github.com/tollgate/tollgate/database/scan"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pgConnPool is GORM's connection pool on PostgreSQL: database/sql on the
// pgx pool for everything GORM does, and, for hot reads that scan their own
// rows, pgx's own query path (binary protocol, no database/sql conversions:
// half the allocations of a list page; see scan.Find).
type pgConnPool struct {
	*sql.DB
	pool *pgxpool.Pool
}

// GetDBConn is how GORM's DB() finds the *sql.DB behind the pool.
func (p pgConnPool) GetDBConn() (*sql.DB, error) { return p.DB, nil }

// QueryNative runs a read through pgx directly. Outside transactions only:
// inside one, GORM's connection is the *sql.Tx.
func (p pgConnPool) QueryNative(ctx context.Context, query string, args ...any) (scan.Rows, error) {
	return p.pool.Query(ctx, query, args...)
}
