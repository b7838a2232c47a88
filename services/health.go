package services

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/metrics"
)

// Check pings one dependency.
type Check func(ctx context.Context) error

// Health runs readiness checks. Required dependencies (the database) make
// the instance unready when down; optional ones (Redis: limits fall back
// per instance) only make it degraded, because taking every instance out
// of the load balancer over them would turn a slower path into an outage.
type Health struct {
	required map[string]Check
	optional map[string]Check
	timeout  time.Duration
	log      *slog.Logger
	metrics  *metrics.Metrics
	draining atomic.Bool

	mu   sync.Mutex
	down map[string]bool // last state seen, to log changes once
}

// NewHealth builds the readiness service; each check gets timeout.
func NewHealth(timeout time.Duration, required, optional map[string]Check, log *slog.Logger, m *metrics.Metrics) *Health {
	return &Health{required: required, optional: optional, timeout: timeout, log: log, metrics: m, down: map[string]bool{}}
}

// Drain makes the instance report unready from now on (shutdown has begun).
func (h *Health) Drain() { h.draining.Store(true) }

// Readiness is the outcome of the checks.
type Readiness struct {
	Ready    bool
	Draining bool
	Degraded []string          // optional dependencies that are down
	Down     []string          // required dependencies that are down
	Checks   map[string]string // name -> "ok" or "unreachable"
}

// Ready runs every check. Causes are not returned: they may hold addresses.
func (h *Health) Ready(ctx context.Context) Readiness {
	r := Readiness{Checks: map[string]string{}, Draining: h.draining.Load()}
	run := func(checks map[string]Check, into *[]string) {
		for name, check := range checks {
			cctx, cancel := context.WithTimeout(ctx, h.timeout)
			err := check(cctx)
			cancel()
			state := "ok"
			if err != nil {
				state = "unreachable"
				*into = append(*into, name)
			}
			r.Checks[name] = state
			h.record(name, err)
		}
		sort.Strings(*into)
	}
	run(h.required, &r.Down)
	run(h.optional, &r.Degraded)
	r.Ready = len(r.Down) == 0 && !r.Draining
	return r
}

// record logs a dependency going down or coming back, once per change.
func (h *Health) record(name string, err error) {
	up := 1.0
	if err != nil {
		up = 0
	}
	h.metrics.DependencyUp.WithLabelValues(name).Set(up)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil && !h.down[name]:
		h.down[name] = true
		h.log.Warn("readiness: dependency unreachable", "dependency", name, "error", err)
	case err == nil && h.down[name]:
		h.down[name] = false
		h.log.Info("readiness: dependency reachable again", "dependency", name)
	}
}
