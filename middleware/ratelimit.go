package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/cache"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/ratelimit"
)

// RateLimiter builds the per-route limit middleware over one store.
type RateLimiter struct {
	store   ratelimit.Store
	enabled bool
	clock   clock.Clock
	log     *slog.Logger
	events  *securityEvents
	metrics *metrics.Metrics
	// policyHeaders caches RateLimit-Policy values: ratelimit.Policy -> string.
	policyHeaders sync.Map
	onRefused     func(ctx context.Context, client string)
}

// NewRateLimiter builds the limiter. With enabled false every limit
// middleware passes requests straight through.
func NewRateLimiter(store ratelimit.Store, enabled bool, clk clock.Clock, log *slog.Logger, m *metrics.Metrics, instance string) *RateLimiter {
	return &RateLimiter{store: store, enabled: enabled, clock: clk, log: log, metrics: m,
		events: &securityEvents{seen: cache.NewMap[eventKey](10_000, func(e *event) int64 { return e.until.UnixMilli() }), clock: clk, log: log, instance: instance}}
}

// ClientKey is the key a client is limited under: its IP address, or for
// IPv6 its /64, since one host is routinely given a whole /64 and could
// otherwise take a fresh limit (and a fresh key in memory) per address.
func ClientKey(c *echo.Context) string {
	ip := c.RealIP()
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Unmap().Is4() {
		return ip
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

var (
	errRateLimited = apperror.Define(apperror.TooManyRequests, "rate_limited", "Too many requests")
	// errTooManyLogins is refused with the wait filled in (WithMessage).
	errTooManyLogins = apperror.Define(apperror.TooManyRequests, "too_many_login_attempts", "Too many login attempts. Try again in 15 minutes.")
)

// PerIP limits by client IP (as resolved under TRUSTED_PROXIES).
func (l *RateLimiter) PerIP(p ratelimit.Policy) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if !l.enabled {
			return next
		}
		return func(c *echo.Context) error {
			if err := l.limit(c, ClientKey(c), p); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// PerClientID limits the OAuth endpoints per client_id (from HTTP Basic
// or the form), beside the per-IP limit, counting only requests whose
// client authenticated: naming a client_id is not enough to spend its
// budget, so nobody without the secret can keep a client at 429. Each
// request reserves its place in the client's budget before the handler
// (exact under concurrency) and gives it back when client authentication
// fails; failures count instead per (client_id, IP) under failures, so
// guessing one client's secret from one address is refused early, and per
// IP under the login policy (the route's g.Login). Requests without a
// client_id pass.
func (l *RateLimiter) PerClientID(p, failures ratelimit.Policy) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if !l.enabled {
			return next
		}
		return func(c *echo.Context) error {
			id, _, ok := c.Request().BasicAuth()
			if !ok {
				id = c.FormValue("client_id")
			}
			if id == "" || len(id) > 100 {
				return next(c)
			}
			ctx := c.Request().Context()
			pair := "client:" + id + "|" + ClientKey(c)
			if r, err := l.store.Peek(ctx, pair, failures); err != nil {
				l.storeFailed(failures, err)
			} else if !r.Allowed {
				l.decided(failures, false)
				l.events.denied(failures, pair, true)
				return l.refuse(c, failures, r, errTooManyLogins.WithMessage("Too many failed client authentications from this address."))
			}
			key := "client:" + id
			r, counted := l.take(c, key, p)
			if counted && !r.Allowed {
				l.events.denied(p, key, false)
				return l.refuse(c, p, r, errRateLimited)
			}
			// No headers for the client's budget: they would tell anyone who
			// names the client how busy it is.
			herr := next(c)
			if ae, ok := apperror.As(herr); ok && ae.Kind == apperror.Unauthenticated {
				// Not the client: its place goes back, the failure is the pair's.
				if counted {
					if err := l.store.Give(context.WithoutCancel(ctx), key, p, r); err != nil {
						l.storeFailed(p, err)
					}
				}
				l.take(c, pair, failures)
			}
			return herr
		}
	}
}

// PerUser limits by the token's subject, at the policy of its tier claim
// (fallback for tiers not listed), and, when the caller's organization has
// a tier that orgTiers lists, by the organization's budget too, in the
// same call: ten members never multiply the team's quota. Platform
// operators' own tokens are not limited; an organization's admins are. It
// must come after RequireAuth.
func (l *RateLimiter) PerUser(tiers map[string]ratelimit.Policy, fallback ratelimit.Policy, orgTiers map[string]ratelimit.Policy) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if !l.enabled {
			return next
		}
		return func(c *echo.Context) error {
			who, ok := caller.From(c.Request().Context())
			if !ok {
				return apperror.ErrAuthRequired
			}
			if who.Kind == caller.User && who.Platform {
				return next(c)
			}
			p, listed := tiers[string(who.Tier)]
			if !listed {
				p = fallback
			}
			owner := who.ID.String()
			// With an org-wide budget, every key of the request counts in
			// the organization's hash slot (tag), so one script reaches all
			// on a Redis Cluster; a member's own budget is then theirs in
			// that organization.
			var team []ratelimit.Limit
			tag := ""
			if op, ok := orgTiers[string(who.OrgTier)]; ok && who.OrgTier != "" && who.OrgID != uuid.Nil {
				tag = who.OrgID.String()
				team = []ratelimit.Limit{{Key: "org", Policy: op, Tag: tag}}
			}
			if who.Bucket == "" {
				if len(team) == 0 {
					if err := l.limit(c, owner, p); err != nil {
						return err
					}
					return next(c)
				}
				if err := l.limitAll(c, append([]ratelimit.Limit{{Key: owner, Policy: p, Tag: tag}}, team...)); err != nil {
					return err
				}
				return next(c)
			}
			// An API key or OAuth client has a bucket of its own at the
			// owner's tier (or its own lower limit), and every request of
			// it also counts in its owner's budget at the owner's tier, in
			// the same call: more keys never mean more requests (five keys
			// once gave a free user 355 a minute of its 60).
			own := p
			if who.RateLimit != nil {
				own = ratelimit.Policy{Name: "key", Limit: who.RateLimit.Requests, Window: who.RateLimit.Per}
			}
			if tag == "" {
				tag = owner
			}
			ownerKey := ratelimit.Limit{Key: owner, Policy: p}
			if len(team) > 0 {
				ownerKey.Tag = tag
			}
			if err := l.limitAll(c, append([]ratelimit.Limit{{Key: who.Bucket, Policy: own, Tag: tag}, ownerKey}, team...)); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// FailedAuth counts requests that fail authentication (no token, a bad or
// expired one) against p per client IP, so a flood of bad tokens at the
// protected routes is limited like any other anonymous traffic. It wraps
// RequireAuth; requests that authenticate are not counted here.
func (l *RateLimiter) FailedAuth(p ratelimit.Policy) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if !l.enabled {
			return next
		}
		return func(c *echo.Context) error {
			err := next(c)
			ae, isApp := apperror.As(err)
			if _, authenticated := caller.From(c.Request().Context()); authenticated || !isApp || ae.Kind != apperror.Unauthenticated {
				return err
			}
			if err := l.limit(c, ClientKey(c), p); err != nil {
				return err
			}
			return err
		}
	}
}

// LoginFailures limits failed logins (401) per client. The check peeks
// before the password is compared and a failure is counted after the
// answer is known, so successful logins never use up the budget nor are
// refused because others are in flight, and nothing is ever given back (a
// refund that a Redis stall lost once locked correct logins out). Parallel
// guesses can overshoot the limit by at most those in flight at once,
// which the all-attempts limit (PerIP with the login_ip policy, in front)
// and the password-hash semaphore bound.
func (l *RateLimiter) LoginFailures(p ratelimit.Policy) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if !l.enabled {
			return next
		}
		return func(c *echo.Context) error {
			key := ClientKey(c)
			r, err := l.store.Peek(c.Request().Context(), key, p)
			if err != nil {
				l.storeFailed(p, err)
			} else if !r.Allowed {
				l.decided(p, false)
				l.events.denied(p, key, true)
				mins := int(math.Ceil(retryAfter(r).Minutes()))
				return l.refuse(c, p, r, errTooManyLogins.WithMessage(
					fmt.Sprintf("Too many login attempts. Try again in %d minute%s.", mins, plural(mins))))
			}
			if err == nil {
				// Before the handler: a successful answer is written inside it.
				l.headers(c, p, r)
			}
			herr := next(c)
			if ae, ok := apperror.As(herr); ok && ae.Kind == apperror.Unauthenticated {
				// A failure: count it. Its answer is written after this
				// returns, so the state can still be updated.
				if taken, ok := l.take(c, key, p); ok {
					l.state(c, p, taken)
				}
			}
			return herr
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// limit counts the request under p and returns the 429 to answer with when
// key is over it.
func (l *RateLimiter) limit(c *echo.Context, key string, p ratelimit.Policy) error {
	r, ok := l.take(c, key, p)
	if !ok {
		return nil
	}
	if !r.Allowed {
		l.events.denied(p, key, false)
		return l.refuse(c, p, r, errRateLimited)
	}
	l.headers(c, p, r)
	return nil
}

// limitAll counts the request under every limit at once and answers the
// 429 of the one that refused; the headers describe the limit with the
// least left.
func (l *RateLimiter) limitAll(c *echo.Context, limits []ratelimit.Limit) error {
	res, err := l.store.TakeAll(c.Request().Context(), limits)
	if err != nil {
		l.storeFailed(limits[0].Policy, err)
		return nil
	}
	for i, r := range res {
		l.decided(limits[i].Policy, r.Allowed)
	}
	if !res[0].Allowed {
		worst := 0
		for i, r := range res {
			if r.RetryAfter > res[worst].RetryAfter {
				worst = i
			}
		}
		l.events.denied(limits[worst].Policy, limits[worst].Key, false)
		return l.refuse(c, limits[worst].Policy, res[worst], errRateLimited)
	}
	for i, r := range res {
		l.headers(c, limits[i].Policy, r)
	}
	return nil
}

// take counts the request. A store error never fails the request: it is
// logged and the request passes.
func (l *RateLimiter) take(c *echo.Context, key string, p ratelimit.Policy) (ratelimit.Result, bool) {
	r, err := l.store.Take(c.Request().Context(), key, p)
	if err != nil {
		l.storeFailed(p, err)
		return r, false
	}
	l.decided(p, r.Allowed)
	return r, true
}

func (l *RateLimiter) storeFailed(p ratelimit.Policy, err error) {
	l.metrics.RateLimitDecisions.WithLabelValues(p.Name, "error").Inc()
	l.log.Error("rate limit check failed; request allowed", "policy", p.Name, "error", err)
}

func (l *RateLimiter) decided(p ratelimit.Policy, allowed bool) {
	result := "allowed"
	if !allowed {
		result = "limited"
	}
	l.metrics.RateLimitDecisions.WithLabelValues(p.Name, result).Inc()
}

// OnRefused calls f with the client key (its IP, an IPv6 client's /64) of
// every request refused for a limit (IP_AUTO_BLOCK counts them).
func (l *RateLimiter) OnRefused(f func(ctx context.Context, ip string)) *RateLimiter {
	l.onRefused = f
	return l
}

func (l *RateLimiter) refuse(c *echo.Context, p ratelimit.Policy, r ratelimit.Result, err *apperror.Error) error {
	if l.onRefused != nil {
		l.onRefused(c.Request().Context(), ClientKey(c))
	}
	l.headers(c, p, r)
	c.Response().Header().Set("Retry-After", strconv.FormatInt(int64(retryAfter(r).Seconds()), 10))
	if p.Name != "" {
		return err.WithPolicies(p.Name)
	}
	return err
}

// retryAfter rounds up to whole seconds, at least one, so that retrying
// after it succeeds.
func retryAfter(r ratelimit.Result) time.Duration {
	s := math.Ceil(r.RetryAfter.Seconds())
	return time.Duration(max(s, 1)) * time.Second
}

// headers announces p (RateLimit-Policy) and writes its state. When several
// policies apply (public and register), the one with the least left wins.
func (l *RateLimiter) headers(c *echo.Context, p ratelimit.Policy, r ratelimit.Result) {
	if p.Name != "" {
		c.Response().Header().Add("RateLimit-Policy", l.policyHeader(p))
	}
	l.state(c, p, r)
}

// state writes X-RateLimit-* and RateLimit for r unless a policy with less
// left already did.
func (l *RateLimiter) state(c *echo.Context, p ratelimit.Policy, r ratelimit.Result) {
	h := c.Response().Header()
	if cur := h.Get("X-RateLimit-Remaining"); cur != "" {
		if n, err := strconv.ParseInt(cur, 10, 64); err == nil && n < r.Remaining {
			return
		}
	}
	reset := int64(math.Ceil(float64(r.Reset.UnixMilli()) / 1000))
	h.Set("X-RateLimit-Limit", strconv.FormatInt(r.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(r.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	if p.Name != "" {
		wait := max(int64(math.Ceil(r.Reset.Sub(l.clock.Now()).Seconds())), 0)
		b := make([]byte, 0, 48)
		b = append(append(append(b, '"'), p.Name...), `";r=`...)
		b = append(strconv.AppendInt(b, r.Remaining, 10), ";t="...)
		h.Set("RateLimit", string(strconv.AppendInt(b, wait, 10)))
	}
}

// policyHeader is p's RateLimit-Policy value. Policies are fixed at
// start-up, so each is formatted once, not per request.
func (l *RateLimiter) policyHeader(p ratelimit.Policy) string {
	if v, ok := l.policyHeaders.Load(p); ok {
		return v.(string)
	}
	v := fmt.Sprintf(`"%s";q=%d;w=%d`, p.Name, p.Limit, int64(p.Window.Seconds()))
	l.policyHeaders.Store(p, v)
	return v
}

// securityEvents logs a key going over its limit once per window, not once
// per request: at the first refusal for login, past 10 refusals otherwise.
type securityEvents struct {
	mu       sync.Mutex
	seen     *cache.Map[eventKey, *event]
	clock    clock.Clock
	log      *slog.Logger
	instance string
}

type eventKey struct{ policy, key string }

type event struct {
	until   time.Time
	denials int
	logged  bool
}

const denialsBeforeLog = 10

func (s *securityEvents) denied(p ratelimit.Policy, key string, login bool) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := eventKey{p.Name, key}
	e, ok := s.seen.Get(k)
	if !ok || !now.Before(e.until) {
		e = &event{until: now.Add(p.Window)}
		s.seen.Put(k, e, now.UnixMilli())
	}
	e.denials++
	if !e.logged && (login || e.denials > denialsBeforeLog) {
		e.logged = true
		s.log.Warn("security: rate limit exceeded", "event", "rate_limit_exceeded",
			"policy", p.Name, "key", key, "instance", s.instance, "denials", e.denials)
	}
}
