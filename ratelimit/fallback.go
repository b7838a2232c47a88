package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/clock"
)

// Fallback counts in the shared store and keeps a local copy of what it
// admitted, so that when the shared store is down each instance goes on
// limiting from what it knows instead of from zero.
//
// Slow is not down: a call that times out is decided locally (below) but
// does not switch stores; the breaker opens on an error that is not a
// timeout (connection refused, reset, closed) or on Failures timeouts in a
// row. While it is open, requests never wait for the shared store: each
// instance admits its share of every limit, the limit divided by the
// instances it last saw alive (Peers, from the heartbeat), at least one, so
// the deployment as a whole stays near the limit:
//
//   - at most N x floor(limit/N) <= limit per window once the requests
//     admitted before the outage have left the window, and
//   - in the window the outage begins, at most what the shared store
//     admitted before it plus each instance's share, less what that
//     instance itself had admitted: never more than twice the limit.
//
// A request decided locally is counted locally, never in both stores as
// two grants. The breaker closes when the heartbeat (or, without one, a
// request after Pause) reaches the shared store again. One log line marks
// the switch away and one the return, the latter once the shared store has
// answered without a failure for Steady (a flapping Redis does not fill the
// log); metrics follow through OnChange.
type Fallback struct {
	shared Store
	local  *Memory
	clock  clock.Clock
	log    *slog.Logger
	cfg    FallbackConfig

	peers atomic.Int64 // instances alive, from the heartbeat; 0 until seen

	mu       sync.Mutex
	open     bool      // requests go to the local store
	failures int       // timeouts in a row
	degraded bool      // between opening and a steady recovery
	since    time.Time // when degraded began
	retryAt  time.Time // without a prober: when a request tries the shared store again
	okSince  time.Time // first success of the current run of successes
	probed   bool      // a heartbeat probes the shared store: requests never do while open
	onChange func(degraded bool)
}

// FallbackConfig tunes the breaker.
type FallbackConfig struct {
	// Failures is how many timeouts in a row open the breaker (default 3).
	Failures int
	// Pause: without a heartbeat, how long the breaker stays open before a
	// request tries the shared store again (default 1s).
	Pause time.Duration
	// Steady: how long the shared store must answer without a failure
	// before the recovery is logged and reported (default 5s).
	Steady time.Duration
}

// NewFallback builds the fallback store.
func NewFallback(shared Store, local *Memory, clk clock.Clock, log *slog.Logger, cfg FallbackConfig) *Fallback {
	if cfg.Failures <= 0 {
		cfg.Failures = 3
	}
	if cfg.Pause <= 0 {
		cfg.Pause = time.Second
	}
	if cfg.Steady <= 0 {
		cfg.Steady = 5 * time.Second
	}
	return &Fallback{shared: shared, local: local, clock: clk, log: log, cfg: cfg}
}

// OnChange registers f to be called when the store degrades or recovers
// (metrics). Call before use.
func (f *Fallback) OnChange(fn func(degraded bool)) { f.onChange = fn }

// SetPeers records how many instances share the limits (the heartbeat's
// count, this one included).
func (f *Fallback) SetPeers(n int64) { f.peers.Store(n) }

// Peers is the last count of instances seen alive (at least 1).
func (f *Fallback) Peers() int64 { return max(f.peers.Load(), 1) }

// share is this instance's part of p while the shared store is down.
func (f *Fallback) share(p Policy) Policy {
	p.Limit = max(p.Limit/f.Peers(), 1)
	return p
}

// useShared reports whether a request should try the shared store now.
func (f *Fallback) useShared() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.open || (!f.probed && !f.clock.Now().Before(f.retryAt))
}

// isTimeout tells a slow reply from a dependency that is down.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// Failed records a failed call to the shared store (a request's, or the
// heartbeat's): it opens the breaker on a connection error, or on the
// Failures-th timeout in a row.
func (f *Fallback) Failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	f.okSince = time.Time{}
	f.failures++
	if isTimeout(err) && f.failures < f.cfg.Failures && !f.open {
		return
	}
	f.open, f.retryAt = true, now.Add(f.cfg.Pause)
	if !f.degraded {
		f.degraded, f.since = true, now
		f.log.Warn("rate limit store unavailable: each instance admits its share of every limit until it answers",
			"error", err, "instances", f.Peers())
		if f.onChange != nil {
			f.onChange(true)
		}
	}
}

// Succeeded records a call the shared store answered: the breaker closes.
func (f *Fallback) Succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures, f.open = 0, false
	if !f.degraded {
		return
	}
	now := f.clock.Now()
	if f.okSince.IsZero() {
		f.okSince = now
	}
	if now.Sub(f.okSince) >= f.cfg.Steady {
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
	return f.do(ctx, key, p, Store.Take, true)
}

// Peek implements Store.
func (f *Fallback) Peek(ctx context.Context, key string, p Policy) (Result, error) {
	return f.do(ctx, key, p, Store.Peek, false)
}

// TakeAll implements Store, like Take: the shared store when it answers
// (with the local copy kept), else this instance's share of each limit.
func (f *Fallback) TakeAll(ctx context.Context, limits []Limit) ([]Result, error) {
	if f.useShared() {
		res, err := f.shared.TakeAll(ctx, limits)
		if err == nil {
			f.Succeeded()
			if len(res) > 0 && res[0].Allowed {
				for _, l := range limits {
					f.local.Record(l.storeKey(), l.Policy)
				}
			}
			return res, nil
		}
		f.Failed(err)
	}
	shared := make([]Limit, len(limits))
	for i, l := range limits {
		shared[i] = l
		shared[i].Policy = f.share(l.Policy)
	}
	res, err := f.local.TakeAll(ctx, shared)
	for i := range res {
		res[i].local = true
	}
	return res, err
}

// Give implements Store: the request goes back to the store that decided
// it, and, when that was the shared one, to the local copy too.
func (f *Fallback) Give(ctx context.Context, key string, p Policy, taken Result) error {
	if taken.local {
		return f.local.Give(ctx, key, f.share(p), taken)
	}
	_ = f.local.Give(ctx, key, p, taken)
	if err := f.shared.Give(ctx, key, p, taken); err != nil {
		f.Failed(err)
		return err
	}
	return nil
}

// do runs op on the shared store, keeping the local copy of what it
// admitted when counts (Take), or on the local one against this instance's
// share.
func (f *Fallback) do(ctx context.Context, key string, p Policy, op func(Store, context.Context, string, Policy) (Result, error), counts bool) (Result, error) {
	if f.useShared() {
		r, err := op(f.shared, ctx, key, p)
		if err == nil {
			f.Succeeded()
			if counts && r.Allowed {
				f.local.Record(key, p)
			}
			return r, nil
		}
		f.Failed(err)
	}
	r, err := op(f.local, ctx, key, f.share(p))
	r.local = true
	return r, err
}

// Prober is a store whose liveness a heartbeat can check.
type Prober interface {
	// Beat announces this instance and returns how many are alive.
	Beat(ctx context.Context, instance string, ttl time.Duration) (int64, error)
	// Leave withdraws this instance's announcement.
	Leave(ctx context.Context, instance string)
}

// Heartbeat announces this instance in the shared store every interval
// until ctx ends, keeps the count of instances alive for the shares, and
// opens or closes the breaker on what it sees: state follows the
// dependency, not the traffic (a recovered Redis is noticed with no
// request). An instance silent for 3 intervals no longer counts.
func (f *Fallback) Heartbeat(ctx context.Context, p Prober, instance string, interval, timeout time.Duration) {
	f.mu.Lock()
	f.probed = true
	f.mu.Unlock()
	ttl := 3 * interval
	beat := func() {
		bctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		n, err := p.Beat(bctx, instance, ttl)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.Failed(err)
			return
		}
		f.SetPeers(n)
		f.Succeeded()
	}
	beat()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), timeout)
			p.Leave(lctx, instance)
			cancel()
			return
		case <-t.C:
			beat()
		}
	}
}
