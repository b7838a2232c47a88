package tests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/settings"
)

func captchaHeader(token string) map[string]string {
	return map[string]string{"X-Captcha-Token": token}
}

func TestCaptchaOnRegistration(t *testing.T) {
	parallelTest(t)
	fake := []string{"CAPTCHA_PROVIDER", "fake", "CAPTCHA_FLOWS", "register=always,forgot=always,resend=always"}
	body := map[string]string{"email": "captcha@example.com", "password": testPassword}
	for _, s := range []Scenario{
		{Name: "without an answer", Method: "POST", URL: "/auth/register", Body: body, Env: fake,
			ExpectedStatus: 400, ExpectedContent: []string{`"code":"captcha_required"`, "X-Captcha-Token"},
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, len(a.sent(t)) == 0, "a refused registration sent mail")
			}},
		{Name: "a solved one", Method: "POST", URL: "/auth/register", Body: body, Env: fake, Headers: captchaHeader("pass"), ExpectedStatus: 202},
		{Name: "a refused one", Method: "POST", URL: "/auth/register", Body: body, Env: fake, Headers: captchaHeader("wrong"),
			ExpectedStatus: 400, ExpectedContent: []string{`"code":"captcha_invalid"`}},
		{Name: "the provider down: closed by default", Method: "POST", URL: "/auth/register", Body: body, Env: fake, Headers: captchaHeader("unavailable"),
			ExpectedStatus: 503, ExpectedContent: []string{`"code":"captcha_unavailable"`}, ExpectedHeaders: map[string]string{"Retry-After": "5"},
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, strings.Contains(a.Logs.String(), "refusing the request (CAPTCHA_FAIL_OPEN is off)"), "not logged: %s", a.Logs.String())
			}},
		{Name: "the provider down with CAPTCHA_FAIL_OPEN", Method: "POST", URL: "/auth/register", Body: body, Headers: captchaHeader("unavailable"),
			Env: append([]string{"CAPTCHA_FAIL_OPEN", "true"}, fake...), ExpectedStatus: 202,
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, strings.Contains(a.Logs.String(), "letting the request through (CAPTCHA_FAIL_OPEN)"), "not logged: %s", a.Logs.String())
			}},
		{Name: "forgot asks too", Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": "x@example.com"}, Env: fake,
			ExpectedStatus: 400, ExpectedContent: []string{`"code":"captcha_required"`}},
		{Name: "resend asks too", Method: "POST", URL: "/auth/verify/resend", Body: map[string]string{"email": "x@example.com"}, Env: fake,
			Headers: captchaHeader("pass"), ExpectedStatus: 202},
		{Name: "off by default", Method: "POST", URL: "/auth/register", Body: body, ExpectedStatus: 202},
		{Name: "a front end reads the configuration", Method: "GET", URL: "/auth/captcha",
			Env:            []string{"CAPTCHA_PROVIDER", "fake", "CAPTCHA_SITE_KEY", "site-123", "CAPTCHA_FLOWS", "register=always,login=after:4"},
			ExpectedStatus: 200, ExpectedContent: []string{`"provider":"fake"`, `"site_key":"site-123"`, `"register":{"mode":"always"}`,
				`"login":{"mode":"after","after_failures":4}`, `"token":{"mode":"off"}`, `"header":"X-Captcha-Token"`}},
		{Name: "and sees it off", Method: "GET", URL: "/auth/captcha", Env: []string{"CAPTCHA_SITE_KEY", "site-123"},
			ExpectedStatus: 200, ExpectedContent: []string{`"provider":""`, `"site_key":""`, `"register":{"mode":"off"}`}},
	} {
		s.Run(t)
	}
}

// after:N on login counts failures from one IP and for one account: past
// N, even the right password needs a CAPTCHA.
func TestCaptchaAfterFailedLogins(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "CAPTCHA_PROVIDER", "fake", "CAPTCHA_FLOWS", "login=after:2", "RATE_LIMIT_LOGIN", "100/15m", "RATE_LIMIT_LOGIN_ACCOUNT", "100/15m")
	u := a.user(t, caller.Viewer, caller.Free)
	other := a.user(t, caller.Viewer, caller.Free)
	login := func(email, password, ip, token string) *Response {
		h := map[string]string{}
		if token != "" {
			h["X-Captcha-Token"] = token
		}
		return a.do(t, Request{Method: "POST", URL: "/auth/login", RemoteAddr: ip + ":1000", Headers: h,
			Body: map[string]string{"email": email, "password": password}})
	}
	mustf(t, login(u.Email, "Wrong-Pass-1", "198.51.100.1", "").Status == 401, "failure 1")
	mustf(t, login(u.Email, u.Password, "198.51.100.1", "").Status == 200, "a right password before N failures needs none")
	mustf(t, login(u.Email, "Wrong-Pass-1", "198.51.100.2", "").Status == 401, "failure 2, from another IP")
	// The account has had 2 failures: from any IP it now needs one.
	r := login(u.Email, u.Password, "198.51.100.3", "")
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "captcha_required"), "the account past N: %d %s", r.Status, r.Body)
	mustf(t, login(u.Email, u.Password, "198.51.100.3", "pass").Status == 200, "with a solved CAPTCHA")
	// 198.51.100.1 has had one failure; one more for another account and the IP is past N.
	mustf(t, login(other.Email, "Wrong-Pass-1", "198.51.100.1", "").Status == 401, "the IP's failure 2")
	r = login(other.Email, other.Password, "198.51.100.1", "")
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "captcha_required"), "the IP past N: %d %s", r.Status, r.Body)
	mustf(t, login(other.Email, other.Password, "198.51.100.9", "").Status == 200, "another IP, an account with one failure")
	// The window slides: 15 minutes on, nothing is asked.
	a.Clock.Advance(16 * time.Minute)
	mustf(t, login(u.Email, u.Password, "198.51.100.3", "").Status == 200, "after the window")
	metrics := a.scrape(t)
	mustf(t, strings.Contains(metrics, `app_captcha_checks_total{flow="login",result="required"} 2`) &&
		strings.Contains(metrics, `app_captcha_checks_total{flow="login",result="passed"} 1`), "metrics:\n%s", metrics)
}

// The real providers' protocol, against a siteverify of the test's own.
func TestCaptchaProviders(t *testing.T) {
	parallelTest(t)
	var mu sync.Mutex
	var seen []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		seen = append(seen, r.PostForm)
		mu.Unlock()
		answer := map[string]any{"success": false}
		switch r.PostForm.Get("response") {
		case "good":
			answer = map[string]any{"success": true}
		case "human":
			answer = map[string]any{"success": true, "score": 0.9}
		case "bot":
			answer = map[string]any{"success": true, "score": 0.1}
		case "broken":
			answer = map[string]any{"success": false, "error-codes": []string{"internal-error"}}
		case "slow":
			time.Sleep(900 * time.Millisecond)
			answer = map[string]any{"success": true}
		case "500":
			w.WriteHeader(500)
			return
		}
		_ = json.NewEncoder(w).Encode(answer)
	}))
	defer srv.Close()
	for _, c := range []struct {
		provider, token string
		status          int
		code            string
	}{
		{"turnstile", "good", 202, ""},
		{"turnstile", "wrong", 400, "captcha_invalid"},
		{"hcaptcha", "good", 202, ""},
		{"recaptcha", "human", 202, ""},
		{"recaptcha", "bot", 400, "captcha_invalid"}, // below CAPTCHA_MIN_SCORE
		{"turnstile", "broken", 503, "captcha_unavailable"},
		{"turnstile", "500", 503, "captcha_unavailable"},
		{"turnstile", "slow", 503, "captcha_unavailable"}, // past CAPTCHA_TIMEOUT
	} {
		t.Run(c.provider+"/"+c.token, func(t *testing.T) {
			a := newApp(t, "CAPTCHA_PROVIDER", c.provider, "CAPTCHA_SECRET", "secret-"+c.provider, "CAPTCHA_VERIFY_URL", srv.URL,
				"CAPTCHA_TIMEOUT", "500ms", "CAPTCHA_FLOWS", "register=always")
			r := a.do(t, Request{Method: "POST", URL: "/auth/register", Headers: captchaHeader(c.token), RemoteAddr: "203.0.113.7:4000",
				Body: map[string]string{"email": randomName("cap-") + "@example.com", "password": testPassword}})
			mustf(t, r.Status == c.status && strings.Contains(r.Body, c.code), "%d %s", r.Status, r.Body)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	mustf(t, len(seen) == 8, "%d siteverify calls", len(seen))
	for _, f := range seen {
		mustf(t, strings.HasPrefix(f.Get("secret"), "secret-") && f.Get("remoteip") == "203.0.113.7" && f.Get("response") != "", "form %v", f)
	}
}

// Production refuses the fake provider and a real one without its secret.
func TestCaptchaSettings(t *testing.T) {
	parallelTest(t)
	for _, c := range []struct{ env []string }{
		{[]string{"CAPTCHA_PROVIDER", "turnstile"}},
		{[]string{"CAPTCHA_PROVIDER", "nope"}},
		{[]string{"CAPTCHA_FLOWS", "signup=always"}},
		{[]string{"CAPTCHA_FLOWS", "login=after:0"}},
		{[]string{"CAPTCHA_FLOWS", "login=sometimes"}},
	} {
		env := map[string]string{}
		for i := 0; i+1 < len(c.env); i += 2 {
			env[c.env[i]] = c.env[i+1]
		}
		_, err := settings.Load(env)
		mustf(t, err != nil, "%v accepted", c.env)
	}
	_, err := settings.Load(map[string]string{"APP_ENV": "production", "APP_BASE_URL": "https://api.example.com", "CAPTCHA_PROVIDER": "fake"})
	mustf(t, err != nil && strings.Contains(err.Error(), "CAPTCHA_PROVIDER"), "production with the fake: %v", err)
}

// The token endpoint: after:1 failed client authentication from an IP, the
// next request needs a CAPTCHA (a service cannot solve one: it stops a
// secret-guessing run, and is off by default).
func TestCaptchaOnTheTokenEndpoint(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "CAPTCHA_PROVIDER", "fake", "CAPTCHA_FLOWS", "token=after:1")
	admin := a.user(t, caller.Admin, caller.Free)
	id, secret, _ := a.client(t, admin, readClient)
	f := url.Values{"grant_type": {"client_credentials"}}
	ok := a.do(t, formRequest("/oauth/token", f, map[string]string{"Authorization": basicAuth(id, secret)}))
	mustf(t, ok.Status == 200, "before any failure: %d %s", ok.Status, ok.Body)
	bad := a.do(t, formRequest("/oauth/token", f, map[string]string{"Authorization": basicAuth(id, "wrong")}))
	mustf(t, bad.Status == 401, "a wrong secret: %d", bad.Status)
	r := a.do(t, formRequest("/oauth/token", f, map[string]string{"Authorization": basicAuth(id, secret)}))
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "captcha_required"), "after a failure: %d %s", r.Status, r.Body)
	r = a.do(t, formRequest("/oauth/token", f, map[string]string{"Authorization": basicAuth(id, secret), "X-Captcha-Token": "pass"}))
	mustf(t, r.Status == 200, "with a CAPTCHA: %d %s", r.Status, r.Body)
}
