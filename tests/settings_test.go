package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/settings"
)

func TestDefaults(t *testing.T) {
	cfg, err := settings.Load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != "8080" || cfg.AccessTokenTTL != 15*time.Minute || cfg.RefreshTokenTTL != 168*time.Hour ||
		cfg.BcryptCost != 12 || cfg.IsProduction() || len(cfg.CORSAllowedOrigins) != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg.Host != "127.0.0.1" || cfg.JWTIssuer != "http://localhost:8080" {
		t.Fatalf("development listens on %q, issuer %q", cfg.Host, cfg.JWTIssuer)
	}
	prod, err := settings.Load(map[string]string{"APP_ENV": "production", "APP_BASE_URL": "https://api.example.com/"})
	if err != nil || prod.Host != "" || prod.JWTIssuer != "https://api.example.com" {
		t.Fatalf("production listens on %q, issuer %q: %v", prod.Host, prod.JWTIssuer, err)
	}
	if _, err := settings.Load(map[string]string{"APP_ENV": "production", "APP_BASE_URL": "http://api.example.com"}); err == nil {
		t.Fatal("production took a plain-http base URL")
	}
	if _, err := settings.Load(map[string]string{"APP_ENV": "production", "APP_BASE_URL": "http://localhost:8080", "ALLOW_HTTP_BASE_URL": "true"}); err != nil {
		t.Fatalf("ALLOW_HTTP_BASE_URL: %v", err)
	}
	rl := cfg.RateLimits
	if rl.Public.Limit != 100 || rl.Login.Window != 15*time.Minute || rl.Tiers["enterprise"].Limit != 3000 || rl.User.Limit != 300 {
		t.Fatalf("rate limit defaults: %+v", rl)
	}
}

func TestMalformedValuesNameTheVariable(t *testing.T) {
	for name, value := range map[string]string{
		"ACCESS_TOKEN_TTL": "soon", "BCRYPT_COST": "99", "APP_BASE_URL": "localhost", "SMTP_URL": "mail.example.com",
		"CORS_ALLOWED_ORIGINS": "example.com", "RATE_LIMIT_ENABLED": "maybe", "RATE_LIMIT_TIERS": "gold",
		"REFRESH_TOKEN_TTL": "-1h", "LOG_LEVEL": "loud", "RATE_LIMIT_REDIS_TIMEOUT": "0s", "SWAGGER_ENABLED": "sometimes", "DEV_ROUTES": "often",
	} {
		_, err := settings.Load(map[string]string{name: value})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: error %v does not name it", name, value, err)
		}
	}
}

func TestTrustedProxiesAcceptAddressesAndRanges(t *testing.T) {
	cfg, err := settings.Load(map[string]string{"TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16,::1"})
	if err != nil || len(cfg.TrustedProxyNets) != 3 || cfg.TrustedProxyNets[0].String() != "10.0.0.1/32" {
		t.Fatalf("%v %v", cfg.TrustedProxyNets, err)
	}
}

func TestSwaggerFollowsTheEnvironmentUnlessSet(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, true},
		{map[string]string{"APP_ENV": "production", "APP_BASE_URL": "https://api.example.com"}, false},
		{map[string]string{"APP_ENV": "production", "APP_BASE_URL": "https://api.example.com", "SWAGGER_ENABLED": "true"}, true},
		{map[string]string{"SWAGGER_ENABLED": "false"}, false},
	} {
		cfg, err := settings.Load(c.env)
		if err != nil || cfg.SwaggerEnabled != c.want {
			t.Errorf("%v: SwaggerEnabled=%v err=%v, want %v", c.env, cfg.SwaggerEnabled, err, c.want)
		}
	}
}

func TestDevRoutesAreDevelopmentOnly(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		want    bool
		refused bool
	}{
		{map[string]string{}, true, false},
		{map[string]string{"DEV_ROUTES": "false"}, false, false},
		{map[string]string{"APP_ENV": "production", "APP_BASE_URL": "https://api.example.com"}, false, false},
		{map[string]string{"APP_ENV": "production", "APP_BASE_URL": "https://api.example.com", "DEV_ROUTES": "true"}, false, true},
	} {
		cfg, err := settings.Load(c.env)
		if c.refused {
			if err == nil || !strings.Contains(err.Error(), "DEV_ROUTES") {
				t.Errorf("%v: want a refusal naming DEV_ROUTES, got %v", c.env, err)
			}
			continue
		}
		if err != nil || cfg.DevRoutes != c.want {
			t.Errorf("%v: DevRoutes=%v err=%v, want %v", c.env, cfg.DevRoutes, err, c.want)
		}
	}
}

// Each typed setting parses where it is read and names its variable when
// it cannot.
func TestTypedSettingsParseOnceAndNameTheVariable(t *testing.T) {
	cfg, err := settings.Load(map[string]string{"RATE_LIMIT_LOGIN_ACCOUNT": "3/1m,9/1h", "RATE_LIMIT_TIERS": "free=1/1s,gold=9/1m",
		"API_KEY_PREVIOUS_PEPPERS": "1:" + strings.Repeat("p", 32), "API_KEY_PEPPER_VERSION": "2", "SWAGGER_ENABLED": "false"})
	if err != nil {
		t.Fatal(err)
	}
	rl := cfg.RateLimits
	if rl.Public.Name != "public" || rl.Public.Limit != 100 || len(rl.LoginAccount) != 2 || rl.LoginAccount[1].Name != "login_account_2" ||
		rl.Tiers["gold"].Limit != 9 || rl.Tiers["gold"].Name != "user" {
		t.Errorf("policies: %+v", rl)
	}
	if cfg.APIKeyPreviousPeppers[1] != strings.Repeat("p", 32) || cfg.SwaggerEnabled {
		t.Errorf("secrets %v, swagger %v", cfg.APIKeyPreviousPeppers, cfg.SwaggerEnabled)
	}
	for env, want := range map[string]string{
		"RATE_LIMIT_PUBLIC":        "invalid RATE_LIMIT_PUBLIC",
		"RATE_LIMIT_TIERS":         "invalid RATE_LIMIT_TIERS",
		"RATE_LIMIT_LOGIN_ACCOUNT": "invalid RATE_LIMIT_LOGIN_ACCOUNT",
		"API_KEY_PREVIOUS_PEPPERS": "invalid API_KEY_PREVIOUS_PEPPERS",
		"MFA_PREVIOUS_KEYS":        "invalid MFA_PREVIOUS_KEYS",
		"SWAGGER_ENABLED":          "invalid SWAGGER_ENABLED",
		"SHUTDOWN_DRAIN_DELAY":     "invalid SHUTDOWN_DRAIN_DELAY",
	} {
		if _, err := settings.Load(map[string]string{env: "not-a-value"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=not-a-value: %v, want %q", env, err, want)
		}
	}
	if _, err := settings.Load(map[string]string{"MFA_PREVIOUS_KEYS": "1:" + strings.Repeat("k", 32)}); err == nil || !strings.Contains(err.Error(), "current version") {
		t.Errorf("a previous key of the current version: %v", err)
	}
}
