package tests

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/database"
)

// gormJoin is how gorm.DB.AddError joins a second error onto the first:
// the first keeps only its text.
func gormJoin(first, second error) error {
	return fmt.Errorf("%v; %w", first, second) //nolint:errorlint // GORM's own join, reproduced
}

// killed is what pgx reports for a backend ended under it.
var killed = &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}

// database.Classify tells faults (503, 504, 400) from bugs (500), whatever
// wraps the error on its way up.
func TestClassify(t *testing.T) {
	parallelTest(t)
	wrapped := func(err error) error { return apperror.Wrap(fmt.Errorf("query: %w", err), "load user") }
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
		// The shapes of a backend killed under load (kill -9, pg_terminate_backend):
		{"conn closed inside pgx", fmt.Errorf("failed to deallocate cached statement(s): %w", pgconn.ErrConnClosed), "service_unavailable"},
		{"GORM's %v; %w join keeps only the text of the code", gormJoin(killed, fmt.Errorf("failed to deallocate cached statement(s): %w", pgconn.ErrConnClosed)), "service_unavailable"},
		{"GORM's join around a plain second error", gormJoin(killed, errors.New("something else")), "service_unavailable"},
		{"errors.Join", errors.Join(errors.New("rollback failed"), killed), "service_unavailable"},
		{"flattened to text", errors.New("query: unexpected EOF"), "service_unavailable"},
		{"flattened connection reset", errors.New((&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}).Error()), "service_unavailable"},
		{"a bug's code in GORM's join stays a bug", gormJoin(&pgconn.PgError{Code: "42P01", Message: "no such table"}, errors.New("x")), ""},
		{"syntax error is a bug", &pgconn.PgError{Code: "42601"}, ""},
		{"anything else is a bug", errors.New("boom"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := database.Classify(wrapped(c.err))
			code := ""
			if got != nil {
				code = got.Code
				if !errors.Is(got, c.err) && !strings.Contains(got.Error(), c.err.Error()) {
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

// PostgreSQL backends killed under load (pg_terminate_backend, the shape of
// a crash or a restart): every request answers as usual or 503 (504 if one
// ran out of time), never a 500.
func TestKilledBackendsUnderLoadAre503NotA500(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("needs PostgreSQL (TEST_DATABASE_URL)")
	}
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Editor, caller.Enterprise)
	var name string
	mustf(t, a.DB.Raw("SELECT current_database()").Scan(&name).Error == nil, "database name")
	admin, err := sql.Open("pgx", os.Getenv("TEST_DATABASE_URL"))
	mustf(t, err == nil, "%v", err)
	defer admin.Close()
	stop := make(chan struct{})
	killerDone := make(chan int)
	go func() {
		kills := 0
		for {
			select {
			case <-stop:
				killerDone <- kills
				return
			case <-time.After(15 * time.Millisecond):
			}
			var n int
			_ = admin.QueryRow("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name).Scan(&n)
			kills += n
		}
	}()
	counts := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 60 {
				var r *Response
				if rand.IntN(2) == 0 {
					r = a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
				} else {
					r = a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: bearer(u), Body: map[string]any{"name": "p", "scopes": []string{"users:read"}}})
				}
				mu.Lock()
				counts[r.Status]++
				mu.Unlock()
				if r.Status == 500 || r.Status > 504 {
					t.Errorf("%d during killed backends: %s", r.Status, r.Body)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	kills := <-killerDone
	mustf(t, kills > 0, "no backend was killed")
	mustf(t, !strings.Contains(a.Logs.String(), `"msg":"request failed"`), "a fault logged as a server error: %s", grep(a.Logs.String(), "request failed"))
	t.Logf("%d backends killed; answers %v", kills, counts)
}
