// Package database opens the GORM connection: PostgreSQL when a URL is
// given, otherwise the embedded SQLite file. It also tells connection
// faults apart from bugs (faults.go), so an outage answers 503, not 500.
package database

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/migrations"
)

// DB is an open database with its dialect.
type DB struct {
	*gorm.DB
	Dialect     string
	Description string        // safe to log: no password
	pool        *pgxpool.Pool // PostgreSQL: the pool behind database/sql
}

// Options say where the database is and how to pool connections to it.
type Options struct {
	PostgresURL string // empty: the SQLite file at SQLitePath
	SQLitePath  string

	MaxOpenConns     int
	MaxIdleConns     int
	ConnMaxLifetime  time.Duration
	ConnectTimeout   time.Duration // PostgreSQL: dialling, TLS and start-up
	StatementTimeout time.Duration // PostgreSQL: server-side cap on every statement
}

// Open connects as o says. Zero pool fields get sensible defaults.
func Open(o Options) (*DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard, TranslateError: true}
	if o.PostgresURL != "" {
		return openPostgres(o, cfg)
	}
	if dir := filepath.Dir(o.SQLitePath); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	// WAL and a busy timeout let readers and the single writer coexist;
	// foreign keys are off by default in SQLite. synchronous=NORMAL is
	// SQLite's advice for WAL: no fsync per commit, never a corrupt file; a
	// power cut (not a crash of the process) may lose the last commits.
	dsn := "file:" + o.SQLitePath + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=busy_timeout(5000)&_txlock=immediate"
	gdb, err := gorm.Open(sqlite.Open(dsn), cfg)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", o.SQLitePath, err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	// One writer at a time is all SQLite allows; a single connection turns
	// lock contention into queueing instead of SQLITE_BUSY errors.
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	return &DB{DB: gdb, Dialect: migrations.SQLite, Description: "sqlite " + o.SQLitePath}, nil
}

// openPostgres puts GORM on database/sql on a pgx pool. pgxpool, not
// database/sql, holds the connections: database/sql hands a freed
// connection to a random waiting request, which under load gave p99 tails
// several times the median; pgxpool serves waiters first come, first served.
// database/sql keeps no idle connections of its own (each query borrows one
// from pgxpool and gives it back), so it never queues.
func openPostgres(o Options, cfg *gorm.Config) (*DB, error) {
	pcfg, err := pgxpool.ParseConfig(o.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("invalid DATABASE_URL: %w", err)
	}
	// Unless the URL sets them: a dial-and-start-up deadline, and
	// statement_timeout as a start-up parameter, so the server cancels any
	// statement of the session that runs longer.
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	}
	if _, set := pcfg.ConnConfig.RuntimeParams["statement_timeout"]; !set && o.StatementTimeout > 0 {
		pcfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	open := cmpOr(o.MaxOpenConns, 4)
	pcfg.MaxConns = int32(open)
	// Connections are kept, not closed when idle: closing and re-dialling
	// under load cost 4x end to end. Idle ones above MinConns go after 30 min.
	pcfg.MinConns = int32(min(cmpOr(o.MaxIdleConns, open), open))
	pcfg.MaxConnLifetime = cmpOr(o.ConnMaxLifetime, 30*time.Minute)
	pcfg.MaxConnIdleTime = 30 * time.Minute
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	gdb, err := gorm.Open(postgres.New(postgres.Config{Conn: pgConnPool{DB: stdlib.OpenDBFromPool(pool), pool: pool}}), cfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := refuseScopedGORM(gdb); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return &DB{DB: gdb, Dialect: migrations.Postgres, Description: "postgres " + redact(o.PostgresURL), pool: pool}, nil
}

// Stats reads the connection pool's numbers (for metrics).
func (d *DB) Stats() metrics.PoolStats {
	if d.pool != nil {
		s := d.pool.Stat()
		return metrics.PoolStats{Max: int64(s.MaxConns()), Open: int64(s.TotalConns()), InUse: int64(s.AcquiredConns()),
			Idle: int64(s.IdleConns()), Waits: s.EmptyAcquireCount(), WaitSeconds: s.EmptyAcquireWaitTime().Seconds()}
	}
	sqlDB, err := d.DB.DB()
	if err != nil {
		return metrics.PoolStats{}
	}
	s := sqlDB.Stats()
	return metrics.PoolStats{Max: int64(s.MaxOpenConnections), Open: int64(s.OpenConnections), InUse: int64(s.InUse),
		Idle: int64(s.Idle), Waits: s.WaitCount, WaitSeconds: s.WaitDuration.Seconds()}
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// Migrate applies pending migrations and returns the versions it applied.
func (d *DB) Migrate(ctx context.Context) ([]int64, error) {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return nil, err
	}
	return migrations.Up(ctx, sqlDB, d.Dialect)
}

// Ping checks the connection answers.
func (d *DB) Ping(ctx context.Context) error {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the pool.
func (d *DB) Close() error {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
	}
	err = sqlDB.Close()
	if d.pool != nil {
		d.pool.Close()
	}
	return err
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
