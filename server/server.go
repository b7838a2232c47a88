// Package server wires the dependencies into services, handlers, middleware
// and routes, and runs the HTTP server with graceful shutdown.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	echoprometheus "github.com/labstack/echo-contrib/v5/echoprometheus"
	"github.com/labstack/echo/v5"
	echomw "github.com/labstack/echo/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/database"
	"github.com/tollgate/tollgate/handlers"
	"github.com/tollgate/tollgate/mail"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/middleware"
	"github.com/tollgate/tollgate/openapi"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/routes"
	"github.com/tollgate/tollgate/services"
	"github.com/tollgate/tollgate/settings"
)

// Version is reported by /public/status. Release builds stamp it:
// go build -ldflags "-X github.com/tollgate/tollgate/server.Version=1.2.3".
// Unstamped, it comes from the build information (the module version, or
// the VCS revision of a local build).
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, modified := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 1 << 20

// Deps are everything the server needs from outside.
type Deps struct {
	Config settings.Config
	DB     *database.DB
	Redis  redis.UniversalClient // nil: no Redis configured
	Keys   *services.KeySet
	// Peppers are the API key HMAC secrets (services.LoadPeppers).
	Peppers services.Peppers
	// AuditKey is the audit log's hash-chain HMAC key.
	AuditKey []byte
	// MFAKeys encrypt TOTP secrets (services.LoadMFAKeys).
	MFAKeys services.MFAKeys
	Clock   clock.Clock
	Mailer  mail.Mailer
	Log     *slog.Logger
	// RateStore overrides the rate-limit store; nil builds the default:
	// Redis with per-instance memory fallback when Redis is set, else memory.
	RateStore ratelimit.Store
	// Metrics is where the app records; nil makes a fresh registry.
	Metrics *metrics.Metrics
}

// Server holds the wired application.
type Server struct {
	deps    Deps
	echo    *echo.Echo
	memory  *ratelimit.Memory
	shared  *ratelimit.Redis
	store   ratelimit.Store
	health  *services.Health
	monitor *database.Monitor
	metrics *metrics.Metrics
	purge   *services.Purge
	apiKeys *services.APIKeys
	outbox  *services.Outbox
	ended   *services.EndedSessions
	audit   *services.Audit
}

// New wires the application.
func New(d Deps) (*Server, error) {
	cfg := d.Config
	m := d.Metrics
	if m == nil {
		m = metrics.New()
	}
	ended := services.NewEndedSessions(d.Redis, cfg.RateLimitKeyPrefix, d.Clock, cfg.AccessTokenTTL, cfg.RateLimitRedisTimeout, d.Log)
	tokens := services.NewTokens(d.Keys, d.Clock, cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, ended)
	hasher := services.NewHasher(cfg.BcryptCost, cfg.PasswordHashConcurrency, cfg.PasswordHashMaxWait).WithMetrics(m.PasswordHashes)
	audit := services.NewAudit(d.DB.DB, d.Clock, d.AuditKey, d.Log).WithCheckpointFile(cfg.AuditCheckpointFile)
	users := services.NewUsers(d.DB.DB, d.Clock, hasher).WithAudit(audit).WithEndedSessions(ended)
	memory := ratelimit.NewMemory(d.Clock, cfg.RateLimitMemoryMaxKeys)
	store := d.RateStore
	var shared *ratelimit.Redis // the heartbeat's, when the limits are on Redis
	if store == nil {
		store = memory
		if d.Redis != nil {
			shared = ratelimit.NewRedis(d.Redis, cfg.RateLimitKeyPrefix, cfg.RateLimitRedisTimeout)
			store = ratelimit.NewFallback(shared, memory, d.Clock, d.Log, ratelimit.FallbackConfig{})
		}
	}
	if fb, ok := store.(*ratelimit.Fallback); ok {
		m.Gauge("rate_limit_instances", "Instances sharing the limits, from the Redis heartbeat (each admits limit/instances while Redis is down).",
			func() float64 { return float64(fb.Peers()) })
		fb.OnChange(func(degraded bool) { m.RateLimitFallback.Set(map[bool]float64{false: 0, true: 1}[degraded]) })
	}
	var accountStore ratelimit.Store // per-account limits follow RATE_LIMIT_ENABLED
	if cfg.RateLimitEnabled {
		accountStore = store
	}
	outbox := services.NewOutbox(d.DB.DB, d.Clock, d.Mailer, d.Log, m, services.OutboxConfig{
		MaxAttempts: cfg.MailMaxAttempts, Backoff: cfg.MailRetryBackoff, MaxBackoff: cfg.MailMaxBackoff,
		SendTimeout: cfg.MailSendTimeout, Batch: 20, Keys: d.MFAKeys, KeepBodies: cfg.DevRoutes,
	})
	var dev *handlers.Dev
	if cfg.DevRoutes {
		dev = handlers.NewDev(users, outbox)
		d.Log.Warn("development routes on: POST /dev/users makes users of any role, GET /dev/mail shows queued mail (DEV_ROUTES; never in production)")
	}
	accounts, err := services.NewAccounts(services.AccountDeps{
		DB: d.DB.DB, Clock: d.Clock, Users: users, Tokens: tokens, Hasher: hasher, Outbox: outbox, Audit: audit, Log: d.Log, Metrics: m,
		Config: services.AuthConfig{
			BaseURL: cfg.AppBaseURL, RefreshTTL: cfg.RefreshTokenTTL, VerificationTTL: cfg.EmailVerificationTTL,
			ReuseGrace: cfg.RefreshReuseGrace, ResetTTL: cfg.PasswordResetTTL,
			AccountStore: accountStore, LoginAccount: cfg.RateLimits.LoginAccount, ForgotAccount: cfg.RateLimits.ForgotAccount,
			MailAddress: cfg.RateLimits.MailAddress,
			Issuer:      cfg.MFAIssuer, MFAKeys: d.MFAKeys, Ended: ended,
		},
	})
	if err != nil {
		return nil, err
	}
	optional := map[string]services.Check{}
	if d.Redis != nil {
		optional["redis"] = func(ctx context.Context) error { return d.Redis.Ping(ctx).Err() }
	}
	health := services.NewHealth(2*time.Second, map[string]services.Check{"database": d.DB.Ping}, optional, d.Log, m)
	monitor := database.NewMonitor(d.DB, d.Log)
	// An outage the requests find shows in the metrics at once, not only at
	// the next readiness probe.
	monitor.OnChange(func(down bool) {
		m.DependencyUp.WithLabelValues("database").Set(map[bool]float64{false: 1, true: 0}[down])
	})

	e := echo.NewWithConfig(echo.Config{
		Logger:           d.Log,
		HTTPErrorHandler: handlers.ErrorHandler(d.Log, monitor.Classify),
		Validator:        handlers.NewValidator(),
		JSONSerializer:   handlers.JSONSerializer{},
		IPExtractor:      ipExtractor(cfg),
		SchemeExtractor:  echo.ExtractSchemeFromHeaders(proxyTrust(cfg)...),
	})
	requestMetrics, err := echoprometheus.MiddlewareConfig{
		Namespace: "tollgate", Subsystem: "http", Registerer: m.Registry,
		// Unknown paths must not become label values (one series per probe
		// of a scanner); the Host header is the client's to choose.
		DoNotUseRequestPathFor404: true,
		// nor the method: any token is a valid method, so only HTTP's own
		// are label values, the rest one "OTHER".
		LabelFuncs: map[string]echoprometheus.LabelValueFunc{
			"host":   func(*echo.Context, error) string { return "" },
			"method": func(c *echo.Context, _ error) string { return middleware.KnownMethod(c.Request().Method) },
		},
	}.ToMiddleware()
	if err != nil {
		return nil, err
	}
	// HEAD is GET without the body: routed as GET; net/http, which still
	// sees the original HEAD request, drops the body it writes.
	e.Pre(middleware.HeadAsGet, middleware.ClientRequestID)
	e.Use(
		echomw.RequestID(),
		requestMetrics,
		middleware.RequestLog(d.Log),
		echomw.RecoverWithConfig(echomw.RecoverConfig{DisableStackAll: true}),
		echomw.SecureWithConfig(secureConfig(cfg)),
		// Every request gets a deadline; the database and password hashing
		// honour it, and ErrorHandler answers 504 when it passes.
		echomw.ContextTimeoutWithConfig(echomw.ContextTimeoutConfig{
			Timeout: cfg.RequestTimeout, ErrorHandler: func(_ *echo.Context, err error) error { return err },
		}),
		middleware.RequestInfo,
	)
	if len(cfg.CORSAllowedOrigins) > 0 {
		e.Use(echomw.CORSWithConfig(echomw.CORSConfig{
			AllowOrigins:  cfg.CORSAllowedOrigins,
			AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodOptions},
			AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType},
			ExposeHeaders: exposedHeaders,
			MaxAge:        600,
		}))
	}
	e.Use(echomw.BodyLimit(MaxBodyBytes))

	m.Gauge("password_hashes_in_flight", "Password hashes running now.", func() float64 { return float64(hasher.InFlight()) })
	m.Gauge("password_hashes_waiting", "Requests waiting for a password-hash slot.", func() float64 { return float64(hasher.Waiting()) })
	m.Gauge("rate_limit_memory_keys", "Keys held by the per-instance rate-limit store.", func() float64 { return float64(memory.Len()) })
	m.Gauge("rate_limit_memory_evictions", "Keys the per-instance store evicted to stay under RATE_LIMIT_MEMORY_MAX_KEYS.",
		func() float64 { return float64(memory.Evicted()) })
	m.DBPool(d.DB.Stats)

	limiter := middleware.NewRateLimiter(store, cfg.RateLimitEnabled, d.Clock, d.Log, m, instanceName())
	rl := cfg.RateLimits
	var apiDocs *handlers.Docs
	if cfg.SwaggerEnabled {
		spec, err := openapi.Served()
		if err != nil {
			return nil, err
		}
		apiDocs = handlers.NewDocs(spec)
	}

	env := "test"
	if cfg.IsProduction() {
		env = "live"
	}
	apiKeys := services.NewAPIKeys(d.DB.DB, d.Clock, d.Log, audit, services.APIKeyConfig{
		Env: env, MaxLifetime: cfg.APIKeyMaxLifetime, RotationGrace: cfg.APIKeyRotationGrace, Peppers: d.Peppers,
		Tiers: rl.Tiers, Fallback: rl.User, SharesUserLimit: cfg.APIKeySharesUserLimit, MaxPerUser: cfg.APIKeyMaxPerUser,
	})
	revocations := services.NewRevocations(d.Redis, cfg.RateLimitKeyPrefix, d.Clock, cfg.RateLimitRedisTimeout, d.Log)
	clients := services.NewClients(d.DB.DB, d.Clock, d.Log, tokens, revocations, audit, services.OAuthConfig{
		Audience: cfg.JWTAudience, TokenTTL: cfg.OAuthTokenTTL, RotationGrace: cfg.APIKeyRotationGrace, Peppers: d.Peppers,
	})
	routes.Register(e, routes.Handlers{
		System:    handlers.NewSystem(version(), health, tokens, cfg.SwaggerEnabled),
		Auth:      handlers.NewAuth(accounts),
		Account:   handlers.NewAccount(accounts),
		Users:     handlers.NewUsers(users, accounts),
		Projects:  handlers.NewProjects(services.NewProjects(d.DB.DB, d.Clock)),
		Analytics: handlers.NewAnalytics(services.NewAnalytics(d.DB.DB, d.Clock)),
		Docs:      apiDocs,
		Dev:       dev,
		APIKeys:   handlers.NewAPIKeys(apiKeys),
		OAuth:     handlers.NewOAuth(clients, cfg.AppBaseURL),
		Audit:     handlers.NewAudit(audit),
	}, routes.NewGuards(
		chain(middleware.NoStore, chain(limiter.FailedAuth(rl.Public), middleware.NewAuth(tokens, apiKeys, clients, users).RequireAuth)),
		limiter.PerUser(rl.Tiers, rl.User),
		routes.Limits{
			Public:        limiter.PerIP(rl.Public),
			Register:      limiter.PerIP(rl.Register),
			LoginAttempts: chain(middleware.LoginOutcomes(m), limiter.PerIP(rl.LoginIP)),
			Login:         limiter.LoginFailures(rl.Login),
			TokenIP:       limiter.PerIP(rl.Token),
			TokenClient:   limiter.PerClientID(rl.Token, ratelimit.Policy{Name: "token_client_ip", Limit: rl.Login.Limit, Window: rl.Login.Window}),
		}))
	purge := NewPurge(cfg, d.DB, audit, d.Clock, d.Log, m)
	return &Server{deps: d, echo: e, memory: memory, shared: shared, store: store, health: health, monitor: monitor, metrics: m, purge: purge,
		apiKeys: apiKeys, outbox: outbox, ended: ended, audit: audit}, nil
}

// chain applies outer around inner.
func chain(outer, inner echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return outer(inner(next)) }
}

// NewPurge builds the clean-up that the server runs every PURGE_INTERVAL
// and `tollgate purge` runs once: one definition, so both delete the same.
func NewPurge(cfg settings.Config, db *database.DB, audit *services.Audit, clk clock.Clock, log *slog.Logger, m *metrics.Metrics) *services.Purge {
	return services.NewPurge(db.DB, clk, log, m, cfg.EmailVerificationTTL).WithAudit(audit, cfg.AuditRetention)
}

// instanceName identifies this process in security logs.
func instanceName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// instanceID names this process in the heartbeat: unique even for two
// processes of one name (containers that all run as pid 1).
func instanceID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return instanceName() + ":" + hex.EncodeToString(b)
}

// Close releases what New started.
func (s *Server) Close() {
	s.memory.Close()
	s.monitor.Close()
}

// Headers browsers may read on cross-origin answers.
var exposedHeaders = []string{
	echo.HeaderXRequestID, "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
	"RateLimit", "RateLimit-Policy", "WWW-Authenticate",
}

// ipExtractor: the direct peer is the client unless it is a listed proxy;
// only then is X-Forwarded-For read, right to left, up to the first
// untrusted hop.
func ipExtractor(cfg settings.Config) echo.IPExtractor {
	if len(cfg.TrustedProxyNets) == 0 {
		return echo.ExtractIPDirect()
	}
	return echo.ExtractIPFromXFFHeader(proxyTrust(cfg)...)
}

// proxyTrust trusts exactly TRUSTED_PROXIES: not Echo's default of every
// private and loopback address. It also decides whose X-Forwarded-Proto
// counts (and so when HSTS is sent).
func proxyTrust(cfg settings.Config) []echo.TrustOption {
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range cfg.TrustedProxyNets {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return opts
}

func secureConfig(cfg settings.Config) echomw.SecureConfig {
	sc := echomw.SecureConfig{
		XSSProtection:         "0", // the legacy filter causes more harm than good; CSP replaces it
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ContentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'",
		ReferrerPolicy:        "no-referrer",
	}
	if cfg.IsProduction() {
		sc.HSTSMaxAge = 31536000
	}
	return sc
}

// Handler is the application as an http.Handler (tests serve it directly).
func (s *Server) Handler() http.Handler { return s.echo }

// DeliverMail makes one delivery pass over the outbox now (tests, and the
// `tollgate` commands that queue mail, use it; Run delivers on its own).
func (s *Server) DeliverMail(ctx context.Context) (int, error) { return s.outbox.DeliverDue(ctx) }

// Heartbeat announces this instance in Redis every second until ctx ends,
// keeping the count of instances that share the limits and the breaker's
// state current whatever the traffic (Run starts it; without Redis it
// returns at once).
func (s *Server) Heartbeat(ctx context.Context) {
	if fb, ok := s.store.(*ratelimit.Fallback); ok && s.shared != nil {
		fb.Heartbeat(ctx, s.shared, instanceID(), time.Second, s.deps.Config.RateLimitRedisTimeout)
	}
}

// FollowEndedSessions keeps this instance's copy of the ended sessions
// current from Redis until ctx ends (Run starts it).
func (s *Server) FollowEndedSessions(ctx context.Context) { s.ended.Run(ctx) }

// ResyncEndedSessions reads the shared set of ended sessions once now.
func (s *Server) ResyncEndedSessions(ctx context.Context) error { return s.ended.Resync(ctx) }

// Echo exposes the router, for tests that walk the registered routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// MetricsHandler serves the Prometheus exposition of this app's registry.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
}

// Run serves on addr until ctx is cancelled, then shuts down in three steps:
// /readyz turns 503 while the server keeps serving for SHUTDOWN_DRAIN_DELAY
// (load balancers notice and stop sending), then the listener closes and
// in-flight requests get up to SHUTDOWN_TIMEOUT to finish. With
// METRICS_ADDR set, /metrics is served on that second listener meanwhile;
// with PURGE_INTERVAL, stale tokens and accounts are deleted periodically.
func (s *Server) Run(ctx context.Context, addr string) error {
	cfg, log := s.deps.Config, s.deps.Log
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	go func() {
		select {
		case <-ctx.Done():
		case <-serveCtx.Done():
			return
		}
		s.health.Drain()
		log.Info("shutdown started: /readyz answers 503, still serving during the drain delay", "drain_delay", cfg.ShutdownDrainDelay)
		select {
		case <-time.After(cfg.ShutdownDrainDelay):
		case <-serveCtx.Done():
		}
		log.Info("shutdown: closing the listener, finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
		stopServing()
	}()
	if cfg.MetricsAddr != "" {
		ms := echo.StartConfig{Address: cfg.MetricsAddr, HideBanner: true, HidePort: true, GracefulTimeout: time.Second,
			ListenerAddrFunc: func(a net.Addr) { log.Info("metrics listening", "address", a.String(), "path", "/metrics") }}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.MetricsHandler())
		go func() {
			if err := ms.Start(serveCtx, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener failed", "error", err)
			}
		}()
	}
	if cfg.PurgeInterval > 0 {
		go s.purge.Every(serveCtx, cfg.PurgeInterval)
	}
	go s.Heartbeat(serveCtx)
	go s.FollowEndedSessions(serveCtx)
	// Queued mail is delivered in the background, with retries.
	go s.outbox.Run(serveCtx, cfg.MailPollInterval)
	// API key last-use times are batched in memory and written each minute.
	flushed := make(chan struct{})
	go func() { s.apiKeys.Every(serveCtx, time.Minute); close(flushed) }()
	// Signed checkpoints of the audit chain go to the log, the last one at
	// shutdown (before the database closes).
	checkpointed := make(chan struct{})
	go func() {
		if cfg.AuditCheckpointInterval > 0 {
			s.audit.Checkpoints(serveCtx, cfg.AuditCheckpointInterval)
		}
		close(checkpointed)
	}()
	defer func() { stopServing(); <-flushed; <-checkpointed }()
	ln, err := (&net.ListenConfig{}).Listen(serveCtx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	sc := echo.StartConfig{
		Listener:        jsonErrorsListener{ln},
		HideBanner:      true,
		HidePort:        true,
		GracefulTimeout: cfg.ShutdownTimeout,
		ListenerAddrFunc: func(a net.Addr) {
			log.Info("listening", "address", a.String(), "env", cfg.AppEnv)
		},
		BeforeServeFunc: func(hs *http.Server) error {
			// Slow or idle clients cannot hold connections open forever.
			hs.ReadHeaderTimeout = cfg.HTTPReadHeaderTimeout
			hs.ReadTimeout = cfg.HTTPReadTimeout
			hs.WriteTimeout = cfg.HTTPWriteTimeout
			hs.IdleTimeout = cfg.HTTPIdleTimeout
			hs.MaxHeaderBytes = cfg.HTTPMaxHeaderBytes
			return nil
		},
	}
	err = sc.Start(serveCtx, s.echo)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err == nil {
		log.Info("shutdown complete")
	}
	return err
}
