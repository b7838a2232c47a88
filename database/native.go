package database

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/database/scan"
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
// inside one, GORM's connection is the *sql.Tx. A scope in ctx
// (scan.Scoped) is set in the same batch, which PostgreSQL runs as one
// implicit transaction: the setting holds for the read and ends with it.
func (p pgConnPool) QueryNative(ctx context.Context, query string, args ...any) (scan.Rows, error) {
	s, ok := scan.ScopeOf(ctx)
	if !ok {
		return p.pool.Query(ctx, query, args...)
	}
	b := &pgx.Batch{}
	b.Queue("SELECT set_config($1, $2, true)", s.Setting, s.Value)
	b.Queue(query, args...)
	br := p.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, batch: br}, nil
}

// batchRows are the read's rows; closing them ends the batch too, which
// gives the connection back to the pool.
type batchRows struct {
	pgx.Rows
	batch pgx.BatchResults
	err   error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	r.err = r.batch.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// errScopedGORM is a bug in the caller: a context scoped for the native
// path reached one of GORM's own queries, which would run unscoped (and, on
// a table under row-level security, see nothing).
var errScopedGORM = errors.New("database: a scoped read (scan.Scoped) reached GORM; run it in a transaction that sets the scope")

// refuseScopedGORM registers the check behind errScopedGORM on every kind
// of statement GORM runs.
func refuseScopedGORM(db *gorm.DB) error {
	check := func(tx *gorm.DB) {
		if _, scoped := scan.ScopeOf(tx.Statement.Context); scoped && !tx.DryRun {
			_ = tx.AddError(errScopedGORM)
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().Before("gorm:query").Register("tollgate:refuse_scoped", check),
		cb.Row().Before("gorm:row").Register("tollgate:refuse_scoped", check),
		cb.Raw().Before("gorm:raw").Register("tollgate:refuse_scoped", check),
		cb.Create().Before("gorm:create").Register("tollgate:refuse_scoped", check),
		cb.Update().Before("gorm:update").Register("tollgate:refuse_scoped", check),
		cb.Delete().Before("gorm:delete").Register("tollgate:refuse_scoped", check),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
