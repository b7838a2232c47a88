// Package server wires the dependencies into services, handlers, middleware
// and routes, and runs the HTTP server with graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v5"
	echomw "github.com/labstack/echo/v5/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/database"
	"github.com/tollgate/tollgate/handlers"
	"github.com/tollgate/tollgate/middleware"
	"github.com/tollgate/tollgate/openapi"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/routes"
	"github.com/tollgate/tollgate/services"
	"github.com/tollgate/tollgate/settings"
)

// Version is reported by /public/status.
const Version = "0.1.0"

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 1 << 20

// Deps are everything the server needs from outside.
type Deps struct {
	Config settings.Config
	DB     *database.DB
	Redis  *redis.Client // nil: no Redis configured
	Keys   *services.KeySet
	Clock  clock.Clock
	Mailer services.Mailer
	Log    *slog.Logger
	// RateStore overrides the rate-limit store; nil builds the default:
	// Redis with per-instance memory fallback when Redis is set, else memory.
	RateStore ratelimit.Store
}

// Server holds the wired application.
type Server struct {
	deps   Deps
	echo   *echo.Echo
	memory *ratelimit.Memory
}

// New wires the application.
func New(d Deps) (*Server, error) {
	cfg := d.Config
	tokens := services.NewTokens(d.Keys, d.Clock, cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL)
	users := services.NewUsers(d.DB.DB, d.Clock, cfg.BcryptCost)
	auth, err := services.NewAuth(d.DB.DB, d.Clock, users, tokens, d.Mailer, d.Log, services.AuthConfig{
		BaseURL: cfg.AppBaseURL, RefreshTTL: cfg.RefreshTokenTTL, VerificationTTL: cfg.EmailVerificationTTL, BcryptCost: cfg.BcryptCost,
	})
	if err != nil {
		return nil, err
	}
	checks := map[string]services.Check{"database": d.DB.Ping}
	if d.Redis != nil {
		checks["redis"] = func(ctx context.Context) error { return d.Redis.Ping(ctx).Err() }
	}

	e := echo.NewWithConfig(echo.Config{
		Logger:           d.Log,
		HTTPErrorHandler: handlers.ErrorHandler(d.Log),
		Validator:        handlers.NewValidator(),
		IPExtractor:      ipExtractor(cfg),
		SchemeExtractor:  echo.ExtractSchemeFromHeaders(proxyTrust(cfg)...),
	})
	e.Use(
		echomw.RequestID(),
		middleware.RequestLog(d.Log),
		echomw.RecoverWithConfig(echomw.RecoverConfig{DisableStackAll: true}),
		echomw.SecureWithConfig(secureConfig(cfg)),
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

	memory := ratelimit.NewMemory(d.Clock)
	store := d.RateStore
	if store == nil {
		store = memory
		if d.Redis != nil {
			store = ratelimit.NewFallback(ratelimit.NewRedis(d.Redis, cfg.RateLimitKeyPrefix, cfg.RateLimitRedisTimeout),
				memory, d.Clock, d.Log, time.Second)
		}
	}
	limiter := middleware.NewRateLimiter(store, cfg.RateLimitEnabled, d.Clock, d.Log, instanceName())
	rl := cfg.RateLimits
	var apiDocs *handlers.Docs
	if cfg.SwaggerEnabled {
		spec, err := openapi.Served()
		if err != nil {
			return nil, err
		}
		apiDocs = handlers.NewDocs(spec)
	}

	routes.Register(e, routes.Handlers{
		System:    handlers.NewSystem(Version, services.NewHealth(2*time.Second, checks), tokens),
		Auth:      handlers.NewAuth(auth),
		Users:     handlers.NewUsers(users),
		Projects:  handlers.NewProjects(services.NewProjects(d.DB.DB, d.Clock)),
		Analytics: handlers.NewAnalytics(services.NewAnalytics(d.DB.DB, d.Clock)),
		Docs:      apiDocs,
	}, routes.Guards{
		RequireAuth: chain(limiter.FailedAuth(rl.Public), middleware.NewAuth(tokens).RequireAuth),
		Public:      limiter.PerIP(rl.Public),
		Register:    limiter.PerIP(rl.Register),
		Login:       limiter.LoginFailures(rl.Login),
		User:        limiter.PerUser(rl.Tiers, rl.User),
	})
	return &Server{deps: d, echo: e, memory: memory}, nil
}

// chain applies outer around inner.
func chain(outer, inner echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return outer(inner(next)) }
}

// instanceName identifies this process in security logs.
func instanceName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// Close releases what New started.
func (s *Server) Close() { s.memory.Close() }

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

// Echo exposes the router, for tests that walk the registered routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Run serves on addr until ctx is cancelled, then drains in-flight requests
// for up to SHUTDOWN_TIMEOUT.
func (s *Server) Run(ctx context.Context, addr string) error {
	sc := echo.StartConfig{
		Address:         addr,
		HideBanner:      true,
		HidePort:        true,
		GracefulTimeout: s.deps.Config.ShutdownTimeout,
		ListenerAddrFunc: func(a net.Addr) {
			s.deps.Log.Info("listening", "address", a.String(), "env", s.deps.Config.AppEnv)
		},
	}
	err := sc.Start(ctx, s.echo)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
