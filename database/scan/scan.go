// Package scan is the fast read path for hot lists: rows scanned straight
// into a model's fields (Scannable), through pgx's own protocol on
// PostgreSQL (database.pgConnPool implements NativeQuerier). It imports no
// driver, so the services that use it stay light.
package scan

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Scannable is a model that names its columns and the fields they scan
// into, in the same order. Lists of such models scan each row straight into
// its fields instead of through GORM's reflective scanner, which was a
// quarter of the CPU of GET /projects under load.
type Scannable interface {
	Columns() []string
	Fields() []any
}

// FindOne reads the row q selects into dest, as Find does; no row is
// gorm.ErrRecordNotFound, as with GORM's First.
func FindOne[M any](q *gorm.DB, dest *M) error {
	items := make([]M, 0, 1)
	if err := Find(q.Limit(1), &items); err != nil {
		return err
	}
	if len(items) == 0 {
		return gorm.ErrRecordNotFound
	}
	*dest = items[0]
	return nil
}

// Find runs q into items: directly when *M is Scannable (through pgx's own
// protocol on PostgreSQL outside transactions), else with GORM.
func Find[M any](q *gorm.DB, items *[]M) error {
	var probe M
	s, ok := any(&probe).(Scannable)
	if !ok {
		return q.Find(items).Error
	}
	q = q.Model(&probe).Select(s.Columns())
	var rows rowReader
	nativeConn, native := q.Statement.ConnPool.(NativeQuerier)
	if native {
		stmt := q.Session(&gorm.Session{DryRun: true}).Find(&[]M{}).Statement
		if stmt.Error != nil {
			return stmt.Error
		}
		r, err := nativeConn.QueryNative(q.Statement.Context, stmt.SQL.String(), stmt.Vars...)
		if err != nil {
			return err
		}
		defer r.Close()
		rows = r
	} else {
		r, err := q.Rows()
		if err != nil {
			return err
		}
		defer func() { _ = r.Close() }()
		rows = r
	}
	for rows.Next() {
		*items = append(*items, probe)
		fields := any(&(*items)[len(*items)-1]).(Scannable).Fields()
		if native {
			binaryUUIDs(fields)
		}
		if err := rows.Scan(fields...); err != nil {
			return err
		}
	}
	return rows.Err()
}

// binaryUUIDs retargets *uuid.UUID fields at their [16]byte: pgx then
// copies the 16 bytes it received, where through uuid.UUID's sql.Scanner it
// formatted them as text for uuid to parse back (3 allocations each, a
// third of a list page's).
func binaryUUIDs(fields []any) {
	for i, f := range fields {
		if u, ok := f.(*uuid.UUID); ok {
			fields[i] = (*[16]byte)(u)
		}
	}
}

// rowReader is what find needs of *sql.Rows and pgx.Rows.
type rowReader interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// Rows is a result set read row by row; pgx.Rows fits it.
type Rows = interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// NativeQuerier is a connection pool with a read path faster than
// database/sql (the database package's pool on PostgreSQL).
type NativeQuerier interface {
	QueryNative(ctx context.Context, query string, args ...any) (Rows, error)
}

// A Scope is a transaction-local setting (set_config(Setting, Value, true))
// that a read must run under: on PostgreSQL, the organization row-level
// security confines it to. The native querier sends the setting and the
// read in one pipelined batch, one implicit transaction and one round trip,
// where BEGIN, set_config, the read and COMMIT took four.
type Scope struct{ Setting, Value string }

type scopeKey struct{}

// Scoped returns ctx carrying scope for the reads made with it. Only Find
// and FindOne on a NativeQuerier honor it; GORM's own queries do not, and
// the database package refuses them (a scoped context is not a transaction).
func Scoped(ctx context.Context, scope Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, scope)
}

// ScopeOf returns the scope ctx carries, if any.
func ScopeOf(ctx context.Context) (Scope, bool) {
	s, ok := ctx.Value(scopeKey{}).(Scope)
	return s, ok
}
