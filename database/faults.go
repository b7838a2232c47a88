package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"net"
	"regexp"
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
		return classifyCode(pgErr.Code, err)
	}
	if ae := classifyChain(err); ae != nil {
		return ae
	}
	// GORM joins a second error onto the first with "%v; %w", which keeps
	// only the first's text: a server's code survives as "(SQLSTATE 57P01)".
	for _, m := range sqlState.FindAllStringSubmatch(err.Error(), -1) {
		if ae := classifyCode(m[1], err); ae != nil {
			return ae
		}
	}
	msg := err.Error()
	for _, lost := range lostConnection {
		if strings.Contains(msg, lost) {
			return apperror.ErrUnavailable.WithCause(err)
		}
	}
	return nil
}

// sqlState finds PostgreSQL error codes in pgx's error text.
var sqlState = regexp.MustCompile(`\(SQLSTATE ([0-9A-Z]{5})\)`)

// lostConnection: what a lost connection reads like once an error's type is
// gone (flattened by a "%v" on its way up).
var lostConnection = []string{"conn closed", "connection reset by peer", "broken pipe", "unexpected EOF",
	"connection refused", "server closed the connection", "sql: database is closed", "failed to deallocate cached statement"}

// classifyCode maps a PostgreSQL error code; nil for a bug's.
func classifyCode(code string, err error) *apperror.Error {
	switch {
	case code == "57014": // query_canceled: statement_timeout
		return apperror.ErrTimeout.WithCause(err)
	case code == "22021" || code == "22P05": // bad byte sequence, untranslatable character
		return errInvalidText.WithCause(err)
	case strings.HasPrefix(code, "08"), // connection exception
		code == "57P01", code == "57P02", code == "57P03", // shutting down, starting up
		code == "53300", code == "53000", // too many connections, insufficient resources
		code == "25006": // read-only transaction: a failover in progress
		return apperror.ErrUnavailable.WithCause(err)
	}
	return nil
}

// classifyChain looks for the drivers' own connection errors anywhere in
// err's chain (errors.Join and %w both kept).
func classifyChain(err error) *apperror.Error {
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
		errors.Is(err, pgconn.ErrConnClosed): // a connection pgx already closed (a killed backend)
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
	checking atomic.Bool // a ping after a timeout is running
	onChange func(down bool)
	stop     chan struct{}
	stopOnce sync.Once
}

// NewMonitor builds a monitor for db.
func NewMonitor(db *DB, log *slog.Logger) *Monitor {
	return &Monitor{db: db, log: log, probeEvery: time.Second, remindEvery: time.Minute, stop: make(chan struct{})}
}

// Close stops a running probe.
func (m *Monitor) Close() { m.stopOnce.Do(func() { close(m.stop) }) }

// inOutage reports whether an outage is in progress.
func (m *Monitor) inOutage() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// Classify is Classify, recording outages. A timeout is not one by itself
// (one slow query is not an outage), but it makes the monitor ping the
// database: a database that does not answer a ping either is frozen, and
// that is logged and probed like one that refuses connections.
func (m *Monitor) Classify(err error) *apperror.Error {
	ae := Classify(err)
	if ae != nil && ae.Kind == apperror.Timeout {
		m.checkAfterTimeout(err)
	}
	if ae == nil || ae.Kind != apperror.Unavailable {
		return ae
	}
	m.refused.Add(1)
	m.outage(err, "database unavailable: answering 503 until it recovers")
	return ae
}

// checkAfterTimeout pings the database once (one check at a time) and
// records an outage when the ping fails too.
func (m *Monitor) checkAfterTimeout(cause error) {
	if m.inOutage() || !m.checking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer m.checking.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 2*m.probeEvery)
		err := m.db.Ping(ctx)
		cancel()
		if err != nil {
			m.outage(errors.Join(cause, err), "database not answering (a query timed out and so did a ping): answering 504/503 until it recovers")
		}
	}()
}

// outage logs the start of an outage, or a reminder during one.
func (m *Monitor) outage(err error, msg string) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.down:
		m.down, m.since, m.reminded = true, now, now
		m.log.Error(msg, "database", m.db.Description, "error", err)
		if m.onChange != nil {
			m.onChange(true)
		}
		go m.probe()
	case now.Sub(m.reminded) >= m.remindEvery:
		m.reminded = now
		m.log.Error("database still unavailable", "database", m.db.Description, "for", now.Sub(m.since).Round(time.Second),
			"refused", m.refused.Load(), "error", err)
	}
}

// OnChange registers fn to be called when an outage starts (true) or ends
// (metrics). Call before use.
func (m *Monitor) OnChange(fn func(down bool)) { m.onChange = fn }

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
		if m.onChange != nil {
			m.onChange(false)
		}
		m.mu.Unlock()
		return
	}
}
