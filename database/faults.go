package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/tollgate/tollgate/apperror"
)

// errInvalidText: PostgreSQL refuses NUL and invalid UTF-8 that SQLite
// stores. Request binding rejects them first; this is the net for a
// handler a fork adds without that check.
var errInvalidText = apperror.Define(apperror.Invalid, "invalid_text", "Text contains characters that cannot be stored (NUL or invalid UTF-8)")

// Classify tells a database fault (unreachable, overloaded, too slow) or
// refused input from a bug. It returns the answer to give, or nil when err
// is none of those (the caller answers 500 and logs it).
func Classify(err error) *apperror.Error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return apperror.ErrTimeout.WithCause(err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "57014": // query_canceled: statement_timeout
			return apperror.ErrTimeout.WithCause(err)
		case pgErr.Code == "22021" || pgErr.Code == "22P05": // bad byte sequence, untranslatable character
			return errInvalidText.WithCause(err)
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, starting up
			pgErr.Code == "53300", pgErr.Code == "53000", // too many connections, insufficient resources
			pgErr.Code == "25006": // read-only transaction: a failover in progress
			return apperror.ErrUnavailable.WithCause(err)
		}
		return nil
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	var sqliteErr *gosqlite.Error
	switch {
	case pgconn.Timeout(err):
		return apperror.ErrTimeout.WithCause(err)
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, puddle.ErrClosedPool), // pgx's own path (QueryNative) on a closed pool
		strings.Contains(err.Error(), "sql: database is closed"):
		return apperror.ErrUnavailable.WithCause(err)
	case errors.As(err, &sqliteErr):
		switch sqliteErr.Code() & 0xff { // primary result code
		case 5, 6, 10, 13, 14: // BUSY, LOCKED, IOERR, FULL, CANTOPEN
			return apperror.ErrUnavailable.WithCause(err)
		}
	}
	return nil
}

// Monitor turns per-request database faults into one log line per outage:
// the first fault is logged with its cause, then a reminder at most every
// remindEvery with how many requests were refused, and one line when a
// background ping finds the database again.
type Monitor struct {
	db          *DB
	log         *slog.Logger
	probeEvery  time.Duration
	remindEvery time.Duration

	mu       sync.Mutex
	down     bool
	since    time.Time
	reminded time.Time
	refused  atomic.Int64
	stop     chan struct{}
	stopOnce sync.Once
}

// NewMonitor builds a monitor for db.
func NewMonitor(db *DB, log *slog.Logger) *Monitor {
	return &Monitor{db: db, log: log, probeEvery: time.Second, remindEvery: time.Minute, stop: make(chan struct{})}
}

// Close stops a running probe.
func (m *Monitor) Close() { m.stopOnce.Do(func() { close(m.stop) }) }

// Down reports whether an outage is in progress.
func (m *Monitor) Down() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// Classify is Classify, recording outages.
func (m *Monitor) Classify(err error) *apperror.Error {
	ae := Classify(err)
	if ae == nil || ae.Kind != apperror.Unavailable {
		return ae
	}
	m.refused.Add(1)
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.down:
		m.down, m.since, m.reminded = true, now, now
		m.log.Error("database unavailable: answering 503 until it recovers", "database", m.db.Description, "error", err)
		go m.probe()
	case now.Sub(m.reminded) >= m.remindEvery:
		m.reminded = now
		m.log.Error("database still unavailable", "database", m.db.Description, "for", now.Sub(m.since).Round(time.Second),
			"refused", m.refused.Load(), "error", err)
	}
	return ae
}

// probe pings until the database answers, then ends the outage.
func (m *Monitor) probe() {
	t := time.NewTicker(m.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.probeEvery)
		err := m.db.Ping(ctx)
		cancel()
		if err != nil {
			continue
		}
		m.mu.Lock()
		m.down = false
		m.log.Warn("database reachable again", "database", m.db.Description,
			"outage", time.Since(m.since).Round(time.Millisecond), "refused", m.refused.Swap(0))
		m.mu.Unlock()
		return
	}
}
