// Package server is the application's one composition root: Open connects
// what the configuration names, New builds the app from it in named steps
// (stores, services, HTTP), and Run serves with graceful shutdown.
// `go run .`, every command and the tests build through it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/captcha"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/database"
	"github.com/tollgate/tollgate/devidp"
	"github.com/tollgate/tollgate/mail"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/services"
	"github.com/tollgate/tollgate/settings"
)

// Deps are everything the app is built from, from outside (Open makes them
// for the binary).
type Deps struct {
	Config  settings.Config
	DB      *database.DB
	Redis   redis.UniversalClient // nil: no Redis configured
	Secrets Secrets
	Clock   clock.Clock
	Mailer  mail.Mailer
	Log     *slog.Logger
	// RateStore is the rate-limit store; nil builds the default: Redis
	// with per-instance memory fallback when Redis is set, else memory.
	RateStore ratelimit.Store
	// Metrics is where the app records; nil makes a fresh registry.
	Metrics *metrics.Metrics
	// Resolver looks up the TXT records that prove org domains; nil: DNS.
	Resolver services.TXTResolver
}

// Stores are the shared state beside the database: the rate-limit counts
// and the ended sessions and revoked client tokens every instance must see.
type Stores struct {
	Limits   ratelimit.Store
	Memory   *ratelimit.Memory // the per-instance counts (all of them without Redis)
	Shared   *ratelimit.Redis  // the heartbeat's, when the limits are on Redis
	Accounts ratelimit.Store   // per-account limits; nil when RATE_LIMIT_ENABLED is off
	Ended    *services.EndedSessions
	Revoked  *services.Revocations
}

// Services are the rules of the product, built once and shared by the
// HTTP handlers and the commands.
type Services struct {
	Tokens    *services.Tokens
	Hasher    *services.Hasher
	Audit     *services.Audit
	Users     *services.Users
	Outbox    *services.Outbox
	Accounts  *services.Accounts
	Browser   *services.BrowserSessions // cookie sessions of browser apps
	Captcha   *services.Captcha         // the CAPTCHA of the flows that ask for one
	IPRules   *services.IPRules         // who may call at all
	Webhooks  *services.Webhooks        // auth events to the operators' endpoints
	APIKeys   *services.APIKeys
	Clients   *services.Clients
	Orgs      *services.Orgs
	Projects  *services.Projects
	Analytics *services.Analytics
	Health    *services.Health
	Purge     *services.Purge
	DevIdP    *devidp.Provider // DEV_ROUTES only: the development sign-in provider
}

// DevSignedIn is the development page a sign-in with a provider ends at
// (it shows the one-time code), allowed as a redirect_uri with DEV_ROUTES.
const DevSignedIn = "/dev/signed-in"

// Server is the built application; its Stores and Services are the parts
// the commands and the tests use directly.
type Server struct {
	deps     Deps
	handler  http.Handler
	monitor  *database.Monitor
	metrics  *metrics.Metrics
	Stores   Stores
	Services Services
}

// New builds the application from d.
func New(d Deps) (*Server, error) {
	m := d.Metrics
	if m == nil {
		m = metrics.New()
	}
	st := newStores(d, m)
	svc, err := newServices(d, st, m)
	if err != nil {
		return nil, err
	}
	monitor := newMonitor(d, m)
	e, err := newHTTP(d, st, svc, monitor, m)
	if err != nil {
		return nil, err
	}
	return &Server{deps: d, handler: e, Stores: st, monitor: monitor, metrics: m, Services: svc}, nil
}

// newStores builds the rate-limit store (Redis with a per-instance fallback
// when Redis is set) and the shared session and revocation lists.
func newStores(d Deps, m *metrics.Metrics) Stores {
	cfg := d.Config
	st := Stores{Memory: ratelimit.NewMemory(d.Clock, cfg.RateLimitMemoryMaxKeys), Limits: d.RateStore}
	if st.Limits == nil {
		st.Limits = st.Memory
		if d.Redis != nil {
			st.Shared = ratelimit.NewRedis(d.Redis, cfg.RateLimitKeyPrefix, cfg.RateLimitRedisTimeout)
			st.Limits = ratelimit.NewFallback(st.Shared, st.Memory, d.Clock, d.Log, ratelimit.FallbackConfig{})
		}
	}
	if fb, ok := st.Limits.(*ratelimit.Fallback); ok {
		m.Gauge("rate_limit_instances", "Instances sharing the limits, from the Redis heartbeat (each admits limit/instances while Redis is down).",
			func() float64 { return float64(fb.Peers()) })
		fb.OnChange(func(degraded bool) { m.RateLimitFallback.Set(map[bool]float64{false: 0, true: 1}[degraded]) })
	}
	m.Gauge("rate_limit_memory_keys", "Keys held by the per-instance rate-limit store.", func() float64 { return float64(st.Memory.Len()) })
	m.Gauge("rate_limit_memory_counters", fmt.Sprintf("Window counters the per-instance rate-limit store holds (at most %d per key).", ratelimit.Slots+1),
		func() float64 { return float64(st.Memory.Counters()) })
	m.Gauge("rate_limit_memory_evictions", "Keys the per-instance store evicted to stay under RATE_LIMIT_MEMORY_MAX_KEYS.",
		func() float64 { return float64(st.Memory.Evicted()) })
	if cfg.RateLimitEnabled {
		st.Accounts = st.Limits
	}
	st.Ended = services.NewEndedSessions(d.Redis, cfg.RateLimitKeyPrefix, d.Clock, cfg.AccessTokenTTL, cfg.RateLimitRedisTimeout, d.Log)
	m.Gauge("ended_sessions_held", "Ended sessions and voided users this instance holds to refuse their access tokens.",
		func() float64 { return float64(st.Ended.Len()) })
	st.Revoked = services.NewRevocations(d.Redis, cfg.RateLimitKeyPrefix, d.Clock, cfg.RateLimitRedisTimeout, d.Log)
	return st
}

// newServices builds the services over the database and the stores.
func newServices(d Deps, st Stores, m *metrics.Metrics) (Services, error) {
	cfg, db, rl := d.Config, d.DB.DB, d.Config.RateLimits
	var s Services
	s.Tokens = services.NewTokens(d.Secrets.Keys, d.Clock, cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, st.Ended)
	s.Hasher = services.NewHasher(cfg.BcryptCost, cfg.PasswordHashConcurrency, cfg.PasswordHashMaxWait).WithMetrics(m.PasswordHashes)
	m.Gauge("password_hashes_in_flight", "Password hashes running now.", func() float64 { return float64(s.Hasher.InFlight()) })
	m.Gauge("password_hashes_waiting", "Requests waiting for a password-hash slot.", func() float64 { return float64(s.Hasher.Waiting()) })
	s.Audit = services.NewAudit(db, d.Clock, d.Secrets.AuditKey, d.Log).WithCheckpointFile(cfg.AuditCheckpointFile)
	s.Users = services.NewUsers(db, d.Clock, s.Hasher).WithAudit(s.Audit).WithEndedSessions(st.Ended)
	s.Outbox = services.NewOutbox(db, d.Clock, d.Mailer, d.Log, m, services.OutboxConfig{
		MaxAttempts: cfg.MailMaxAttempts, Backoff: cfg.MailRetryBackoff, MaxBackoff: cfg.MailMaxBackoff,
		SendTimeout: cfg.MailSendTimeout, Batch: 20, Keys: d.Secrets.MFAKeys, KeepBodies: cfg.DevRoutes,
	})
	s.Orgs = services.NewOrgs(db, d.Clock, s.Audit, s.Outbox, services.OrgsConfig{
		Signup: cfg.OrgSignup, InvitationTTL: cfg.InvitationTTL, BaseURL: cfg.AppBaseURL, Ended: st.Ended,
	})
	fed := services.FederationConfig{RedirectURIs: cfg.OAuthRedirectURIs, BaseURL: cfg.AppBaseURL,
		SSO: services.SSOConfig{Resolver: d.Resolver, AllowPrivateNetworks: cfg.SSOAllowPrivateNetworks, ClockSkew: cfg.SAMLClockSkew}}
	if fed.SSO.Resolver == nil {
		fed.SSO.Resolver = net.DefaultResolver
	}
	if cfg.OIDCProvidersFile != "" {
		raw, err := os.ReadFile(cfg.OIDCProvidersFile)
		if err != nil {
			return Services{}, fmt.Errorf("OIDC_PROVIDERS_FILE: %w", err)
		}
		if fed.Providers, err = services.ParseProviders(raw); err != nil {
			return Services{}, fmt.Errorf("OIDC_PROVIDERS_FILE %s: %w", cfg.OIDCProvidersFile, err)
		}
		if len(fed.Providers) > 0 && len(fed.RedirectURIs) == 0 {
			return Services{}, errors.New("OIDC_PROVIDERS_FILE lists providers but OAUTH_REDIRECT_URIS names no page to return to")
		}
	}
	if cfg.DevRoutes {
		// Sign-in with a provider, tried without one: the app's own
		// development provider (never in production: DEV_ROUTES is refused
		// there), ending at a page that shows the one-time code.
		idp, err := devidp.New(devidp.Config{Issuer: cfg.AppBaseURL + devidp.Prefix, Callback: cfg.AppBaseURL + "/auth/oauth/" + services.DevProvider + "/callback",
			Now: d.Clock.Now})
		if err != nil {
			return Services{}, fmt.Errorf("development sign-in provider: %w", err)
		}
		s.DevIdP = idp
		fed.Providers = append(fed.Providers, services.Provider{Name: services.DevProvider, DisplayName: "Development sign-in (DEV_ROUTES, never in production)",
			Issuer: cfg.AppBaseURL + devidp.Prefix, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, HTTPClient: idp.Client()})
		fed.RedirectURIs = append(fed.RedirectURIs, cfg.AppBaseURL+DevSignedIn)
	}
	var err error
	s.Accounts, err = services.NewAccounts(services.AccountDeps{
		DB: db, Clock: d.Clock, Users: s.Users, Orgs: s.Orgs, Tokens: s.Tokens, Hasher: s.Hasher, Outbox: s.Outbox, Audit: s.Audit, Log: d.Log, Metrics: m,
		Config: services.AuthConfig{
			BaseURL: cfg.AppBaseURL, VerifyURL: cfg.VerifyEmailURL, ResetURL: cfg.ResetPasswordURL, RefreshTTL: cfg.RefreshTokenTTL, VerificationTTL: cfg.EmailVerificationTTL,
			ReuseGrace: cfg.RefreshReuseGrace, ResetTTL: cfg.PasswordResetTTL,
			AccountStore: st.Accounts, LoginAccount: rl.LoginAccount, ForgotAccount: rl.ForgotAccount, MailAddress: rl.MailAddress,
			Issuer: cfg.MFAIssuer, MFAKeys: d.Secrets.MFAKeys, Ended: st.Ended,
		},
		Federation: fed,
	})
	if err != nil {
		return Services{}, err
	}
	s.Browser = services.NewBrowserSessions(s.Accounts)
	if s.Captcha, err = buildCaptcha(cfg, st, d, m); err != nil {
		return Services{}, err
	}
	if s.IPRules, err = buildIPRules(cfg, st, d, m, s.Audit); err != nil {
		return Services{}, err
	}
	s.Webhooks = services.NewWebhooks(db, d.Clock, s.Audit, d.Log, services.WebhooksConfig{MFAKeys: d.Secrets.MFAKeys,
		AllowPrivate: cfg.WebhookAllowPrivateNetworks, RequireHTTPS: cfg.IsProduction() && !cfg.AllowHTTPBaseURL,
		Timeout: cfg.WebhookTimeout, MaxAttempts: cfg.WebhookMaxAttempts})
	env := "test"
	if cfg.IsProduction() {
		env = "live"
	}
	s.APIKeys = services.NewAPIKeys(db, d.Clock, d.Log, s.Audit, services.APIKeyConfig{
		Env: env, MaxLifetime: cfg.APIKeyMaxLifetime, RotationGrace: cfg.APIKeyRotationGrace, Peppers: d.Secrets.Peppers,
		Tiers: rl.Tiers, Fallback: rl.User, SharesUserLimit: cfg.APIKeySharesUserLimit, MaxPerUser: cfg.APIKeyMaxPerUser,
	})
	s.Clients = services.NewClients(db, d.Clock, d.Log, s.Tokens, st.Revoked, s.Audit, s.Orgs, services.OAuthConfig{
		Audience: cfg.JWTAudience, TokenTTL: cfg.OAuthTokenTTL, RotationGrace: cfg.APIKeyRotationGrace, Peppers: d.Secrets.Peppers,
	})
	s.Projects = services.NewProjects(db, d.Clock)
	s.Analytics = services.NewAnalytics(db, d.Clock)
	optional := map[string]services.Check{}
	if d.Redis != nil {
		optional["redis"] = func(ctx context.Context) error { return d.Redis.Ping(ctx).Err() }
	}
	s.Health = services.NewHealth(2*time.Second, map[string]services.Check{"database": d.DB.Ping}, optional, d.Log, m)
	// The clean-up the server runs every PURGE_INTERVAL and `tollgate
	// purge` runs once: one definition, so both delete the same.
	s.Purge = services.NewPurge(db, d.Clock, d.Log, m, cfg.EmailVerificationTTL).WithAudit(s.Audit, cfg.AuditRetention)
	return s, nil
}

// newMonitor watches the database through the requests' faults: an outage
// they find shows in the metrics at once, not only at the next readiness
// probe.
func newMonitor(d Deps, m *metrics.Metrics) *database.Monitor {
	monitor := database.NewMonitor(d.DB, d.Log)
	monitor.OnChange(func(down bool) {
		m.DependencyUp.WithLabelValues("database").Set(map[bool]float64{false: 1, true: 0}[down])
	})
	m.DBPool(d.DB.Stats)
	return monitor
}

// Close releases what New started.
func (s *Server) Close() {
	s.Stores.Memory.Close()
	s.monitor.Close()
}

// Handler is the application as an http.Handler (tests serve it directly).
func (s *Server) Handler() http.Handler { return s.handler }

// buildCaptcha makes the CAPTCHA gate of cfg (off: one that asks for none).
func buildCaptcha(cfg settings.Config, st Stores, d Deps, m *metrics.Metrics) (*services.Captcha, error) {
	c := services.CaptchaConfig{Window: cfg.CaptchaWindow, FailOpen: cfg.CaptchaFailOpen, Store: st.Limits,
		Flows: map[string]services.CaptchaMode{}}
	for flow, mode := range cfg.CaptchaFlows {
		c.Flows[flow] = services.CaptchaMode{Always: mode.Always, After: mode.After}
	}
	if cfg.CaptchaProvider != "off" {
		v, err := captcha.New(captcha.Config{Provider: cfg.CaptchaProvider, Secret: cfg.CaptchaSecret, URL: cfg.CaptchaVerifyURL,
			Timeout: cfg.CaptchaTimeout, MinScore: cfg.CaptchaMinScore})
		if err != nil {
			return nil, err
		}
		c.Verifier = v
	}
	return services.NewCaptcha(c, d.Log, m), nil
}

// buildIPRules makes the IP rules of cfg and reads the stored ones.
func buildIPRules(cfg settings.Config, st Stores, d Deps, m *metrics.Metrics, audit *services.Audit) (*services.IPRules, error) {
	c := services.IPRulesConfig{Store: st.Limits, AutoBlockFor: cfg.IPAutoBlockFor, KeyPrefix: cfg.RateLimitKeyPrefix}
	if d.Redis != nil {
		c.Redis = d.Redis
	}
	for _, list := range []struct {
		from []string
		to   *[]netip.Prefix
	}{{cfg.IPAllowlist, &c.Allow}, {cfg.IPBlocklist, &c.Block}} {
		for _, v := range list.from {
			p, err := services.ParseCIDR(v)
			if err != nil {
				return nil, err
			}
			*list.to = append(*list.to, p)
		}
	}
	if cfg.IPAutoBlock != "" {
		p, err := ratelimit.ParsePolicy("ip_refusals", cfg.IPAutoBlock)
		if err != nil {
			return nil, err
		}
		c.AutoBlock = p
	}
	r := services.NewIPRules(d.DB.DB, d.Clock, audit, d.Log, m, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r, r.Reload(ctx)
}
