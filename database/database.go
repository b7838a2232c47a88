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
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tollgate/tollgate/migrations"
)

// DB is an open database with its dialect.
type DB struct {
	*gorm.DB
	Dialect     string
	Description string // safe to log: no password
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
		dsn, err := withTimeouts(o.PostgresURL, o.ConnectTimeout, o.StatementTimeout)
		if err != nil {
			return nil, err
		}
		gdb, err := gorm.Open(postgres.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqlDB, err := gdb.DB()
		if err != nil {
			return nil, err
		}
		open := cmpOr(o.MaxOpenConns, 4)
		sqlDB.SetMaxOpenConns(open)
		// Idle below open makes database/sql close every connection above
		// it as soon as it is released and dial a new one for the next
		// request: under steady load that is a TCP + auth handshake per
		// query. Keep them all.
		sqlDB.SetMaxIdleConns(min(cmpOr(o.MaxIdleConns, open), open))
		sqlDB.SetConnMaxLifetime(cmpOr(o.ConnMaxLifetime, 30*time.Minute))
		return &DB{DB: gdb, Dialect: migrations.Postgres, Description: "postgres " + redact(o.PostgresURL)}, nil
	}
	if dir := filepath.Dir(o.SQLitePath); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	// WAL and a busy timeout let readers and the single writer coexist;
	// foreign keys are off by default in SQLite.
	dsn := "file:" + o.SQLitePath + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"
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

// withTimeouts adds connect_timeout and statement_timeout to a PostgreSQL
// URL unless it sets them itself. pgx sends statement_timeout as a start-up
// parameter, so the server enforces it on every statement of the session.
func withTimeouts(raw string, connect, statement time.Duration) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid DATABASE_URL: %w", err)
	}
	q := u.Query()
	if connect > 0 && q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", strconv.Itoa(max(int(connect.Seconds()), 1)))
	}
	if statement > 0 && q.Get("statement_timeout") == "" {
		q.Set("statement_timeout", strconv.FormatInt(statement.Milliseconds(), 10))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
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
	return sqlDB.Close()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
