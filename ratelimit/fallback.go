package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tollgate/tollgate/clock"
)

// Fallback uses the shared store and, when it fails or times out, the local
// one: limits keep holding per instance instead of failing open. After a
// failure the shared store is skipped for a short pause, so a dead Redis
// does not cost every request a timeout; the first success after that
// switches back. One log line marks each switch.
type Fallback struct {
	shared Store
	local  Store
	clock  clock.Clock
	log    *slog.Logger
	pause  time.Duration

	mu       sync.Mutex
	degraded bool
	retryAt  time.Time
}

// NewFallback builds the fallback store.
func NewFallback(shared, local Store, clk clock.Clock, log *slog.Logger, pause time.Duration) *Fallback {
	return &Fallback{shared: shared, local: local, clock: clk, log: log, pause: pause}
}

// useShared reports whether to try the shared store now.
func (f *Fallback) useShared() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.degraded || !f.clock.Now().Before(f.retryAt)
}

func (f *Fallback) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryAt = f.clock.Now().Add(f.pause)
	if !f.degraded {
		f.degraded = true
		f.log.Warn("rate limit store unavailable: limiting per instance until it answers", "error", err)
	}
}

func (f *Fallback) succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.degraded {
		f.degraded = false
		f.log.Warn("rate limit store answers again: shared limits resumed")
	}
}

// Take implements Store.
func (f *Fallback) Take(ctx context.Context, key string, p Policy) (Result, error) {
	if f.useShared() {
		r, err := f.shared.Take(ctx, key, p)
		if err == nil {
			f.succeeded()
			r.shared = true
			return r, nil
		}
		f.failed(err)
	}
	return f.local.Take(ctx, key, p)
}

// Refund implements Store, on the store that counted the request.
func (f *Fallback) Refund(ctx context.Context, key string, p Policy, r Result) error {
	if r.shared {
		if err := f.shared.Refund(ctx, key, p, r); err != nil {
			f.failed(err)
			return err
		}
		return nil
	}
	return f.local.Refund(ctx, key, p, r)
}
