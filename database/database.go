// Package database opens the GORM connection: PostgreSQL when a URL is
// given, otherwise the embedded SQLite file.
package database

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
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

// Open connects to postgresURL, or to the SQLite file at sqlitePath when it is empty.
func Open(postgresURL, sqlitePath string) (*DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard, TranslateError: true}
	if postgresURL != "" {
		gdb, err := gorm.Open(postgres.Open(postgresURL), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqlDB, err := gdb.DB()
		if err != nil {
			return nil, err
		}
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(10)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		return &DB{DB: gdb, Dialect: migrations.Postgres, Description: "postgres " + redact(postgresURL)}, nil
	}
	if dir := filepath.Dir(sqlitePath); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	// WAL and a busy timeout let readers and the single writer coexist;
	// foreign keys are off by default in SQLite.
	dsn := "file:" + sqlitePath + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"
	gdb, err := gorm.Open(sqlite.Open(dsn), cfg)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", sqlitePath, err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	// One writer at a time is all SQLite allows; a single connection turns
	// lock contention into queueing instead of SQLITE_BUSY errors.
	sqlDB.SetMaxOpenConns(1)
	return &DB{DB: gdb, Dialect: migrations.SQLite, Description: "sqlite " + sqlitePath}, nil
}

// Migrate applies pending migrations.
func (d *DB) Migrate(ctx context.Context) error {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
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
