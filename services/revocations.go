package services

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cache"
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

	local *cache.Cache[string, struct{}] // jti, until the token would have expired
}

// revokedCopySize bounds this instance's copy of the revocations. Past it
// the one nearest to expiry is dropped: with Redis the shared list still
// holds it; without, a fork revoking this many tokens within a token's
// lifetime should raise it.
const revokedCopySize = 100_000

// NewRevocations builds the revocation list; rdb may be nil.
func NewRevocations(rdb redis.UniversalClient, prefix string, clk clock.Clock, timeout time.Duration, log *slog.Logger) *Revocations {
	return &Revocations{rdb: rdb, prefix: prefix + "revoked:", clock: clk, timeout: timeout, log: log, local: cache.New[string, struct{}](revokedCopySize, clk)}
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
	if _, ok := r.local.Get(jti); ok {
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

func (r *Revocations) remember(jti string, until time.Time) { r.local.Put(jti, struct{}{}, until) }
