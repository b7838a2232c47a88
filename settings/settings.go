// Package settings holds the application's configuration: one explicit
// struct read from the environment (and .env, loaded by main), checked once
// at start-up so a malformed value stops the process with the variable named.
package settings

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/product"

	"github.com/caarlos0/env/v11"
	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate/tollgate/ratelimit"
)

// Environments.
const (
	Development = "development"
	Production  = "production"
)

// Config is every setting the application reads. Each field's env tag is the
// variable name; .env.example and the README list them all (a test checks).
type Config struct {
	Port string `env:"PORT" envDefault:"8080"`
	// HOST is the address to listen on; unset: 127.0.0.1 in development
	// (a laptop's dev server is not the network's), every address in
	// production.
	Host   string `env:"HOST"`
	AppEnv string `env:"APP_ENV" envDefault:"development"`
	// APP_BASE_URL is where clients reach the API (links in mail, the
	// issuer); unset: http://localhost:<the port it listens on>.
	AppBaseURL string `env:"APP_BASE_URL"`
	// AppBaseURLDerived: APP_BASE_URL was not set, and ListeningOn may
	// point it at the real port.
	AppBaseURLDerived bool
	// ALLOW_HTTP_BASE_URL lets production run on a plain-http APP_BASE_URL
	// (a local stack behind no TLS); otherwise production refuses one.
	AllowHTTPBaseURL bool `env:"ALLOW_HTTP_BASE_URL"`

	DatabaseURL string `env:"DATABASE_URL"`
	// DATABASE_OWNER_URL is the role that owns the tables (PostgreSQL):
	// migrations run as it and grant DATABASE_URL's role what the app
	// needs, so the app's role owns nothing and row-level security binds
	// it. Unset: migrations run as DATABASE_URL's role.
	DatabaseOwnerURL string `env:"DATABASE_OWNER_URL"`
	SQLitePath       string `env:"SQLITE_PATH"` // unset: data/<product.ID>.db
	RedisURL         string `env:"REDIS_URL"`
	// RedisMode says what REDIS_URL names: one server, a Cluster (seed
	// nodes as addr= parameters) or Sentinels (master_name=).
	RedisMode string `env:"REDIS_MODE" envDefault:"single"`

	// PostgreSQL pool. Idle equals open so a busy pool never closes and
	// re-dials connections between bursts (measured: 4x slower end to end).
	DBMaxOpenConns     int           `env:"DB_MAX_OPEN_CONNS" envDefault:"4"`
	DBMaxIdleConns     int           `env:"DB_MAX_IDLE_CONNS" envDefault:"4"`
	DBConnMaxLifetime  time.Duration `env:"DB_CONN_MAX_LIFETIME" envDefault:"30m"`
	DBConnectTimeout   time.Duration `env:"DB_CONNECT_TIMEOUT" envDefault:"5s"`
	DBStatementTimeout time.Duration `env:"DB_STATEMENT_TIMEOUT" envDefault:"5s"`

	JWTPrivateKeyFile         string   `env:"JWT_PRIVATE_KEY_FILE" envDefault:"config/jwt-private.pem"`
	JWTPublicKeyFile          string   `env:"JWT_PUBLIC_KEY_FILE" envDefault:"config/jwt-public.pem"`
	JWTPreviousPublicKeyFiles []string `env:"JWT_PREVIOUS_PUBLIC_KEY_FILES" envSeparator:","`
	// JWT_ISSUER is the tokens' iss and the RFC 8414 issuer; unset, it is
	// APP_BASE_URL (RFC 8414 wants the URL the metadata is served under).
	JWTIssuer   string `env:"JWT_ISSUER"`
	JWTAudience string `env:"JWT_AUDIENCE"` // unset: <product.ID>-api
	// MFA_ISSUER names the service in authenticator apps.
	MFAIssuer string `env:"MFA_ISSUER"` // unset: product.ID

	AccessTokenTTL       time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshTokenTTL      time.Duration `env:"REFRESH_TOKEN_TTL" envDefault:"168h"`
	EmailVerificationTTL time.Duration `env:"EMAIL_VERIFICATION_TTL" envDefault:"24h"`
	BcryptCost           int           `env:"BCRYPT_COST" envDefault:"12"`
	// A refresh token presented again this soon after it was rotated is a
	// retry (two tabs, a lost answer), not theft: 409, family kept.
	RefreshReuseGrace time.Duration `env:"REFRESH_REUSE_GRACE" envDefault:"10s"`
	// How many bcrypt hashes run at once (0: one per CPU) and how long a
	// request waits for a turn before answering 503. The wait holds a burst
	// of 16 logins per slot's worth of queue at cost 12 (~250 ms a hash):
	// tests/load/login-storm.sh measures both.
	PasswordHashConcurrency int           `env:"PASSWORD_HASH_CONCURRENCY" envDefault:"0"`
	PasswordHashMaxWait     time.Duration `env:"PASSWORD_HASH_MAX_WAIT" envDefault:"4s"`
	// How often expired tokens and stale unverified accounts are deleted (0: never; `tollgate purge` does it by hand).
	PurgeInterval time.Duration `env:"PURGE_INTERVAL" envDefault:"1h"`

	// API keys: HMAC-SHA-256 of each key with a server-side pepper, from
	// API_KEY_PEPPER or the file (generated in development). Rotate by
	// raising API_KEY_PEPPER_VERSION and listing the old one in
	// API_KEY_PREVIOUS_PEPPERS as VERSION:SECRET; keys move on first use.
	APIKeyPepper          string          `env:"API_KEY_PEPPER"`
	APIKeyPepperFile      string          `env:"API_KEY_PEPPER_FILE" envDefault:"config/api-key-pepper"`
	APIKeyPepperVersion   int             `env:"API_KEY_PEPPER_VERSION" envDefault:"1"`
	APIKeyPreviousPeppers PreviousSecrets `env:"API_KEY_PREVIOUS_PEPPERS"`
	APIKeyMaxLifetime     time.Duration   `env:"API_KEY_MAX_LIFETIME" envDefault:"8760h"`
	// API_KEY_MAX_PER_USER caps the live keys one user may hold.
	APIKeyMaxPerUser    int           `env:"API_KEY_MAX_PER_USER" envDefault:"10"`
	APIKeyRotationGrace time.Duration `env:"API_KEY_ROTATION_GRACE" envDefault:"24h"`
	// Count API key requests in the owner's per-user bucket instead of one per key.
	APIKeySharesUserLimit bool `env:"API_KEY_SHARES_USER_LIMIT" envDefault:"false"`
	// How long a password reset link works.
	PasswordResetTTL time.Duration `env:"PASSWORD_RESET_TTL" envDefault:"30m"`
	// ORG_SIGNUP is what registration does with a new account:
	// join-default (the default organization, as viewer: a single-tenant
	// app), create-own (an organization of its own, as owner: a SaaS) or
	// invite-only (none until it accepts an invitation; only platform
	// operators make organizations).
	OrgSignup string `env:"ORG_SIGNUP" envDefault:"join-default"`
	// How long an invitation to an organization works.
	InvitationTTL time.Duration `env:"INVITATION_TTL" envDefault:"168h"`
	// OIDC_PROVIDERS_FILE is a JSON list of OpenID Connect providers
	// people may sign in with ({name, display_name, issuer, client_id,
	// client_secret, scopes}); it holds secrets, so it lives in config/.
	// Unset: none.
	OIDCProvidersFile string `env:"OIDC_PROVIDERS_FILE"`
	// OAUTH_REDIRECT_URIS are the front end's pages a finished sign-in may
	// be sent back to (exact match).
	OAuthRedirectURIs []string `env:"OAUTH_REDIRECT_URIS" envSeparator:","`
	// VERIFY_EMAIL_URL and RESET_PASSWORD_URL are the front end's pages
	// that the verification and reset mails link to, with the token in the
	// fragment (#token=..., which no server or log sees). Unset: the API's
	// own small pages (GET /auth/verify, GET /auth/password/reset).
	VerifyEmailURL   string `env:"VERIFY_EMAIL_URL"`
	ResetPasswordURL string `env:"RESET_PASSWORD_URL"`
	// SSO_ALLOW_PRIVATE_NETWORKS lets organizations' SSO connections (their
	// issuer and metadata URLs, set by org admins) reach loopback and
	// private addresses: development only, else an org admin could make the
	// server fetch from its own network.
	SSOAllowPrivateNetworks bool `env:"SSO_ALLOW_PRIVATE_NETWORKS" envDefault:"false"`
	// SAML_CLOCK_SKEW is the leeway on a SAML assertion's validity window.
	SAMLClockSkew time.Duration `env:"SAML_CLOCK_SKEW" envDefault:"90s"`

	// CAPTCHA_PROVIDER is off, turnstile, hcaptcha, recaptcha or fake (the
	// answer "pass" passes; never in production). CAPTCHA_SECRET is the
	// provider's secret key, CAPTCHA_SITE_KEY its public one (GET
	// /auth/captcha hands it to the front end).
	CaptchaProvider string `env:"CAPTCHA_PROVIDER" envDefault:"off"`
	CaptchaSecret   string `env:"CAPTCHA_SECRET"`
	CaptchaSiteKey  string `env:"CAPTCHA_SITE_KEY"`
	// CAPTCHA_FLOWS: which flows ask for one, and when (see CaptchaFlows).
	CaptchaFlows CaptchaFlows `env:"CAPTCHA_FLOWS" envDefault:"register=always,login=after:3,forgot=after:3,resend=after:3,token=off"`
	// CAPTCHA_WINDOW is the sliding window of after:N modes.
	CaptchaWindow time.Duration `env:"CAPTCHA_WINDOW" envDefault:"15m"`
	// CAPTCHA_FAIL_OPEN lets requests through while the provider does not
	// answer (logged); off: 503 captcha_unavailable.
	CaptchaFailOpen bool          `env:"CAPTCHA_FAIL_OPEN" envDefault:"false"`
	CaptchaTimeout  time.Duration `env:"CAPTCHA_TIMEOUT" envDefault:"5s"`
	// CAPTCHA_VERIFY_URL replaces the provider's siteverify URL (a proxy).
	CaptchaVerifyURL string `env:"CAPTCHA_VERIFY_URL"`
	// WEBHOOK_ALLOW_PRIVATE_NETWORKS lets webhook endpoints be on loopback
	// and private addresses: development only (refused in production),
	// else an admin's URL could reach the internal network (SSRF).
	WebhookAllowPrivateNetworks bool `env:"WEBHOOK_ALLOW_PRIVATE_NETWORKS" envDefault:"false"`
	// WEBHOOK_TIMEOUT bounds one delivery; WEBHOOK_MAX_ATTEMPTS (1 to 8)
	// tries before a message is dead; WEBHOOK_POLL_INTERVAL is how often
	// the worker looks for due messages (new ones are sent at once).
	WebhookTimeout      time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10s"`
	WebhookMaxAttempts  int           `env:"WEBHOOK_MAX_ATTEMPTS" envDefault:"8"`
	WebhookPollInterval time.Duration `env:"WEBHOOK_POLL_INTERVAL" envDefault:"5s"`
	// IP_ALLOWLIST and IP_BLOCKLIST are CIDRs (or addresses), IPv4 or
	// IPv6, comma-separated: a blocked client gets 403 ip_blocked before
	// anything else; an allowed one is never blocked (not by the admin
	// API's rules, not automatically).
	IPAllowlist []string `env:"IP_ALLOWLIST" envSeparator:","`
	IPBlocklist []string `env:"IP_BLOCKLIST" envSeparator:","`
	// IP_AUTO_BLOCK: this many rate-limit refusals of one client IP within
	// the window (N/WINDOW) block it for IP_AUTO_BLOCK_FOR. Empty: never.
	IPAutoBlock    string        `env:"IP_AUTO_BLOCK"`
	IPAutoBlockFor time.Duration `env:"IP_AUTO_BLOCK_FOR" envDefault:"1h"`
	// CAPTCHA_MIN_SCORE: reCAPTCHA v3 answers scoring below it fail.
	CaptchaMinScore float64 `env:"CAPTCHA_MIN_SCORE" envDefault:"0.5"`
	// Default lifetime of OAuth client access tokens (a client may set its own).
	OAuthTokenTTL time.Duration `env:"OAUTH_TOKEN_TTL" envDefault:"15m"`

	// Mail delivery from the outbox: attempts before a message is abandoned,
	// the first retry's delay (doubling up to the maximum), one attempt's
	// deadline (dial to QUIT), and how often due retries are looked for.
	MailMaxAttempts  int           `env:"MAIL_MAX_ATTEMPTS" envDefault:"8"`
	MailRetryBackoff time.Duration `env:"MAIL_RETRY_BACKOFF" envDefault:"30s"`
	MailMaxBackoff   time.Duration `env:"MAIL_MAX_BACKOFF" envDefault:"1h"`
	MailSendTimeout  time.Duration `env:"MAIL_SEND_TIMEOUT" envDefault:"30s"`
	MailPollInterval time.Duration `env:"MAIL_POLL_INTERVAL" envDefault:"5s"`

	// The audit log's hash-chain key, from AUDIT_KEY or the file (generated
	// in development); and how long events are kept (0: forever).
	AuditKey       string        `env:"AUDIT_KEY"`
	AuditKeyFile   string        `env:"AUDIT_KEY_FILE" envDefault:"config/audit-key"`
	AuditRetention time.Duration `env:"AUDIT_RETENTION" envDefault:"2160h"`
	// AUDIT_CHECKPOINT_INTERVAL: how often a signed checkpoint of the
	// audit chain goes to the log (and AUDIT_CHECKPOINT_FILE), besides one
	// at shutdown; 0 turns them off.
	AuditCheckpointInterval time.Duration `env:"AUDIT_CHECKPOINT_INTERVAL" envDefault:"5m"`
	AuditCheckpointFile     string        `env:"AUDIT_CHECKPOINT_FILE"`

	// TOTP secrets are encrypted with a key derived from MFA_KEY (or the
	// file's content); rotate by raising MFA_KEY_VERSION and listing the old
	// one in MFA_PREVIOUS_KEYS as VERSION:SECRET (secrets move on use).
	MFAKey          string          `env:"MFA_KEY"`
	MFAKeyFile      string          `env:"MFA_KEY_FILE" envDefault:"config/mfa-key"`
	MFAKeyVersion   int             `env:"MFA_KEY_VERSION" envDefault:"1"`
	MFAPreviousKeys PreviousSecrets `env:"MFA_PREVIOUS_KEYS"`

	SMTPURL  string `env:"SMTP_URL"`
	MailFrom string `env:"MAIL_FROM"` // unset: product.Name <no-reply@localhost>

	CORSAllowedOrigins []string `env:"CORS_ALLOWED_ORIGINS" envSeparator:","`
	TrustedProxies     []string `env:"TRUSTED_PROXIES" envSeparator:","`

	RateLimitEnabled bool `env:"RATE_LIMIT_ENABLED" envDefault:"true"`
	// The limits themselves, parsed where they are read (RateLimits).
	RateLimits            RateLimits
	RateLimitRedisTimeout time.Duration `env:"RATE_LIMIT_REDIS_TIMEOUT" envDefault:"500ms"`
	RateLimitKeyPrefix    string        `env:"RATE_LIMIT_KEY_PREFIX"`
	// Keys the per-instance (fallback) store holds at most; the oldest go first.
	RateLimitMemoryMaxKeys int `env:"RATE_LIMIT_MEMORY_MAX_KEYS" envDefault:"100000"`

	// SWAGGER_ENABLED serves /swagger/ and /openapi.json; unset means on in
	// development and off in production.
	Swagger Switch `env:"SWAGGER_ENABLED"`
	// DEV_ROUTES serves POST /dev/users (make a verified user of any role),
	// GET /dev/mail (the last mail the server sent) and the "dev" sign-in
	// provider (any address), so scripts need nothing but the base URL. Unset means on in development;
	// production refuses to start with it on.
	Dev Switch `env:"DEV_ROUTES"`

	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// SHUTDOWN_DRAIN_DELAY: after SIGTERM, /readyz answers 503 while the
	// server keeps serving this long, so load balancers stop sending first.
	// Unset means 5s in production and 0s in development.
	DrainDelay OptionalDuration `env:"SHUTDOWN_DRAIN_DELAY"`

	// Every request's deadline (database calls included); past it, 504.
	RequestTimeout        time.Duration `env:"REQUEST_TIMEOUT" envDefault:"10s"`
	HTTPReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" envDefault:"5s"`
	HTTPReadTimeout       time.Duration `env:"HTTP_READ_TIMEOUT" envDefault:"15s"`
	HTTPWriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"30s"`
	HTTPIdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"120s"`
	HTTPMaxHeaderBytes    int           `env:"HTTP_MAX_HEADER_BYTES" envDefault:"65536"`

	// METRICS_ADDR serves Prometheus /metrics on its own listener, such as
	// 127.0.0.1:9090; empty turns it off.
	MetricsAddr string `env:"METRICS_ADDR"`

	// What the settings above resolve to for this environment, filled by
	// Load.
	TrustedProxyNets   []*net.IPNet  `env:"-"`
	SwaggerEnabled     bool          `env:"-"`
	DevRoutes          bool          `env:"-"`
	ShutdownDrainDelay time.Duration `env:"-"`
}

// RateLimits are the rate-limit policies, each LIMIT/WINDOW.
type RateLimits struct {
	Public   ratelimit.Policy `env:"RATE_LIMIT_PUBLIC" envDefault:"100/1m"`
	Login    ratelimit.Policy `env:"RATE_LIMIT_LOGIN" envDefault:"5/15m"`
	LoginIP  ratelimit.Policy `env:"RATE_LIMIT_LOGIN_IP" envDefault:"20/1m"`
	Register ratelimit.Policy `env:"RATE_LIMIT_REGISTER" envDefault:"10/1h"`
	User     ratelimit.Policy `env:"RATE_LIMIT_USER" envDefault:"300/1m"`
	Token    ratelimit.Policy `env:"RATE_LIMIT_TOKEN" envDefault:"60/1m"`
	// Failed logins per account (a hash of the address, unknown ones too),
	// one or more windows: past any, the account answers 401 until the
	// window frees (so a persistent attacker waits longer, up to the last).
	LoginAccount  Policies         `env:"RATE_LIMIT_LOGIN_ACCOUNT" envDefault:"10/15m,50/24h"`
	ForgotAccount ratelimit.Policy `env:"RATE_LIMIT_FORGOT_ACCOUNT" envDefault:"3/1h"`
	// RATE_LIMIT_MAIL_ADDRESS caps the mail register, resend and forgot
	// send to one address, whoever asks (silently: the answer is the same).
	MailAddress ratelimit.Policy `env:"RATE_LIMIT_MAIL_ADDRESS" envDefault:"3/15m"`
	Tiers       TierPolicies     `env:"RATE_LIMIT_TIERS" envDefault:"free=60/1m,paid=600/1m,enterprise=3000/1m"` // by tier claim
	// RATE_LIMIT_ORG_TIERS is an organization's budget, all its members,
	// keys and clients together, by the organization's tier (a tier not
	// listed, or the default organization, which has none: no budget).
	OrgTiers TierPolicies `env:"RATE_LIMIT_ORG_TIERS" envDefault:"free=200/1m,paid=2000/1m,enterprise=10000/1m"`
}

// name gives each policy the name it is counted and reported under.
func (r *RateLimits) name() {
	for name, p := range map[string]*ratelimit.Policy{
		"public": &r.Public, "login": &r.Login, "login_ip": &r.LoginIP, "register": &r.Register, "user": &r.User,
		"token": &r.Token, "forgot_account": &r.ForgotAccount, "mail_address": &r.MailAddress,
	} {
		p.Name = name
	}
	for i := range r.LoginAccount {
		r.LoginAccount[i].Name = fmt.Sprintf("login_account_%d", i+1)
	}
	for tier, p := range r.OrgTiers {
		p.Name = "org"
		r.OrgTiers[tier] = p
	}
}

// IsProduction reports whether APP_ENV is production.
func (c Config) IsProduction() bool { return c.AppEnv == Production }

// ListeningOn points what was derived from the port (APP_BASE_URL unset,
// and the issuer named after it) at addr, the port really listened on:
// PORT=0 picks a free one, and the links the server mails must reach it.
func (c *Config) ListeningOn(addr net.Addr) {
	tcp, ok := addr.(*net.TCPAddr)
	if !c.AppBaseURLDerived || !ok {
		return
	}
	base := "http://localhost:" + strconv.Itoa(tcp.Port)
	if c.JWTIssuer == c.AppBaseURL {
		c.JWTIssuer = base
	}
	c.AppBaseURL, c.Port = base, strconv.Itoa(tcp.Port)
}

// Load reads the configuration from environ (KEY -> value) and validates it.
func Load(environ map[string]string) (Config, error) {
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, describe(err)
	}
	return cfg, cfg.validate()
}

// validate checks every group of settings, in order, and fills the
// resolved fields; the first problem names its variable.
func (c *Config) validate() error {
	for _, check := range []func() error{
		c.validateServer, c.validateStorage, c.validateTokens, c.validatePasswords, c.validateSecrets,
		c.validateCredentials, c.validateMail, c.validateLimits, c.validateHTTP, c.validateSwitches,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func bad(name, why string) error { return fmt.Errorf("invalid %s: %s", name, why) }

// positive checks durations that must be above zero.
func positive(ds map[string]time.Duration, example string) error {
	for name, d := range ds {
		if d <= 0 {
			return bad(name, "must be a positive duration such as "+example)
		}
	}
	return nil
}

// validateServer: where the app listens and how it names itself.
func (c *Config) validateServer() error {
	if n, err := strconv.Atoi(c.Port); err != nil || n < 0 || n > 65535 {
		return bad("PORT", fmt.Sprintf("%q is not a port number from 0 (any free port) to 65535", c.Port))
	}
	switch c.AppEnv {
	case Development, Production:
	default:
		return bad("APP_ENV", fmt.Sprintf("%q is not development or production", c.AppEnv))
	}
	if c.AppBaseURL == "" {
		c.AppBaseURL, c.AppBaseURLDerived = "http://localhost:"+c.Port, true
	}
	if u, err := url.Parse(c.AppBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("APP_BASE_URL", "must be an absolute http(s) URL")
	}
	c.AppBaseURL = strings.TrimRight(c.AppBaseURL, "/")
	if c.IsProduction() && strings.HasPrefix(c.AppBaseURL, "http://") && !c.AllowHTTPBaseURL {
		return bad("APP_BASE_URL", "must be https:// in production: links in mail and the issuer carry it (ALLOW_HTTP_BASE_URL=true for a local stack)")
	}
	if c.Host == "" && !c.IsProduction() {
		c.Host = "127.0.0.1"
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("LOG_LEVEL", "must be debug, info, warn or error")
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
			return bad("METRICS_ADDR", fmt.Sprintf("%q is not HOST:PORT such as 127.0.0.1:9090", c.MetricsAddr))
		}
	}
	if err := positive(map[string]time.Duration{"SHUTDOWN_TIMEOUT": c.ShutdownTimeout}, "10s"); err != nil {
		return err
	}
	def := time.Duration(0)
	if c.IsProduction() {
		def = 5 * time.Second
	}
	c.ShutdownDrainDelay = c.DrainDelay.Or(def)
	return nil
}

// validateStorage: the database, its pool, and Redis.
func (c *Config) validateStorage() error {
	c.SQLitePath = cmp.Or(c.SQLitePath, "data/"+product.ID+".db")
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return bad("DATABASE_URL", "must start with postgres:// (leave it unset for the embedded SQLite file)")
	}
	if c.DatabaseOwnerURL != "" && c.DatabaseURL == "" {
		return bad("DATABASE_OWNER_URL", "needs DATABASE_URL (it names the role that owns PostgreSQL's tables)")
	}
	if c.DatabaseOwnerURL != "" && !strings.HasPrefix(c.DatabaseOwnerURL, "postgres://") && !strings.HasPrefix(c.DatabaseOwnerURL, "postgresql://") {
		return bad("DATABASE_OWNER_URL", "must start with postgres://")
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		return bad("REDIS_URL", "must start with redis:// or rediss://")
	}
	switch c.RedisMode {
	case "single", "cluster", "sentinel":
	default:
		return bad("REDIS_MODE", "must be single, cluster or sentinel")
	}
	if err := positive(map[string]time.Duration{"DB_CONNECT_TIMEOUT": c.DBConnectTimeout, "DB_STATEMENT_TIMEOUT": c.DBStatementTimeout,
		"DB_CONN_MAX_LIFETIME": c.DBConnMaxLifetime}, "5s"); err != nil {
		return err
	}
	for name, n := range map[string]int{"DB_MAX_OPEN_CONNS": c.DBMaxOpenConns, "DB_MAX_IDLE_CONNS": c.DBMaxIdleConns} {
		if n < 1 {
			return bad(name, "must be a whole number from 1")
		}
	}
	if c.DBMaxIdleConns > c.DBMaxOpenConns {
		return bad("DB_MAX_IDLE_CONNS", "must not exceed DB_MAX_OPEN_CONNS")
	}
	if c.PurgeInterval < 0 {
		return bad("PURGE_INTERVAL", "must not be negative (0 turns it off)")
	}
	return nil
}

// validateTokens: access and refresh tokens, links in mail.
func (c *Config) validateTokens() error {
	if c.JWTIssuer == "" {
		c.JWTIssuer = c.AppBaseURL
	}
	c.JWTAudience = cmp.Or(c.JWTAudience, product.ID+"-api")
	c.MFAIssuer = cmp.Or(c.MFAIssuer, product.ID)
	if err := positive(map[string]time.Duration{"ACCESS_TOKEN_TTL": c.AccessTokenTTL, "REFRESH_TOKEN_TTL": c.RefreshTokenTTL,
		"EMAIL_VERIFICATION_TTL": c.EmailVerificationTTL}, "15m"); err != nil {
		return err
	}
	if c.RefreshReuseGrace < 0 || c.RefreshReuseGrace > time.Minute {
		return bad("REFRESH_REUSE_GRACE", "must be between 0s (off) and 1m")
	}
	if c.PasswordResetTTL < time.Minute || c.PasswordResetTTL > 24*time.Hour {
		return bad("PASSWORD_RESET_TTL", "must be between 1m and 24h")
	}
	if !slices.Contains([]string{"join-default", "create-own", "invite-only"}, c.OrgSignup) {
		return bad("ORG_SIGNUP", "must be join-default, create-own or invite-only")
	}
	if c.InvitationTTL < time.Hour || c.InvitationTTL > 30*24*time.Hour {
		return bad("INVITATION_TTL", "must be between 1h and 720h")
	}
	if c.OAuthTokenTTL < time.Minute || c.OAuthTokenTTL > 24*time.Hour {
		return bad("OAUTH_TOKEN_TTL", "must be between 1m and 24h")
	}
	return nil
}

// validatePasswords: the hash and its queue.
func (c *Config) validatePasswords() error {
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return bad("BCRYPT_COST", fmt.Sprintf("must be between %d and %d", bcrypt.MinCost, bcrypt.MaxCost))
	}
	if c.IsProduction() && c.BcryptCost < 10 {
		return bad("BCRYPT_COST", "must be at least 10 in production")
	}
	if err := positive(map[string]time.Duration{"PASSWORD_HASH_MAX_WAIT": c.PasswordHashMaxWait}, "4s"); err != nil {
		return err
	}
	if c.PasswordHashConcurrency < 0 {
		return bad("PASSWORD_HASH_CONCURRENCY", "must be 0 (one per CPU) or more")
	}
	if c.PasswordHashConcurrency == 0 {
		// Go's scheduler preempts a hash every 10 ms, so other requests keep
		// their latency with every core hashing (login storm: /public/status
		// p99 34 ms with 2 slots on 2 cores); half the cores left half the
		// bcrypt ceiling unused and shed most of a burst.
		c.PasswordHashConcurrency = max(runtime.GOMAXPROCS(0), 1)
	}
	return nil
}

// validateSecrets: the keys given directly, and the versions of the
// rotated ones.
func (c *Config) validateSecrets() error {
	for name, v := range map[string]string{"API_KEY_PEPPER": c.APIKeyPepper, "MFA_KEY": c.MFAKey, "AUDIT_KEY": c.AuditKey} {
		if v != "" && len(v) < 32 {
			return bad(name, "must be at least 32 characters (openssl rand -hex 32)")
		}
	}
	for _, r := range []struct {
		name, previous string
		version        int
		old            PreviousSecrets
	}{
		{"API_KEY_PEPPER_VERSION", "API_KEY_PREVIOUS_PEPPERS", c.APIKeyPepperVersion, c.APIKeyPreviousPeppers},
		{"MFA_KEY_VERSION", "MFA_PREVIOUS_KEYS", c.MFAKeyVersion, c.MFAPreviousKeys},
	} {
		if r.version < 1 {
			return bad(r.name, "must be a positive integer")
		}
		if _, clash := r.old[r.version]; clash {
			return bad(r.previous, "must not list the current version ("+r.name+")")
		}
	}
	if c.AuditCheckpointInterval < 0 {
		return bad("AUDIT_CHECKPOINT_INTERVAL", "must be a duration such as 5m (0: no checkpoints)")
	}
	if c.AuditRetention < 0 {
		return bad("AUDIT_RETENTION", "must be a duration such as 2160h (0: keep forever)")
	}
	return nil
}

// validateCredentials: API keys.
func (c *Config) validateCredentials() error {
	if c.APIKeyMaxPerUser < 1 {
		return bad("API_KEY_MAX_PER_USER", "must be a whole number from 1")
	}
	switch c.CaptchaProvider {
	case "off":
	case "fake":
		if c.IsProduction() {
			return bad("CAPTCHA_PROVIDER", "fake passes any answer \"pass\": not in production")
		}
	case "turnstile", "hcaptcha", "recaptcha":
		if c.CaptchaSecret == "" {
			return bad("CAPTCHA_SECRET", "is required with CAPTCHA_PROVIDER="+c.CaptchaProvider)
		}
	default:
		return bad("CAPTCHA_PROVIDER", "must be off, turnstile, hcaptcha, recaptcha or fake")
	}
	if c.CaptchaWindow < time.Minute || c.CaptchaWindow > 24*time.Hour {
		return bad("CAPTCHA_WINDOW", "must be between 1m and 24h")
	}
	if c.CaptchaTimeout <= 0 || c.CaptchaTimeout > 30*time.Second {
		return bad("CAPTCHA_TIMEOUT", "must be between 1ms and 30s")
	}
	for name, list := range map[string][]string{"IP_ALLOWLIST": c.IPAllowlist, "IP_BLOCKLIST": c.IPBlocklist} {
		for _, v := range list {
			if _, err := netip.ParsePrefix(strings.TrimSpace(v)); err != nil {
				if _, err := netip.ParseAddr(strings.TrimSpace(v)); err != nil {
					return bad(name, fmt.Sprintf("%q is not an address or CIDR such as 203.0.113.0/24 or 2001:db8::/32", v))
				}
			}
		}
	}
	if c.IPAutoBlock != "" {
		if _, err := ratelimit.ParsePolicy("ip_refusals", c.IPAutoBlock); err != nil {
			return bad("IP_AUTO_BLOCK", "must be N/WINDOW such as 100/5m: "+err.Error())
		}
	}
	if c.WebhookAllowPrivateNetworks && c.IsProduction() {
		return bad("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "is for development: in production an admin's endpoint could reach internal addresses")
	}
	if c.WebhookTimeout <= 0 || c.WebhookTimeout > time.Minute {
		return bad("WEBHOOK_TIMEOUT", "must be between 1ms and 1m")
	}
	if c.WebhookMaxAttempts < 1 || c.WebhookMaxAttempts > 8 {
		return bad("WEBHOOK_MAX_ATTEMPTS", "must be from 1 to 8")
	}
	if c.WebhookPollInterval < 10*time.Millisecond || c.WebhookPollInterval > time.Hour {
		return bad("WEBHOOK_POLL_INTERVAL", "must be between 10ms and 1h")
	}
	if c.IPAutoBlockFor < time.Minute || c.IPAutoBlockFor > 30*24*time.Hour {
		return bad("IP_AUTO_BLOCK_FOR", "must be between 1m and 720h")
	}
	if c.CaptchaMinScore < 0 || c.CaptchaMinScore > 1 {
		return bad("CAPTCHA_MIN_SCORE", "must be between 0 and 1")
	}
	if c.APIKeyMaxLifetime < 0 {
		return bad("API_KEY_MAX_LIFETIME", "must be a duration such as 8760h (0: no maximum)")
	}
	if c.APIKeyRotationGrace < 0 || c.APIKeyRotationGrace > 7*24*time.Hour {
		return bad("API_KEY_ROTATION_GRACE", "must be between 0s and 168h")
	}
	return nil
}

// validateMail: the relay and the outbox's retries.
func (c *Config) validateMail() error {
	c.MailFrom = cmp.Or(c.MailFrom, product.Name+" <no-reply@localhost>")
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			return bad("SMTP_URL", "must look like smtp://user:pass@host:587")
		}
	}
	if c.MailMaxAttempts < 1 {
		return bad("MAIL_MAX_ATTEMPTS", "must be at least 1")
	}
	return positive(map[string]time.Duration{"MAIL_RETRY_BACKOFF": c.MailRetryBackoff, "MAIL_MAX_BACKOFF": c.MailMaxBackoff,
		"MAIL_SEND_TIMEOUT": c.MailSendTimeout, "MAIL_POLL_INTERVAL": c.MailPollInterval}, "30s")
}

// validateLimits: the rate-limit store (the policies parsed themselves).
func (c *Config) validateLimits() error {
	if err := positive(map[string]time.Duration{"RATE_LIMIT_REDIS_TIMEOUT": c.RateLimitRedisTimeout}, "50ms"); err != nil {
		return err
	}
	if c.RateLimitMemoryMaxKeys < 1 {
		return bad("RATE_LIMIT_MEMORY_MAX_KEYS", "must be a whole number from 1")
	}
	c.RateLimits.name()
	return nil
}

// validateHTTP: timeouts, sizes, CORS and the proxies trusted.
func (c *Config) validateHTTP() error {
	if err := positive(map[string]time.Duration{"REQUEST_TIMEOUT": c.RequestTimeout, "HTTP_READ_HEADER_TIMEOUT": c.HTTPReadHeaderTimeout,
		"HTTP_READ_TIMEOUT": c.HTTPReadTimeout, "HTTP_WRITE_TIMEOUT": c.HTTPWriteTimeout, "HTTP_IDLE_TIMEOUT": c.HTTPIdleTimeout}, "15s"); err != nil {
		return err
	}
	if c.HTTPMaxHeaderBytes < 1 {
		return bad("HTTP_MAX_HEADER_BYTES", "must be a whole number from 1")
	}
	if c.SSOAllowPrivateNetworks && c.IsProduction() {
		return bad("SSO_ALLOW_PRIVATE_NETWORKS", "is for development: in production an org admin's URL would reach the server's own network")
	}
	if c.SAMLClockSkew < 0 || c.SAMLClockSkew > 10*time.Minute {
		return bad("SAML_CLOCK_SKEW", "must be between 0s and 10m")
	}
	for name, v := range map[string]string{"VERIFY_EMAIL_URL": c.VerifyEmailURL, "RESET_PASSWORD_URL": c.ResetPasswordURL} {
		if u, err := url.Parse(v); v != "" && (err != nil || u.Host == "" || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http")) {
			return bad(name, fmt.Sprintf("%q is not an absolute http(s) URL without a fragment, such as https://app.example.com/verify", v))
		}
	}
	for _, r := range c.OAuthRedirectURIs {
		if u, err := url.Parse(r); err != nil || u.Host == "" || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http" && !strings.Contains(u.Scheme, ".")) {
			return bad("OAUTH_REDIRECT_URIS", fmt.Sprintf("%q is not an absolute URL such as https://app.example.com/auth/done (or an app's reverse-DNS scheme)", r))
		}
	}
	for i, o := range c.CORSAllowedOrigins {
		o = strings.TrimSpace(o)
		if u, err := url.Parse(o); o != "*" && (err != nil || u.Scheme == "" || u.Host == "") {
			return bad("CORS_ALLOWED_ORIGINS", fmt.Sprintf("%q is not an origin such as https://app.example.com", o))
		}
		c.CORSAllowedOrigins[i] = o
	}
	c.TrustedProxyNets = nil
	for _, p := range c.TrustedProxies {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			if ip := net.ParseIP(p); ip != nil && ip.To4() != nil {
				p += "/32"
			} else {
				p += "/128"
			}
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return bad("TRUSTED_PROXIES", fmt.Sprintf("%q is not an IP address or CIDR range", p))
		}
		c.TrustedProxyNets = append(c.TrustedProxyNets, n)
	}
	return nil
}

// validateSwitches: what is on by default in development and off in
// production.
func (c *Config) validateSwitches() error {
	c.SwaggerEnabled = c.Swagger.Or(!c.IsProduction())
	c.DevRoutes = c.Dev.Or(!c.IsProduction())
	if c.DevRoutes && c.IsProduction() {
		return bad("DEV_ROUTES", "must be off in production: /dev/users makes admins without a password check")
	}
	return nil
}

// describe rewrites the env library's errors, which name Go fields, to name
// the environment variable instead.
func describe(err error) error {
	var pe env.ParseError
	if errors.As(err, &pe) {
		for _, f := range fields(reflect.TypeOf(Config{})) {
			if f.Name == pe.Name {
				return fmt.Errorf("invalid %s: %w", f.Tag.Get("env"), pe.Err)
			}
		}
	}
	return fmt.Errorf("configuration: %w", err)
}

// fields lists Config's settings, those of its nested groups included.
func fields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		switch name := f.Tag.Get("env"); {
		case name == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, fields(f.Type)...)
		case name != "" && name != "-":
			out = append(out, f)
		}
	}
	return out
}

// Variables lists every environment variable Config reads.
func Variables() []string {
	var names []string
	for _, f := range fields(reflect.TypeOf(Config{})) {
		names = append(names, f.Tag.Get("env"))
	}
	return names
}
