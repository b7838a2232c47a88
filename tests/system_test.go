package tests

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/product"
)

func TestSystemEndpoints(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "public status", Method: "GET", URL: "/public/status", ExpectedStatus: 200,
			ExpectedContent: []string{`"status":"ok"`, `"version":"`}},
		{Name: "liveness", Method: "GET", URL: "/healthz", ExpectedStatus: 200},
		{Name: "the index points at the docs", Method: "GET", URL: "/", ExpectedStatus: 200,
			ExpectedContent: []string{`"name":"` + product.Name + ` API"`, `"docs":"/swagger/index.html"`, `"openapi":"/openapi.json"`, `"health":"/healthz"`, `"version":"`}},
		{Name: "the index names no docs when they are off", Method: "GET", URL: "/", ExpectedStatus: 200,
			Env: []string{"SWAGGER_ENABLED", "false"}, NotExpected: []string{"swagger", "openapi"}},
		{Name: "readiness with the database up", Method: "GET", URL: "/readyz", ExpectedStatus: 200,
			ExpectedContent: []string{`"database":"ok"`}},
		{Name: "readiness names the database when it is down", Method: "GET", URL: "/readyz", ExpectedStatus: 503,
			Setup: func(t testing.TB, a *App) map[string]string {
				a.DB.Close()
				return nil
			},
			ExpectedContent: []string{`"code":"not_ready"`, `"database":"unreachable"`}, NotExpected: []string{"sql:", "closed"}},
		// Redis down is degraded, not unready: every request still works
		// (limits hold per instance), so the instance stays in rotation.
		{Name: "readiness reports Redis down as degraded, still ready", Method: "GET", URL: "/readyz", ExpectedStatus: 200,
			Env:             []string{"REDIS_URL", "redis://127.0.0.1:1/0"},
			ExpectedContent: []string{`"status":"degraded"`, `"redis":"unreachable"`, `"database":"ok"`, `"degraded":["redis"]`},
			After: func(t testing.TB, a *App, _ *Response) {
				mustf(t, strings.Count(a.Logs.String(), "readiness: dependency unreachable") == 1, "not logged once: %s", a.Logs.String())
				a.do(t, Request{Method: "GET", URL: "/readyz"})
				mustf(t, strings.Count(a.Logs.String(), "readiness: dependency unreachable") == 1, "logged per probe: %s", a.Logs.String())
				scrape := a.scrape(t)
				mustf(t, strings.Contains(scrape, `app_dependency_up{dependency="redis"} 0`) &&
					strings.Contains(scrape, `app_dependency_up{dependency="database"} 1`), "metrics: %s", scrape)
			}},
		{Name: "JWKS", Method: "GET", URL: "/.well-known/jwks.json", ExpectedStatus: 200,
			ExpectedContent: []string{`"kty":"RSA"`, `"alg":"RS256"`, `"use":"sig"`, `"kid":"`, `"n":"`, `"e":"AQAB"`},
			NotExpected:     []string{`"d":`, `"p":`}},
		{Name: "unknown route", Method: "GET", URL: "/nowhere", ExpectedStatus: 404,
			ExpectedContent: []string{`{"error":"Not found","code":"not_found"}`}},
		{Name: "wrong method", Method: "PUT", URL: "/users/me", ExpectedStatus: 405,
			ExpectedContent: []string{`"code":"method_not_allowed"`}},
		{Name: "trailing data after the JSON", Method: "POST", URL: "/auth/login", Body: `{"email":"a@b.co","password":"x"} {}`,
			ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_json"`}},
		{Name: "a JSON array is not an object", Method: "POST", URL: "/auth/login", Body: `[1,2]`,
			ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_json"`}},
		{Name: "empty body", Method: "POST", URL: "/auth/login", Body: ``,
			Headers:        map[string]string{"Content-Type": "application/json"},
			ExpectedStatus: 400, ExpectedContent: []string{`"Request body is required"`}},
		{Name: "security headers on every answer", Method: "GET", URL: "/public/status", ExpectedStatus: 200,
			ExpectedHeaders: map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
				"Content-Security-Policy": "default-src 'none'", "X-Request-Id": ""}},
		{Name: "no HSTS in development", Method: "GET", URL: "/public/status", ExpectedStatus: 200,
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, r.Header.Get("Strict-Transport-Security") == "", "HSTS set in development")
			}},
		{Name: "HSTS in production behind a TLS-terminating trusted proxy", Method: "GET", URL: "/public/status", ExpectedStatus: 200,
			// httptest's peer is 192.0.2.1; HSTS goes only over HTTPS, here as told by a trusted proxy.
			Env:             []string{"APP_ENV", "production", "BCRYPT_COST", "10", "APP_BASE_URL", "https://tollgate.test", "TRUSTED_PROXIES", "192.0.2.0/24"},
			Headers:         map[string]string{"X-Forwarded-Proto": "https"},
			ExpectedHeaders: map[string]string{"Strict-Transport-Security": "max-age=31536000"}},
		{Name: "X-Forwarded-Proto from an untrusted peer does not count", Method: "GET", URL: "/public/status", ExpectedStatus: 200,
			Env:     []string{"APP_ENV", "production", "BCRYPT_COST", "10", "APP_BASE_URL", "https://tollgate.test"},
			Headers: map[string]string{"X-Forwarded-Proto": "https"},
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, r.Header.Get("Strict-Transport-Security") == "", "HSTS over plain HTTP")
			}},
		{Name: "CORS is closed by default", Method: "OPTIONS", URL: "/users/me", ExpectedStatus: 204,
			Headers: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, r.Header.Get("Access-Control-Allow-Origin") == "", "CORS open: %v", r.Header)
			}},
		{Name: "CORS allows a listed origin", Method: "OPTIONS", URL: "/users/me", ExpectedStatus: 204,
			Env:             []string{"CORS_ALLOWED_ORIGINS", "https://app.example.com"},
			Headers:         map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
			ExpectedHeaders: map[string]string{"Access-Control-Allow-Origin": "https://app.example.com"}},
		{Name: "CORS refuses an unlisted origin", Method: "GET", URL: "/public/status", ExpectedStatus: 200,
			Env:     []string{"CORS_ALLOWED_ORIGINS", "https://app.example.com"},
			Headers: map[string]string{"Origin": "https://evil.example"},
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, r.Header.Get("Access-Control-Allow-Origin") == "", "unlisted origin allowed")
			}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// A panic in a handler becomes a plain 500 in the error shape, logged with
// the request id; nothing internal reaches the client.
func TestPanicIsA500WithoutInternals(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	a.Server.Handler().(*echo.Echo).GET("/boom", func(c *echo.Context) error { panic("secret internal detail") })
	a.Server.Handler().(*echo.Echo).GET("/fail", func(c *echo.Context) error { return errors.New(`pq: relation "users" does not exist`) })
	for _, path := range []string{"/boom", "/fail"} {
		r := a.do(t, Request{Method: "GET", URL: path})
		mustf(t, r.Status == 500 && r.Body == `{"error":"Internal server error","code":"internal_error"}`+"\n", "%s: %d %s", path, r.Status, r.Body)
		id := r.Header.Get("X-Request-Id")
		mustf(t, id != "" && strings.Contains(a.Logs.String(), id), "%s: request id %q not in the log", path, id)
	}
	mustf(t, strings.Contains(a.Logs.String(), "secret internal detail"), "panic not logged")
}

// The request log has what an operator needs and no secrets.
func TestRequestLogHasNoSecrets(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	register(t, a, "log@example.com")
	token := a.lastToken(t, "log@example.com")
	a.do(t, Request{Method: "GET", URL: "/auth/verify?token=" + token})
	a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
	logs := a.Logs.String()
	for _, secret := range []string{testPassword, u.Access, u.Refresh, token, "Bearer"} {
		mustf(t, !strings.Contains(logs, secret), "log holds %q", secret)
	}
	mustf(t, strings.Contains(logs, `"path":"/users/me"`) && strings.Contains(logs, `"user_id":"`+u.ID+`"`) &&
		strings.Contains(logs, `"request_id"`) && strings.Contains(logs, `"latency"`) && strings.Contains(logs, `"status":200`), "log lacks fields: %s", logs)
}

// X-Forwarded-For is believed only from a proxy listed in TRUSTED_PROXIES.
func TestClientIPFromTrustedProxiesOnly(t *testing.T) {
	parallelTest(t)
	ipOf := func(a *App, remote, xff string) string {
		u := a.user(t, caller.Viewer, caller.Free)
		r := a.do(t, Request{Method: "POST", URL: "/auth/refresh", RemoteAddr: remote,
			Headers: map[string]string{"X-Forwarded-For": xff}, Body: map[string]string{"refresh_token": u.Refresh}})
		mustf(t, r.Status == http.StatusOK, "refresh: %d %s", r.Status, r.Body)
		var rt models.RefreshToken
		a.DB.Where("replaced_by IS NULL AND user_id = ?", u.ID).First(&rt)
		return rt.ClientIP
	}
	direct := newApp(t)
	got := ipOf(direct, "203.0.113.7:5000", "198.51.100.1")
	mustf(t, got == "203.0.113.7", "untrusted peer's XFF believed: %s", got)
	got = ipOf(direct, "127.0.0.1:5000", "198.51.100.1")
	mustf(t, got == "127.0.0.1", "loopback is not a proxy unless listed: %s", got)

	proxied := newApp(t, "TRUSTED_PROXIES", "10.0.0.0/8")
	got = ipOf(proxied, "10.1.2.3:5000", "198.51.100.1")
	mustf(t, got == "198.51.100.1", "listed proxy's XFF ignored: %s", got)
	got = ipOf(proxied, "10.1.2.3:5000", "6.6.6.6, 198.51.100.1")
	mustf(t, got == "198.51.100.1", "client-supplied XFF hop believed: %s", got)
	got = ipOf(proxied, "203.0.113.9:5000", "198.51.100.1")
	mustf(t, got == "203.0.113.9", "unlisted peer's XFF believed: %s", got)
}

// HEAD is answered like GET without a body, over a real connection (net/http
// drops the body; a recorder would not).
func TestHeadIsGetWithoutABody(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		path   string
		status int
	}{{"/public/status", 200}, {"/", 200}, {"/users/me", 401}, {"/nowhere", 404}} {
		get, err := http.Get(srv.URL + c.path)
		mustf(t, err == nil, "GET %s: %v", c.path, err)
		getBody, _ := io.ReadAll(get.Body)
		get.Body.Close()
		head, err := http.Head(srv.URL + c.path)
		mustf(t, err == nil, "HEAD %s: %v", c.path, err)
		body, _ := io.ReadAll(head.Body)
		head.Body.Close()
		mustf(t, head.StatusCode == c.status && get.StatusCode == c.status, "%s: HEAD %d, GET %d, want %d", c.path, head.StatusCode, get.StatusCode, c.status)
		mustf(t, len(body) == 0, "HEAD %s has a body: %q", c.path, body)
		mustf(t, head.Header.Get("Content-Type") == get.Header.Get("Content-Type"), "%s: Content-Type %q vs %q", c.path, head.Header.Get("Content-Type"), get.Header.Get("Content-Type"))
		if c.status == 200 {
			mustf(t, head.ContentLength == int64(len(getBody)), "%s: HEAD Content-Length %d, GET body %d bytes", c.path, head.ContentLength, len(getBody))
		}
	}
}

// Each error is handled, and logged, once: a 401, 404 or 429 writes its one
// request line and nothing else (it used to add a WARN "request failed
// after its answer was sent" each, burying the real ones).
func TestAnErrorIsLoggedOnce(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_PUBLIC", "2/1m") // the 404 counts too
	for _, c := range []struct {
		name   string
		req    Request
		status int
	}{
		{"unknown route", Request{Method: "GET", URL: "/no-such-route"}, 404},
		{"no token", Request{Method: "GET", URL: "/users/me"}, 401},
		{"allowed", Request{Method: "GET", URL: "/public/status"}, 200},
		{"limited", Request{Method: "GET", URL: "/public/status"}, 429},
		{"bad body", Request{Method: "POST", URL: "/auth/login", Body: "{"}, 400},
	} {
		before := strings.Count(a.Logs.String(), "\n")
		r := a.do(t, c.req)
		mustf(t, r.Status == c.status, "%s: %d %s", c.name, r.Status, r.Body)
		lines := strings.Split(strings.TrimSpace(a.Logs.String()), "\n")[before:]
		mustf(t, len(lines) == 1 && strings.Contains(lines[0], `"msg":"request"`), "%s: %d log lines: %v", c.name, len(lines), lines)
	}
}

// Metric labels take their values from bounded sets: a thousand made-up
// methods add one "OTHER" series, not a thousand.
func TestMadeUpMethodsDoNotGrowTheMetrics(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	series := func() int { return len(strings.Split(grep(a.scrape(t), "app_http_requests_total"), "\n")) }
	a.do(t, Request{Method: "GET", URL: "/healthz"})
	a.do(t, Request{Method: "BREW", URL: "/healthz"})
	before := series()
	for i := range 1000 {
		a.do(t, Request{Method: fmt.Sprintf("M%04d", i), URL: "/healthz"})
	}
	s := a.scrape(t)
	mustf(t, series() == before, "series %d -> %d:\n%s", before, series(), grep(s, "app_http_requests_total"))
	mustf(t, strings.Contains(s, `method="OTHER"`) && !strings.Contains(s, `method="M0999"`), "methods:\n%s", grep(s, "app_http_requests_total"))
	mustf(t, !strings.Contains(a.Logs.String(), `"method":"M0999"`), "the made-up method reached the log")
}
