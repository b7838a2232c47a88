package server

import (
	"net/http"
	"slices"

	echoprometheus "github.com/labstack/echo-contrib/v5/echoprometheus"
	"github.com/labstack/echo/v5"
	echomw "github.com/labstack/echo/v5/middleware"

	"github.com/tollgate/tollgate/browser"
	"github.com/tollgate/tollgate/database"
	"github.com/tollgate/tollgate/handlers"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/middleware"
	"github.com/tollgate/tollgate/openapi"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/routes"
	"github.com/tollgate/tollgate/settings"
	"github.com/tollgate/tollgate/web"
)

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 1 << 20

// newHTTP builds the router: the middleware every request passes, then
// each route with its guards (routes/).
func newHTTP(d Deps, st Stores, svc Services, monitor *database.Monitor, m *metrics.Metrics) (*echo.Echo, error) {
	cfg := d.Config
	e := echo.NewWithConfig(echo.Config{
		Logger:           d.Log,
		HTTPErrorHandler: handlers.ErrorHandler(d.Log, monitor.Classify),
		Validator:        handlers.NewValidator(),
		JSONSerializer:   handlers.JSONSerializer{},
		IPExtractor:      ipExtractor(cfg),
		SchemeExtractor:  echo.ExtractSchemeFromHeaders(proxyTrust(cfg)...),
	})
	requestMetrics, err := echoprometheus.MiddlewareConfig{
		Namespace: metrics.Namespace, Subsystem: "http", Registerer: m.Registry,
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
		// A blocked address gets no further (the probes stay answered).
		middleware.IPFilter(svc.IPRules, "/healthz", "/readyz"),
	)
	if len(cfg.CORSAllowedOrigins) > 0 {
		e.Use(echomw.CORSWithConfig(echomw.CORSConfig{
			AllowOrigins:  cfg.CORSAllowedOrigins,
			AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodOptions},
			AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType, browser.CSRFHeader, handlers.CaptchaHeader, "X-API-Key"},
			ExposeHeaders: exposedHeaders,
			// Cookie sessions: the listed origins may send credentials (and
			// only they: the allowed origin is echoed). With "*" (any origin)
			// nobody may: Echo refuses the pair, and so would browsers.
			AllowCredentials: !slices.Contains(cfg.CORSAllowedOrigins, "*"),
			MaxAge:           600,
		}))
	}
	e.Use(echomw.BodyLimit(MaxBodyBytes))

	var apiDocs *handlers.Docs
	if cfg.SwaggerEnabled {
		spec, err := openapi.Served()
		if err != nil {
			return nil, err
		}
		apiDocs = handlers.NewDocs(spec)
	}
	var dev *handlers.Dev
	if cfg.DevRoutes {
		dev = handlers.NewDev(svc.Users, svc.Outbox, svc.DevIdP, web.Example())
		d.Log.Warn("development routes on: POST /dev/users makes users of any role, GET /dev/mail shows queued mail, " +
			"the dev sign-in provider signs in as any address (DEV_ROUTES; never in production)")
	}
	limiter := middleware.NewRateLimiter(st.Limits, cfg.RateLimitEnabled, d.Clock, d.Log, m, instanceName()).OnRefused(svc.IPRules.Refused)
	rl := cfg.RateLimits
	cookies := browser.New(cfg.AppBaseURL, cfg.CORSAllowedOrigins)
	fed := handlers.NewFederation(svc.Accounts, cfg.AppBaseURL, cookies, svc.Browser)
	routes.Register(e, routes.Handlers{
		System:    handlers.NewSystem(version(), svc.Health, svc.Tokens, cfg.SwaggerEnabled),
		Captcha:   handlers.NewCaptchaInfo(svc.Captcha, cfg.CaptchaSiteKey),
		IPRules:   handlers.NewIPRules(svc.IPRules),
		Webhooks:  handlers.NewWebhooks(svc.Webhooks),
		Auth:      handlers.NewAuth(svc.Accounts, cookies, svc.Browser, svc.Captcha),
		Federated: fed,
		SSO:       handlers.NewSSO(fed),
		Account:   handlers.NewAccount(svc.Accounts),
		Users:     handlers.NewUsers(svc.Users, svc.Accounts),
		Projects:  handlers.NewProjects(svc.Projects),
		Analytics: handlers.NewAnalytics(svc.Analytics),
		Docs:      apiDocs,
		Dev:       dev,
		APIKeys:   handlers.NewAPIKeys(svc.APIKeys),
		OAuth:     handlers.NewOAuth(svc.Clients, cfg.AppBaseURL, svc.Captcha),
		Audit:     handlers.NewAudit(svc.Audit, svc.Orgs),
		Orgs:      handlers.NewOrgs(svc.Orgs, svc.Users, d.Clock.Now),
	}, routes.NewGuards(
		chain(middleware.NoStore, chain(limiter.FailedAuth(rl.Public), middleware.NewAuth(svc.Tokens, svc.APIKeys, svc.Clients, svc.Users).WithCookies(svc.Browser, cookies).RequireAuth)),
		limiter.PerUser(rl.Tiers, rl.User, rl.OrgTiers),
		routes.Limits{
			Public:        limiter.PerIP(rl.Public),
			Register:      limiter.PerIP(rl.Register),
			LoginAttempts: chain(middleware.LoginOutcomes(m), limiter.PerIP(rl.LoginIP)),
			Login:         limiter.LoginFailures(rl.Login),
			TokenIP:       limiter.PerIP(rl.Token),
			TokenClient:   limiter.PerClientID(rl.Token, ratelimit.Policy{Name: "token_client_ip", Limit: rl.Login.Limit, Window: rl.Login.Window}),
		}))
	return e, nil
}

// chain applies outer around inner.
func chain(outer, inner echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return outer(inner(next)) }
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
