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
// switches back. One log line marks the switch away, and one the return,
// written only once the shared store has answered without a failure for
// `steady` (a flapping Redis does not fill the log).
type Fallback struct {
	shared Store
	local  Store
	clock  clock.Clock
	log    *slog.Logger
	pause  time.Duration
	steady time.Duration

	mu       sync.Mutex
	degraded bool      // between the first failure and a steady recovery
	since    time.Time // when degraded began
	retryAt  time.Time // when to try the shared store again
	okSince  time.Time // first success of the current run of successes
	onChange func(degraded bool)
}

// NewFallback builds the fallback store.
func NewFallback(shared, local Store, clk clock.Clock, log *slog.Logger, pause time.Duration) *Fallback {
	return &Fallback{shared: shared, local: local, clock: clk, log: log, pause: pause, steady: 5 * time.Second}
}

// OnChange registers f to be called when the store degrades or recovers
// (metrics). Call before use.
func (f *Fallback) OnChange(fn func(degraded bool)) { f.onChange = fn }

// Degraded reports whether limits are (or recently were) per instance.
func (f *Fallback) Degraded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.degraded
}

// useShared reports whether to try the shared store now.
func (f *Fallback) useShared() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.clock.Now().Before(f.retryAt)
}

func (f *Fallback) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	f.retryAt = now.Add(f.pause)
	f.okSince = time.Time{}
	if !f.degraded {
		f.degraded, f.since = true, now
		f.log.Warn("rate limit store unavailable: limiting per instance until it answers", "error", err)
		if f.onChange != nil {
			f.onChange(true)
		}
	}
}

func (f *Fallback) succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.degraded {
		return
	}
	now := f.clock.Now()
	if f.okSince.IsZero() {
		f.okSince = now
	}
	if now.Sub(f.okSince) >= f.steady {
		f.degraded = false
		f.okSince = time.Time{}
		f.log.Warn("rate limit store answers again: shared limits resumed", "outage", now.Sub(f.since).Round(time.Millisecond))
		if f.onChange != nil {
			f.onChange(false)
		}
	}
}

// Take implements Store.
func (f *Fallback) Take(ctx context.Context, key string, p Policy) (Result, error) {
	return f.do(ctx, key, p, Store.Take)
}

// Peek implements Store.
func (f *Fallback) Peek(ctx context.Context, key string, p Policy) (Result, error) {
	return f.do(ctx, key, p, Store.Peek)
}

func (f *Fallback) do(ctx context.Context, key string, p Policy, op func(Store, context.Context, string, Policy) (Result, error)) (Result, error) {
	if f.useShared() {
		r, err := op(f.shared, ctx, key, p)
		if err == nil {
			f.succeeded()
			return r, nil
		}
		f.failed(err)
	}
	return op(f.local, ctx, key, p)
}
