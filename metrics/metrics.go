// Package metrics holds the application's Prometheus collectors on a
// registry of its own (never the global one, so tests and several apps in
// one process do not collide). Services and middleware take *Metrics
// through their constructors and record what happened; /metrics serves it
// on a separate listener (METRICS_ADDR).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tollgate/tollgate/product"
)

// Namespace prefixes every metric name (tollgate_...): the product's ID.
const Namespace = product.ID

// Login outcomes, the values of tollgate_login_attempts_total{outcome}.
const (
	LoginSuccess     = "success"
	LoginFailed      = "invalid_credentials"
	LoginUnverified  = "email_not_verified"
	LoginLimited     = "rate_limited"
	LoginBusy        = "busy"
	LoginBadRequest  = "bad_request"
	LoginServerError = "error"
)

// Metrics are the application's own series.
type Metrics struct {
	Registry *prometheus.Registry

	LoginAttempts      *prometheus.CounterVec // outcome
	RateLimitDecisions *prometheus.CounterVec // policy, result: allowed, limited, error
	RateLimitFallback  prometheus.Gauge       // 1 while limits are per instance
	RefreshReuse       prometheus.Counter     // families revoked for reuse
	RefreshRetries     prometheus.Counter     // rotated tokens presented within the grace period
	DependencyUp       *prometheus.GaugeVec   // dependency: database, redis (as /readyz last saw them)
	PurgedRows         *prometheus.CounterVec // table
	MailDelivered      *prometheus.CounterVec // result: sent, retry, abandoned
	PasswordHashes     *prometheus.CounterVec // cost: bcrypt hashes and comparisons run
	CaptchaChecks      *prometheus.CounterVec // flow, result
	IPBlocked          *prometheus.CounterVec // source: requests refused by an IP rule
	IPAutoBlocks       prometheus.Counter     // automatic temporary blocks made
}

// New builds the collectors, with the Go runtime and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		LoginAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "login_attempts_total",
			Help: "Login attempts by outcome."}, []string{"outcome"}),
		RateLimitDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rate_limit_decisions_total",
			Help: "Rate-limit checks by policy and result (allowed, limited, error: the store failed and the request passed)."},
			[]string{"policy", "result"}),
		RateLimitFallback: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "rate_limit_fallback",
			Help: "1 while the shared store (Redis) is unavailable and limits hold per instance."}),
		RefreshReuse: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "refresh_token_reuse_total",
			Help: "Refresh tokens presented after rotation past the grace period: the family was revoked."}),
		RefreshRetries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "refresh_token_retries_total",
			Help: "Rotated refresh tokens presented again within the grace period (answered with their successor, family kept)."}),
		DependencyUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "dependency_up",
			Help: "1 when the dependency answered the last readiness check."}, []string{"dependency"}),
		PurgedRows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "purged_rows_total",
			Help: "Rows deleted by the periodic purge, by table."}, []string{"table"}),
		MailDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "mail_delivery_attempts_total",
			Help: "Outbox delivery attempts by result: sent, retry (failed, will retry), abandoned (failed for the last time)."}, []string{"result"}),
		PasswordHashes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "password_hashes_total",
			Help: "bcrypt hashes and comparisons run, by cost: checks at a cost below BCRYPT_COST fall to zero as passwords are rehashed."}, []string{"cost"}),
		CaptchaChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "captcha_checks_total",
			Help: "CAPTCHA decisions by flow and result: passed, required (none sent), refused, unavailable_open, unavailable_closed."}, []string{"flow", "result"}),
		IPBlocked: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "ip_blocked_requests_total",
			Help: "Requests refused by an IP block rule, by the rule's source: config, admin or auto."}, []string{"source"}),
		IPAutoBlocks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "ip_auto_blocks_total",
			Help: "Temporary IP blocks made after repeated rate-limit refusals (IP_AUTO_BLOCK)."}),
	}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.LoginAttempts, m.RateLimitDecisions, m.RateLimitFallback, m.RefreshReuse, m.RefreshRetries, m.DependencyUp, m.PurgedRows, m.MailDelivered, m.PasswordHashes,
		m.CaptchaChecks, m.IPBlocked, m.IPAutoBlocks)
	for _, o := range []string{LoginSuccess, LoginFailed, LoginUnverified, LoginLimited, LoginBusy} {
		m.LoginAttempts.WithLabelValues(o) // present at zero, so rate() works from the first scrape
	}
	return m
}

// Gauge registers a gauge read from f at each scrape.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// PoolStats are what DBPool reads at each scrape.
type PoolStats struct {
	Max, Open, InUse, Idle, Waits int64
	WaitSeconds                   float64
}

// DBPool registers the database connection pool's numbers, read from f.
func (m *Metrics) DBPool(f func() PoolStats) {
	gauge := func(name, help string, v func(PoolStats) float64) {
		m.Gauge(name, help, func() float64 { return v(f()) })
	}
	gauge("db_connections_max", "Connections the pool may open.", func(s PoolStats) float64 { return float64(s.Max) })
	gauge("db_connections_open", "Connections open now.", func(s PoolStats) float64 { return float64(s.Open) })
	gauge("db_connections_in_use", "Connections serving a query now.", func(s PoolStats) float64 { return float64(s.InUse) })
	gauge("db_connections_idle", "Open connections waiting for work.", func(s PoolStats) float64 { return float64(s.Idle) })
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "db_connection_waits_total",
			Help: "Queries that waited for a free connection."}, func() float64 { return float64(f().Waits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "db_connection_wait_seconds_total",
			Help: "Time queries spent waiting for a free connection."}, func() float64 { return f().WaitSeconds }))
}
