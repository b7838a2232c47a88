package services

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/clock"
)

// Revocations remembers revoked access-token ids (jti) until the token
// would have expired anyway. With Redis every instance sees a revocation at
// once; each instance also keeps the ones it made (and saw) in memory, which
// answers alone while Redis cannot: then a token revoked on another
// instance may work here until Redis is back or the token expires.
type Revocations struct {
	rdb     redis.UniversalClient // nil: this instance only
	prefix  string
	clock   clock.Clock
	timeout time.Duration
	log     *slog.Logger

	mu    sync.Mutex
	local map[string]time.Time // jti -> when it stops mattering
}

// NewRevocations builds the revocation list; rdb may be nil.
func NewRevocations(rdb redis.UniversalClient, prefix string, clk clock.Clock, timeout time.Duration, log *slog.Logger) *Revocations {
	return &Revocations{rdb: rdb, prefix: prefix + "revoked:", clock: clk, timeout: timeout, log: log, local: map[string]time.Time{}}
}

// Revoke records jti as revoked until until.
func (r *Revocations) Revoke(ctx context.Context, jti string, until time.Time) {
	r.remember(jti, until)
	if r.rdb == nil {
		return
	}
	ttl := until.Sub(r.clock.Now())
	if ttl <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.rdb.Set(ctx, r.prefix+jti, 1, ttl).Err(); err != nil {
		r.log.Warn("revocation not shared: redis failed; other instances may accept the token until it expires", "jti", jti, "error", err)
	}
}

// Revoked reports whether jti was revoked.
func (r *Revocations) Revoked(ctx context.Context, jti string) bool {
	r.mu.Lock()
	until, ok := r.local[jti]
	r.mu.Unlock()
	if ok && r.clock.Now().Before(until) {
		return true
	}
	if r.rdb == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := r.rdb.Exists(ctx, r.prefix+jti).Result()
	if err != nil {
		r.log.Debug("revocation check: redis failed, answering from this instance", "error", err)
		return false
	}
	return n > 0
}

func (r *Revocations) remember(jti string, until time.Time) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.local) >= 10_000 {
		for k, u := range r.local {
			if !now.Before(u) {
				delete(r.local, k)
			}
		}
	}
	r.local[jti] = until
}
