package services

import (
	"context"
	"sort"
	"time"
)

// Check pings one dependency.
type Check func(ctx context.Context) error

// Health runs readiness checks against the app's dependencies.
type Health struct {
	checks  map[string]Check
	timeout time.Duration
}

// NewHealth builds the readiness service; each check gets timeout.
func NewHealth(timeout time.Duration, checks map[string]Check) *Health {
	return &Health{checks: checks, timeout: timeout}
}

// Ready runs every check and returns name -> "ok" or "unreachable", and
// whether all passed. Causes are not returned: they may hold addresses.
func (h *Health) Ready(ctx context.Context) (map[string]string, []string) {
	out := map[string]string{}
	var down []string
	for name, check := range h.checks {
		cctx, cancel := context.WithTimeout(ctx, h.timeout)
		err := check(cctx)
		cancel()
		if err != nil {
			out[name] = "unreachable"
			down = append(down, name)
		} else {
			out[name] = "ok"
		}
	}
	sort.Strings(down)
	return out, down
}
