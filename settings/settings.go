// Package settings holds the application's configuration: one explicit
// struct read from the environment (and .env, loaded by main), checked once
// at start-up so a malformed value stops the process with the variable named.
package settings

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"golang.org/x/crypto/bcrypt"
)

// Environments.
const (
	Development = "development"
	Production  = "production"
)

// Config is every setting the application reads. Each field's env tag is the
// variable name; .env.example and the README list them all (a test checks).
type Config struct {
	Port       string `env:"PORT" envDefault:"8080"`
	AppEnv     string `env:"APP_ENV" envDefault:"development"`
	AppBaseURL string `env:"APP_BASE_URL" envDefault:"http://localhost:8080"`

	DatabaseURL string `env:"DATABASE_URL"`
	SQLitePath  string `env:"SQLITE_PATH" envDefault:"data/tollgate.db"`
	RedisURL    string `env:"REDIS_URL"`

	JWTPrivateKeyFile         string   `env:"JWT_PRIVATE_KEY_FILE" envDefault:"config/jwt-private.pem"`
	JWTPublicKeyFile          string   `env:"JWT_PUBLIC_KEY_FILE" envDefault:"config/jwt-public.pem"`
	JWTPreviousPublicKeyFiles []string `env:"JWT_PREVIOUS_PUBLIC_KEY_FILES" envSeparator:","`
	JWTIssuer                 string   `env:"JWT_ISSUER" envDefault:"tollgate"`
	JWTAudience               string   `env:"JWT_AUDIENCE" envDefault:"tollgate-api"`

	AccessTokenTTL       time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshTokenTTL      time.Duration `env:"REFRESH_TOKEN_TTL" envDefault:"168h"`
	EmailVerificationTTL time.Duration `env:"EMAIL_VERIFICATION_TTL" envDefault:"24h"`
	BcryptCost           int           `env:"BCRYPT_COST" envDefault:"12"`

	SMTPURL  string `env:"SMTP_URL"`
	MailFrom string `env:"MAIL_FROM" envDefault:"Tollgate <no-reply@localhost>"`

	CORSAllowedOrigins []string `env:"CORS_ALLOWED_ORIGINS" envSeparator:","`
	TrustedProxies     []string `env:"TRUSTED_PROXIES" envSeparator:","`

	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`

	// TrustedProxyNets is TrustedProxies parsed; filled by Load.
	TrustedProxyNets []*net.IPNet `env:"-"`
}

// IsProduction reports whether APP_ENV is production.
func (c Config) IsProduction() bool { return c.AppEnv == Production }

// Load reads the configuration from environ (KEY -> value) and validates it.
func Load(environ map[string]string) (Config, error) {
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, describe(err)
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	bad := func(name, why string) error { return fmt.Errorf("invalid %s: %s", name, why) }
	switch c.AppEnv {
	case Development, Production:
	default:
		return bad("APP_ENV", fmt.Sprintf("%q is not development or production", c.AppEnv))
	}
	if u, err := url.Parse(c.AppBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("APP_BASE_URL", "must be an absolute http(s) URL")
	}
	c.AppBaseURL = strings.TrimRight(c.AppBaseURL, "/")
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return bad("DATABASE_URL", "must start with postgres:// (leave it unset for the embedded SQLite file)")
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		return bad("REDIS_URL", "must start with redis:// or rediss://")
	}
	for name, d := range map[string]time.Duration{
		"ACCESS_TOKEN_TTL": c.AccessTokenTTL, "REFRESH_TOKEN_TTL": c.RefreshTokenTTL,
		"EMAIL_VERIFICATION_TTL": c.EmailVerificationTTL, "SHUTDOWN_TIMEOUT": c.ShutdownTimeout,
	} {
		if d <= 0 {
			return bad(name, "must be a positive duration such as 15m")
		}
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return bad("BCRYPT_COST", fmt.Sprintf("must be between %d and %d", bcrypt.MinCost, bcrypt.MaxCost))
	}
	if c.IsProduction() && c.BcryptCost < 10 {
		return bad("BCRYPT_COST", "must be at least 10 in production")
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			return bad("SMTP_URL", "must look like smtp://user:pass@host:587")
		}
	}
	if c.JWTIssuer == "" || c.JWTAudience == "" {
		return bad("JWT_ISSUER/JWT_AUDIENCE", "must not be empty")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("LOG_LEVEL", "must be debug, info, warn or error")
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

// describe rewrites the env library's errors, which name Go fields, to name
// the environment variable instead.
func describe(err error) error {
	var pe env.ParseError
	if errors.As(err, &pe) {
		if f, ok := reflect.TypeOf(Config{}).FieldByName(pe.Name); ok {
			return fmt.Errorf("invalid %s: %v", f.Tag.Get("env"), pe.Err)
		}
	}
	return fmt.Errorf("configuration: %w", err)
}

// Variables lists every environment variable Config reads.
func Variables() []string {
	var names []string
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		if name := t.Field(i).Tag.Get("env"); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
