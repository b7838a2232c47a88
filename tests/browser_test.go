package tests

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/product"
)

const appOrigin = "http://tollgate.test" // the tests' APP_BASE_URL

// cookieLogin logs u in in cookie mode from origin and returns the session
// and CSRF cookies' values.
func cookieLogin(t testing.TB, a *App, u *User, origin string) (session, csrf string, r *Response) {
	t.Helper()
	r = a.do(t, Request{Method: "POST", URL: "/auth/login", Headers: map[string]string{"Origin": origin},
		Body: map[string]string{"email": u.Email, "password": u.Password, "session": "cookie"}})
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		switch ck.Name {
		case product.ID + "_session":
			session = ck.Value
		case product.ID + "_csrf":
			csrf = ck.Value
		}
	}
	return session, csrf, r
}

// withCookies are the headers of a browser request carrying the session.
func withCookies(session, csrf, origin string) map[string]string {
	h := map[string]string{"Cookie": product.ID + "_session=" + session + "; " + product.ID + "_csrf=" + csrf}
	if csrf != "" {
		h["X-CSRF-Token"] = csrf
	}
	if origin != "" {
		h["Origin"] = origin
	}
	return h
}

func TestCookieLogin(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Editor, caller.Free)
	session, csrf, r := cookieLogin(t, a, u, appOrigin)
	mustf(t, r.Status == 200, "cookie login: %d %s", r.Status, r.Body)
	mustf(t, strings.Contains(r.Body, `"session":"cookie"`) && strings.Contains(r.Body, `"csrf_token":"`+csrf+`"`) &&
		!strings.Contains(r.Body, "access_token") && !strings.Contains(r.Body, "refresh_token") && !strings.Contains(r.Body, session),
		"the body carries a token: %s", r.Body)
	mustf(t, session != "" && csrf != "", "cookies %v", r.Header.Values("Set-Cookie"))
	mustf(t, !strings.Contains(session, ".") && len(session) < 200, "the session cookie looks like a JWT or is large: %d bytes", len(session))
	var sawSession bool
	for _, line := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, product.ID+"_session=") {
			sawSession = true
			mustf(t, strings.Contains(line, "HttpOnly") && strings.Contains(line, "SameSite=Lax") && strings.Contains(line, "Path=/") &&
				strings.Contains(line, "Max-Age=604800"), "session cookie %q", line)
		}
		if strings.HasPrefix(line, product.ID+"_csrf=") {
			mustf(t, !strings.Contains(line, "HttpOnly"), "the CSRF cookie must be readable by the page: %q", line)
		}
	}
	mustf(t, sawSession, "no session cookie")

	// A read needs only the cookie.
	me := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: withCookies(session, "", "")})
	mustf(t, me.Status == 200 && strings.Contains(me.Body, u.Email), "read with the cookie: %d %s", me.Status, me.Body)
	// A write needs an allowed Origin and the CSRF token too.
	key := map[string]any{"name": "from the browser", "scopes": []string{"users:read"}}
	for _, c := range []struct {
		name    string
		headers map[string]string
		status  int
		code    string
	}{
		{"no CSRF token", withCookies(session, "", appOrigin), 403, "csrf_token_invalid"},
		{"a wrong CSRF token", withCookies(session, csrf[:len(csrf)-2]+"xx", appOrigin), 403, "csrf_token_invalid"},
		{"another origin", withCookies(session, csrf, "https://evil.example"), 403, "origin_not_allowed"},
		{"no Origin", withCookies(session, csrf, ""), 403, "origin_not_allowed"},
		{"cookie and bearer", func() map[string]string {
			h := withCookies(session, csrf, appOrigin)
			h["Authorization"] = u.Bearer()
			return h
		}(), 400, "ambiguous_credentials"},
		{"cookie and API key", func() map[string]string {
			h := withCookies(session, csrf, appOrigin)
			h["X-API-Key"] = "tg_test_x"
			return h
		}(), 400, "ambiguous_credentials"},
		{"all there", withCookies(session, csrf, appOrigin), 201, ""},
	} {
		r := a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: c.headers, Body: key})
		mustf(t, r.Status == c.status && strings.Contains(r.Body, c.code), "%s: %d %s", c.name, r.Status, r.Body)
	}
	// Another session's CSRF token is worth nothing here.
	other, otherCSRF, _ := cookieLogin(t, a, u, appOrigin)
	mustf(t, other != session, "two logins share a session")
	r = a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: withCookies(session, otherCSRF, appOrigin), Body: key})
	mustf(t, r.Status == 403, "another session's CSRF token: %d %s", r.Status, r.Body)
}

func TestCookieLoginScenarios(t *testing.T) {
	parallelTest(t)
	login := func(origin string) func(t testing.TB, a *App) map[string]string {
		return func(t testing.TB, a *App) map[string]string {
			u := a.user(t, caller.Viewer, caller.Free)
			return map[string]string{"email": u.Email, "origin": origin}
		}
	}
	body := map[string]string{"email": "{email}", "password": testPassword, "session": "cookie"}
	for _, s := range []Scenario{
		{Name: "from the API's own origin", Method: "POST", URL: "/auth/login", Body: body, Setup: login(appOrigin),
			Headers: map[string]string{"Origin": "{origin}"}, ExpectedStatus: 200, ExpectedContent: []string{`"session":"cookie"`, `"csrf_token"`},
			NotExpected: []string{"access_token"}, ExpectedHeaders: map[string]string{"Set-Cookie": product.ID + "_"}},
		{Name: "from a configured front end", Method: "POST", URL: "/auth/login", Body: body, Setup: login("http://localhost:5173"),
			Env: []string{"CORS_ALLOWED_ORIGINS", "http://localhost:5173"}, Headers: map[string]string{"Origin": "{origin}"},
			ExpectedStatus: 200, ExpectedContent: []string{`"session":"cookie"`}},
		{Name: "from another site (login CSRF)", Method: "POST", URL: "/auth/login", Body: body, Setup: login("https://evil.example"),
			Headers: map[string]string{"Origin": "{origin}"}, ExpectedStatus: 403, ExpectedContent: []string{`"code":"origin_not_allowed"`},
			NotExpected: []string{"csrf_token"}},
		{Name: "without an Origin", Method: "POST", URL: "/auth/login", Body: body, Setup: login(""),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"origin_not_allowed"`}},
		{Name: "an unknown session mode", Method: "POST", URL: "/auth/login", Setup: login(appOrigin),
			Body:           map[string]string{"email": "{email}", "password": testPassword, "session": "jar"},
			ExpectedStatus: 400, ExpectedContent: []string{`"session"`}},
		{Name: "bearer mode is today's answer", Method: "POST", URL: "/auth/login", Setup: login(""),
			Body:           map[string]string{"email": "{email}", "password": testPassword, "session": "bearer"},
			ExpectedStatus: 200, ExpectedContent: []string{`"access_token"`, `"refresh_token"`}},
		{Name: "a refresh without token or cookie", Method: "POST", URL: "/auth/refresh", Body: `{}`,
			ExpectedStatus: 400, ExpectedContent: []string{`"refresh_token"`}},
		{Name: "a refresh with a body token and a cookie", Method: "POST", URL: "/auth/refresh", Body: `{"refresh_token":"abc"}`,
			Headers: map[string]string{"Cookie": product.ID + "_session=def", "Origin": appOrigin}, ExpectedStatus: 400,
			ExpectedContent: []string{`"code":"ambiguous_credentials"`}},
		{Name: "a cookie of no session", Method: "GET", URL: "/users/me", Headers: map[string]string{"Cookie": product.ID + "_session=nothing"},
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"invalid_refresh_token"`}},
		{Name: "logout with a cookie of no session", Method: "POST", URL: "/auth/logout", Body: `{}`,
			Headers: map[string]string{"Cookie": product.ID + "_session=nothing", "Origin": appOrigin}, ExpectedStatus: 204,
			ExpectedHeaders: map[string]string{"Set-Cookie": "Max-Age=0"}},
	} {
		s.Run(t)
	}
}

// The whole life of a cookie session as a browser lives it, over a real
// connection with a cookie jar: login, calls, refresh, a role change, logout.
func TestCookieSessionLifecycle(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	admin := a.user(t, caller.Admin, caller.Free)
	u := a.user(t, caller.Viewer, caller.Free)
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	call := func(method, path, body string) *Response {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.Header.Set("Origin", srv.URL) // the page's own origin
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		u, _ := url.Parse(srv.URL)
		for _, ck := range jar.Cookies(u) {
			if ck.Name == product.ID+"_csrf" {
				req.Header.Set("X-CSRF-Token", ck.Value)
			}
		}
		res, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return &Response{Status: res.StatusCode, Header: res.Header, Body: string(raw)}
	}
	r := call("POST", "/auth/login", `{"email":"`+u.Email+`","password":"`+testPassword+`","session":"cookie"}`)
	mustf(t, r.Status == 200, "login: %d %s", r.Status, r.Body)
	mustf(t, call("GET", "/users/me", "").Status == 200, "a read")
	r = call("GET", "/analytics", "")
	mustf(t, r.Status == 403, "a viewer reads analytics: %d %s", r.Status, r.Body)

	// A role change reaches the cookie session at its next request.
	mustf(t, a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + u.ID, Headers: bearer(admin), Body: map[string]string{"role": "admin"}}).Status == 200, "promote")
	r = call("GET", "/users/me", "")
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"role":"admin"`), "after the promotion: %d %s", r.Status, r.Body)

	// The access token lives out its TTL; the session goes on.
	a.Clock.Advance(20 * time.Minute)
	mustf(t, call("GET", "/users/me", "").Status == 200, "after the access TTL")

	// A refresh rotates the cookie; the CSRF token stays the session's.
	before, _ := url.Parse(srv.URL)
	old := jar.Cookies(before)
	r = call("POST", "/auth/refresh", `{}`)
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"session":"cookie"`) && !strings.Contains(r.Body, "refresh_token"), "refresh: %d %s", r.Status, r.Body)
	var oldSession string
	for _, ck := range old {
		if ck.Name == product.ID+"_session" {
			oldSession = ck.Value
		}
	}
	for _, ck := range jar.Cookies(before) {
		if ck.Name == product.ID+"_session" {
			mustf(t, ck.Value != oldSession, "the session cookie was not rotated")
		}
	}
	// A request that was in flight with the old cookie still works.
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: withCookies(oldSession, "", "")}).Status == 200, "the old cookie within the grace period")
	mustf(t, call("GET", "/users/me", "").Status == 200, "a read after the refresh")

	// Logout ends the session and clears the cookies.
	r = call("POST", "/auth/logout", `{}`)
	mustf(t, r.Status == 204, "logout: %d %s", r.Status, r.Body)
	mustf(t, len(jar.Cookies(before)) == 0, "cookies left after logout: %v", jar.Cookies(before))
	var live int64
	a.DB.Model(&models.RefreshToken{}).Where("user_id = ? AND revoked_at IS NULL", u.ID).Count(&live)
	mustf(t, live == 1, "%d live sessions (the bearer login of the fixture only)", live)
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: withCookies(oldSession, "", "")}).Status == 401, "the old cookie after logout")
}

// Over https the cookies carry the __Host- prefix and Secure.
func TestCookieSessionOverHTTPS(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "APP_BASE_URL", "https://api.example.com")
	u := a.user(t, caller.Viewer, caller.Free)
	r := a.do(t, Request{Method: "POST", URL: "/auth/login", Headers: map[string]string{"Origin": "https://api.example.com"},
		Body: map[string]string{"email": u.Email, "password": u.Password, "session": "cookie"}})
	mustf(t, r.Status == 200, "login: %d %s", r.Status, r.Body)
	var names []string
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		names = append(names, ck.Name)
		mustf(t, ck.Secure && ck.Path == "/" && ck.Domain == "", "%s: Secure %v, Path %q, Domain %q", ck.Name, ck.Secure, ck.Path, ck.Domain)
		if ck.Name == "__Host-"+product.ID+"_session" {
			me := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Cookie": ck.Name + "=" + ck.Value}})
			mustf(t, me.Status == 200, "read with the __Host- cookie: %d %s", me.Status, me.Body)
		}
	}
	mustf(t, strings.Join(names, ",") == "__Host-"+product.ID+"_session,__Host-"+product.ID+"_csrf", "cookies %v", names)
}

// CORS with credentials, for the allowlisted origins only.
func TestCORSWithCredentials(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "CORS_ALLOWED_ORIGINS", "http://localhost:5173")
	preflight := func(origin string) *Response {
		return a.do(t, Request{Method: "OPTIONS", URL: "/api-keys", Headers: map[string]string{"Origin": origin,
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-csrf-token"}})
	}
	r := preflight("http://localhost:5173")
	mustf(t, r.Header.Get("Access-Control-Allow-Origin") == "http://localhost:5173" && r.Header.Get("Access-Control-Allow-Credentials") == "true" &&
		strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "x-csrf-token"), "allowed preflight: %d %v", r.Status, r.Header)
	r = preflight("https://evil.example")
	mustf(t, r.Header.Get("Access-Control-Allow-Origin") == "" && r.Header.Get("Access-Control-Allow-Credentials") == "", "refused preflight: %v", r.Header)
	// Any origin: the API is readable from anywhere, but never with credentials.
	anyOrigin := newApp(t, "CORS_ALLOWED_ORIGINS", "*")
	r = anyOrigin.do(t, Request{Method: "OPTIONS", URL: "/api-keys", Headers: map[string]string{"Origin": "https://evil.example",
		"Access-Control-Request-Method": "POST"}})
	mustf(t, r.Header.Get("Access-Control-Allow-Origin") == "*" && r.Header.Get("Access-Control-Allow-Credentials") == "", "with *: %v", r.Header)
}

// The example front end is served in development, under the page CSP.
func TestExampleFrontEnd(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	for _, c := range []struct{ path, want, contentType string }{
		{"/dev/example/", `<script type="module" src="app.js"></script>`, "text/html"},
		{"/dev/example/app.js", `session: 'cookie'`, "text/javascript"},
		{"/dev/example/style.css", "main {", "text/css"},
	} {
		r := a.do(t, Request{Method: "GET", URL: c.path, RemoteAddr: "127.0.0.1:5000"})
		mustf(t, r.Status == 200 && strings.Contains(r.Body, c.want) && strings.HasPrefix(r.Header.Get("Content-Type"), c.contentType),
			"%s: %d %s %s", c.path, r.Status, r.Header.Get("Content-Type"), r.Body)
		mustf(t, strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'"), "%s CSP %q", c.path, r.Header.Get("Content-Security-Policy"))
	}
	off := newApp(t, "DEV_ROUTES", "false")
	mustf(t, off.do(t, Request{Method: "GET", URL: "/dev/example/"}).Status == 404, "the example is served without DEV_ROUTES")
}
