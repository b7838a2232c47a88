package tests

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/database"
)

// database.Classify tells faults (503, 504, 400) from bugs (500), whatever
// wraps the error on its way up.
func TestClassify(t *testing.T) {
	parallelTest(t)
	wrapped := func(err error) error { return apperror.Wrap(fmt.Errorf("query: %w", err), "load project") }
	for _, c := range []struct {
		name string
		err  error
		want string // code, or "" for a bug (500)
	}{
		{"request deadline", context.DeadlineExceeded, "request_timeout"},
		{"statement_timeout", &pgconn.PgError{Code: "57014"}, "request_timeout"},
		{"NUL refused by PostgreSQL", &pgconn.PgError{Code: "22021"}, "invalid_text"},
		{"connection lost", &pgconn.PgError{Code: "08006"}, "service_unavailable"},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, "service_unavailable"},
		{"too many connections", &pgconn.PgError{Code: "53300"}, "service_unavailable"},
		{"refused dial", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, "service_unavailable"},
		{"bad connection", driver.ErrBadConn, "service_unavailable"},
		{"closed pgx pool", puddle.ErrClosedPool, "service_unavailable"},
		{"syntax error is a bug", &pgconn.PgError{Code: "42601"}, ""},
		{"anything else is a bug", errors.New("boom"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := database.Classify(wrapped(c.err))
			code := ""
			if got != nil {
				code = got.Code
				if !errors.Is(got, c.err) {
					t.Errorf("cause lost: %v", got)
				}
			}
			if code != c.want {
				t.Fatalf("Classify(%v) = %q, want %q", c.err, code, c.want)
			}
		})
	}
}

// DB_STATEMENT_TIMEOUT reaches PostgreSQL as a start-up parameter: a
// statement past it is cancelled by the server and classified as a 504.
func TestStatementTimeoutIsEnforcedAndClassified(t *testing.T) {
	parallelTest(t)
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		t.Skip("needs PostgreSQL (TEST_DATABASE_URL)")
	}
	db, err := database.Open(database.Options{PostgresURL: url, StatementTimeout: 100 * time.Millisecond, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	err = db.Exec("SELECT pg_sleep(5)").Error
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("pg_sleep(5) under a 100 ms statement_timeout: %v after %v", err, time.Since(start))
	}
	if got := database.Classify(err); got == nil || got.Code != "request_timeout" {
		t.Fatalf("Classify(%v) = %v, want request_timeout", err, got)
	}
}
