package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/tollgate/tollgate/models"
)

// Sign-in through an OpenID Connect provider, against an in-process one
// (mockoidc: discovery, JWKS, code exchange with its PKCE check, signed ID
// tokens) on its own loopback port.

const frontEnd = "https://app.test/auth/done"

// provider starts an identity provider on the app's clock and returns it
// with the settings that configure it as "mock".
func provider(t *testing.T) (*mockoidc.MockOIDC, []string) {
	t.Helper()
	m, err := mockoidc.Run()
	mustf(t, err == nil, "mockoidc: %v", err)
	t.Cleanup(func() { _ = m.Shutdown() })
	m.FastForward(time.Until(Start)) // its tokens on the tests' clock
	raw, _ := json.Marshal([]map[string]string{{"name": "mock", "display_name": "Mock IdP", "issuer": m.Issuer(),
		"client_id": m.ClientID, "client_secret": m.ClientSecret}})
	file := filepath.Join(t.TempDir(), "oidc-providers.json")
	mustf(t, os.WriteFile(file, raw, 0o600) == nil, "write providers")
	return m, []string{"OIDC_PROVIDERS_FILE", file, "OAUTH_REDIRECT_URIS", frontEnd + ",com.example.app://auth"}
}

// signIn is one browser's sign-in up to the front end's page: start, the
// provider (which signs in whoever is queued), the callback with the
// browser's cookie. It returns where the callback sent the browser.
type signIn struct {
	start    string // query of /start
	cookie   bool   // the browser brings its cookie back (false: another browser)
	tamper   func(q url.Values)
	location *url.URL
	callback string // the callback URL the provider sent, as sent
	cookies  string
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (a *App) startSignIn(t *testing.T, s *signIn) {
	t.Helper()
	query := s.start
	if query == "" {
		query = "redirect_uri=" + url.QueryEscape(frontEnd)
	}
	r := a.do(t, Request{Method: "GET", URL: "/auth/oauth/mock/start?" + query})
	mustf(t, r.Status == http.StatusFound, "start: %d %s", r.Status, r.Body)
	for _, c := range r.Header.Values("Set-Cookie") {
		mustf(t, strings.Contains(c, "HttpOnly") && strings.Contains(c, "SameSite=Lax"), "the browser binding cookie: %s", c)
		name, _, _ := strings.Cut(c, ";")
		s.cookies = name
	}
	// The provider signs in whoever is queued and sends the browser back.
	resp, err := noFollow.Get(r.Header.Get("Location"))
	mustf(t, err == nil, "provider: %v", err)
	_ = resp.Body.Close()
	mustf(t, resp.StatusCode == http.StatusFound, "provider: %d", resp.StatusCode)
	s.callback = resp.Header.Get("Location")
}

func (a *App) finishSignIn(t *testing.T, s *signIn) *Response {
	t.Helper()
	u, err := url.Parse(s.callback)
	mustf(t, err == nil && u.Path == "/auth/oauth/mock/callback", "callback URL %q", s.callback)
	q := u.Query()
	if s.tamper != nil {
		s.tamper(q)
	}
	h := map[string]string{}
	if s.cookie {
		h["Cookie"] = s.cookies
	}
	r := a.do(t, Request{Method: "GET", URL: u.Path + "?" + q.Encode(), Headers: h})
	if r.Status == http.StatusFound {
		s.location, _ = url.Parse(r.Header.Get("Location"))
	}
	return r
}

// oidcSignIn runs a whole sign-in as who and answers POST /auth/oauth/token's.
func (a *App) oidcSignIn(t *testing.T, m *mockoidc.MockOIDC, who *mockoidc.MockUser) *Response {
	t.Helper()
	m.QueueUser(who)
	s := &signIn{cookie: true}
	a.startSignIn(t, s)
	r := a.finishSignIn(t, s)
	mustf(t, r.Status == http.StatusFound && s.location.Query().Get("code") != "", "callback: %d %s %v", r.Status, r.Body, s.location)
	mustf(t, strings.HasPrefix(s.location.String(), frontEnd+"?"), "sent to %s", s.location)
	return a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": s.location.Query().Get("code")}})
}

func googleUser(email string, verified bool) *mockoidc.MockUser {
	return &mockoidc.MockUser{Subject: randomName("sub-"), Email: email, EmailVerified: verified}
}

func identities(t *testing.T, a *App, user string) int64 {
	var n int64
	mustf(t, a.DB.Model(&models.Identity{}).Where("user_id = ?", user).Count(&n).Error == nil, "count identities")
	return n
}

func TestProviderSignIn(t *testing.T) {
	parallelTest(t)
	m, env := provider(t)
	a := newApp(t, env...)

	r := a.do(t, Request{Method: "GET", URL: "/auth/providers"})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"name":"mock","display_name":"Mock IdP","start_url":"http://tollgate.test/auth/oauth/mock/start"`),
		"providers: %d %s", r.Status, r.Body)

	// A first sign-in makes a verified account, in the default
	// organization (ORG_SIGNUP=join-default), without a password.
	who := googleUser(randomName("new-")+"@example.com", true)
	r = a.oidcSignIn(t, m, who)
	mustf(t, r.Status == 200, "token: %d %s", r.Status, r.Body)
	me := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + field(t, r, "access_token")}})
	mustf(t, me.Status == 200 && strings.Contains(me.Body, `"email":"`+who.Email+`"`) && strings.Contains(me.Body, `"email_verified":true`) &&
		strings.Contains(me.Body, `"role":"viewer"`), "me: %d %s", me.Status, me.Body)
	id := field(t, me, "id")
	mustf(t, identities(t, a, id) == 1, "one identity")

	// The same subject again is the same account, whatever address it now
	// gives.
	again := *who
	again.Email = randomName("renamed-") + "@example.com"
	r = a.oidcSignIn(t, m, &again)
	mustf(t, r.Status == 200 && field(t, r, "access_token") != "", "again: %d %s", r.Status, r.Body)
	mustf(t, strings.Contains(r.Body, `"id":"`+id+`"`), "again, another account: %s", r.Body)
	mustf(t, identities(t, a, id) == 1, "still one identity")

	// No password was set: none logs in, after the same bcrypt work as a
	// wrong one (timing does not tell such accounts apart).
	before := hashesAt(t, a, a.Config.BcryptCost)
	r = a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": who.Email, "password": "Any-Password-9"}})
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_credentials"), "a password for a password-less account: %d %s", r.Status, r.Body)
	mustf(t, hashesAt(t, a, a.Config.BcryptCost) == before+1, "no bcrypt comparison for a password-less account")
}

func TestProviderSignInLinking(t *testing.T) {
	parallelTest(t)
	m, env := provider(t)

	t.Run("a verified account is linked by a verified address", func(t *testing.T) {
		a := newApp(t, env...)
		u := a.user(t, "editor", "free")
		r := a.oidcSignIn(t, m, googleUser(u.Email, true))
		mustf(t, r.Status == 200 && strings.Contains(r.Body, `"id":"`+u.ID+`"`), "linked: %d %s", r.Status, r.Body)
		mustf(t, identities(t, a, u.ID) == 1, "identity")
		a.login(t, u) // the password still works
	})
	t.Run("an account's second factor still applies", func(t *testing.T) {
		a := newApp(t, env...)
		u, secret, _ := enrolled(t, a)
		r := a.oidcSignIn(t, m, googleUser(u.Email, true))
		mustf(t, r.Status == 200 && strings.Contains(r.Body, `"mfa_required":true`) && !strings.Contains(r.Body, "access_token"), "token: %d %s", r.Status, r.Body)
		r = a.do(t, Request{Method: "POST", URL: "/auth/mfa/verify", Body: map[string]string{"mfa_token": field(t, r, "mfa_token"), "code": code(t, a, secret)}})
		mustf(t, r.Status == 200 && field(t, r, "access_token") != "", "second step: %d %s", r.Status, r.Body)
	})
	t.Run("an unverified address never reaches an account", func(t *testing.T) {
		a := newApp(t, env...)
		u := a.user(t, "editor", "free")
		m.QueueUser(googleUser(u.Email, false))
		s := &signIn{cookie: true}
		a.startSignIn(t, s)
		r := a.finishSignIn(t, s)
		mustf(t, r.Status == 302 && s.location.Query().Get("error") == "identity_link_required" && s.location.Query().Get("code") == "",
			"callback: %d %v", r.Status, s.location)
		mustf(t, identities(t, a, u.ID) == 0, "linked by an unverified address")
	})
	t.Run("nor makes one", func(t *testing.T) {
		a := newApp(t, env...)
		email := randomName("nobody-") + "@example.com"
		m.QueueUser(googleUser(email, false))
		s := &signIn{cookie: true}
		a.startSignIn(t, s)
		r := a.finishSignIn(t, s)
		mustf(t, r.Status == 302 && s.location.Query().Get("error") == "provider_email_unverified", "callback: %d %v", r.Status, s.location)
		var n int64
		a.DB.Model(&models.User{}).Where("email = ?", email).Count(&n)
		mustf(t, n == 0, "an account made for an unverified address")
	})
	// Pre-account takeover: someone registers the victim's address with a
	// password of theirs and waits. When the victim signs in with the
	// provider (which vouches for the address), the account is theirs and
	// the squatter's password is gone.
	t.Run("a squatted, unverified account is claimed, its password removed", func(t *testing.T) {
		a := newApp(t, env...)
		victim := randomName("victim-") + "@example.com"
		r := a.do(t, Request{Method: "POST", URL: "/auth/register", Body: map[string]string{"email": victim, "password": "Squatters-Pass-9"}})
		mustf(t, r.Status == 202, "register: %d %s", r.Status, r.Body)
		r = a.oidcSignIn(t, m, googleUser(victim, true))
		mustf(t, r.Status == 200, "the victim signs in: %d %s", r.Status, r.Body)
		r = a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": victim, "password": "Squatters-Pass-9"}})
		mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_credentials"), "the squatter's password: %d %s", r.Status, r.Body)
		// Nor does the squatter's verification link (mailed to the victim,
		// but still) do anything.
		var live int64
		a.DB.Model(&models.EmailVerificationToken{}).Where("used_at IS NULL AND user_id = (SELECT id FROM users WHERE email = ?)", victim).Count(&live)
		mustf(t, live == 0, "%d live verification links", live)
	})
}

func TestProviderSignInAttacks(t *testing.T) {
	parallelTest(t)
	m, env := provider(t)
	a := newApp(t, env...)
	refused := func(t *testing.T, r *Response, code string) {
		t.Helper()
		mustf(t, r.Status == 400 && strings.Contains(r.Body, `"code":"`+code+`"`), "want 400 %s: %d %s", code, r.Status, r.Body)
	}
	t.Run("a redirect_uri not allowlisted", func(t *testing.T) {
		for _, bad := range []string{"https://evil.test/auth/done", frontEnd + "/../x", frontEnd + "?x=1", "//evil.test"} {
			r := a.do(t, Request{Method: "GET", URL: "/auth/oauth/mock/start?redirect_uri=" + url.QueryEscape(bad)})
			refused(t, r, "redirect_uri_not_allowed")
		}
	})
	t.Run("an unknown provider", func(t *testing.T) {
		r := a.do(t, Request{Method: "GET", URL: "/auth/oauth/nope/start?redirect_uri=" + url.QueryEscape(frontEnd)})
		mustf(t, r.Status == 404 && strings.Contains(r.Body, "provider_not_found"), "%d %s", r.Status, r.Body)
	})
	t.Run("state missing", func(t *testing.T) {
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true, tamper: func(q url.Values) { q.Del("state") }}
		a.startSignIn(t, s)
		refused(t, a.finishSignIn(t, s), "oauth_state_invalid")
	})
	t.Run("state made up", func(t *testing.T) {
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true, tamper: func(q url.Values) { q.Set("state", strings.Repeat("a", 64)) }}
		a.startSignIn(t, s)
		refused(t, a.finishSignIn(t, s), "oauth_state_invalid")
	})
	t.Run("state from another browser", func(t *testing.T) {
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: false} // a victim's browser sent the attacker's callback URL
		a.startSignIn(t, s)
		refused(t, a.finishSignIn(t, s), "oauth_state_invalid")
	})
	t.Run("state reused", func(t *testing.T) {
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true}
		a.startSignIn(t, s)
		mustf(t, a.finishSignIn(t, s).Status == 302, "first callback")
		refused(t, a.finishSignIn(t, s), "oauth_state_invalid")
	})
	t.Run("state expired", func(t *testing.T) {
		b := newApp(t, env...)
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true}
		b.startSignIn(t, s)
		b.Clock.Advance(11 * time.Minute)
		refused(t, b.finishSignIn(t, s), "oauth_state_invalid")
	})
	t.Run("the provider answered an error", func(t *testing.T) {
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true, tamper: func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") }}
		a.startSignIn(t, s)
		r := a.finishSignIn(t, s)
		mustf(t, r.Status == 302 && s.location.Query().Get("error") == "provider_error", "%d %v", r.Status, s.location)
	})
	t.Run("a code the provider never issued", func(t *testing.T) {
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true, tamper: func(q url.Values) { q.Set("code", "forged") }}
		a.startSignIn(t, s)
		r := a.finishSignIn(t, s)
		mustf(t, r.Status == 302 && s.location.Query().Get("error") == "code_exchange_failed", "%d %v", r.Status, s.location)
	})
	t.Run("an expired ID token", func(t *testing.T) {
		late, lenv := provider(t)
		late.FastForward(-time.Hour) // it signs tokens that ran out before now
		b := newApp(t, lenv...)
		late.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true}
		b.startSignIn(t, s)
		r := b.finishSignIn(t, s)
		mustf(t, r.Status == 302 && s.location.Query().Get("error") == "id_token_invalid", "%d %v", r.Status, s.location)
	})
	t.Run("the one-time code replayed", func(t *testing.T) {
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true}
		a.startSignIn(t, s)
		a.finishSignIn(t, s)
		body := map[string]string{"code": s.location.Query().Get("code")}
		mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: body}).Status == 200, "first exchange")
		refused(t, a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: body}), "oauth_code_invalid")
	})
	t.Run("the one-time code after its minute", func(t *testing.T) {
		b := newApp(t, env...)
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true}
		b.startSignIn(t, s)
		b.finishSignIn(t, s)
		b.Clock.Advance(61 * time.Second)
		refused(t, b.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": s.location.Query().Get("code")}}), "oauth_code_invalid")
	})
	t.Run("a mobile app's code needs its verifier", func(t *testing.T) {
		verifier := strings.Repeat("v", 50)
		sum := sha256.Sum256([]byte(verifier))
		challenge := base64.RawURLEncoding.EncodeToString(sum[:])
		code := func() string {
			m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
			s := &signIn{cookie: true, start: "redirect_uri=" + url.QueryEscape("com.example.app://auth") + "&code_challenge=" + challenge}
			a.startSignIn(t, s)
			r := a.finishSignIn(t, s)
			mustf(t, r.Status == 302 && s.location.Scheme == "com.example.app", "%d %v", r.Status, s.location)
			return s.location.Query().Get("code")
		}
		refused(t, a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": code()}}), "oauth_code_invalid")
		refused(t, a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": code(), "code_verifier": "wrong"}}), "oauth_code_invalid")
		r := a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": code(), "code_verifier": verifier}})
		mustf(t, r.Status == 200 && field(t, r, "access_token") != "", "with its verifier: %d %s", r.Status, r.Body)
		r = a.do(t, Request{Method: "GET", URL: "/auth/oauth/mock/start?redirect_uri=" + url.QueryEscape(frontEnd) + "&code_challenge=short"})
		refused(t, r, "invalid_code_challenge")
	})
	t.Run("no token ever in a URL", func(t *testing.T) {
		m.QueueUser(googleUser(randomName("a-")+"@example.com", true))
		s := &signIn{cookie: true}
		a.startSignIn(t, s)
		a.finishSignIn(t, s)
		q := s.location.Query()
		mustf(t, len(q) == 1 && q.Get("code") != "" && !strings.Contains(s.location.String(), "eyJ"), "front end URL %s", s.location)
	})
}

// Without providers configured, the list is empty and a start is 404.
func TestNoProviders(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "DEV_ROUTES", "false")
	r := a.do(t, Request{Method: "GET", URL: "/auth/providers"})
	mustf(t, r.Status == 200 && r.Body == `{"data":[]}`+"\n", "providers: %d %q", r.Status, r.Body)
	r = a.do(t, Request{Method: "GET", URL: "/auth/oauth/google/start?redirect_uri=x"})
	mustf(t, r.Status == 404, "start: %d %s", r.Status, r.Body)
}

// fakeIdP is an OpenID Connect provider of the test's own making, for the
// ID tokens mockoidc will not sign: another audience or issuer, expired,
// unsigned, signed by a key it does not publish, another nonce. Untampered,
// it signs in like any provider (the baseline that makes its refusals
// mean something).
type fakeIdP struct {
	srv       *httptest.Server
	clock     func() time.Time
	published *rsa.PrivateKey // in its JWKS
	signer    *rsa.PrivateKey // what it signs with (published, unless a test says otherwise)
	none      bool            // alg none: no signature at all
	tamper    func(claims jwt.MapClaims)
	email     string
	mu        sync.Mutex
	nonces    map[string]string // code -> the nonce its authorization asked for
}

var idpKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

func newFakeIdP(t *testing.T, clock func() time.Time) (*fakeIdP, []string) {
	t.Helper()
	published, _ := idpKeys()
	p := &fakeIdP{clock: clock, published: published, signer: published, nonces: map[string]string{}}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize",
			"token_endpoint": p.srv.URL + "/token", "jwks_uri": p.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64(p.published.N.Bytes()), "e": b64(big.NewInt(int64(p.published.E)).Bytes())}}})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		code := randomName("code-")
		p.mu.Lock()
		p.nonces[code] = r.URL.Query().Get("nonce")
		p.mu.Unlock()
		back, _ := url.Parse(r.URL.Query().Get("redirect_uri"))
		q := back.Query()
		q.Set("code", code)
		q.Set("state", r.URL.Query().Get("state"))
		back.RawQuery = q.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		p.mu.Lock()
		nonce, ok := p.nonces[r.Form.Get("code")]
		delete(p.nonces, r.Form.Get("code"))
		p.mu.Unlock()
		if !ok || r.Form.Get("code_verifier") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := p.clock()
		claims := jwt.MapClaims{"iss": p.srv.URL, "sub": "fake-" + p.email, "aud": "fake-client", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
			"nonce": nonce, "email": p.email, "email_verified": true}
		if p.tamper != nil {
			p.tamper(claims)
		}
		var idToken string
		if p.none {
			idToken, _ = jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
		} else {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
			tok.Header["kid"] = "k1"
			idToken, _ = tok.SignedString(p.signer)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 600, "id_token": idToken})
	})
	raw, _ := json.Marshal([]map[string]string{{"name": "mock", "issuer": p.srv.URL, "client_id": "fake-client", "client_secret": "fake-secret"}})
	file := filepath.Join(t.TempDir(), "oidc-providers.json")
	mustf(t, os.WriteFile(file, raw, 0o600) == nil, "write providers")
	return p, []string{"OIDC_PROVIDERS_FILE", file, "OAUTH_REDIRECT_URIS", frontEnd}
}

func TestProviderIDTokensThatMustNotPass(t *testing.T) {
	parallelTest(t)
	_, other := idpKeys()
	for _, c := range []struct {
		name  string
		setup func(p *fakeIdP)
		want  string // the front end's ?error=, "" for a code
	}{
		{"untampered, it signs in", func(*fakeIdP) {}, ""},
		{"another audience", func(p *fakeIdP) { p.tamper = func(c jwt.MapClaims) { c["aud"] = "another-client" } }, "id_token_invalid"},
		{"another issuer", func(p *fakeIdP) { p.tamper = func(c jwt.MapClaims) { c["iss"] = "https://evil.test" } }, "id_token_invalid"},
		{"expired", func(p *fakeIdP) {
			p.tamper = func(c jwt.MapClaims) { c["exp"] = p.clock().Add(-time.Minute).Unix() }
		}, "id_token_invalid"},
		{"another nonce", func(p *fakeIdP) { p.tamper = func(c jwt.MapClaims) { c["nonce"] = "replayed-from-elsewhere" } }, "id_token_invalid"},
		{"no nonce", func(p *fakeIdP) { p.tamper = func(c jwt.MapClaims) { delete(c, "nonce") } }, "id_token_invalid"},
		{"unsigned (alg none)", func(p *fakeIdP) { p.none = true }, "id_token_invalid"},
		{"signed by a key it does not publish", func(p *fakeIdP) { p.signer = other }, "id_token_invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			parallelTest(t)
			var a *App
			p, env := newFakeIdP(t, func() time.Time { return a.Clock.Now() })
			a = newApp(t, env...)
			p.email = randomName("fake-") + "@example.com"
			c.setup(p)
			s := &signIn{cookie: true}
			a.startSignIn(t, s)
			r := a.finishSignIn(t, s)
			mustf(t, r.Status == http.StatusFound, "callback: %d %s", r.Status, r.Body)
			if c.want == "" {
				mustf(t, s.location.Query().Get("code") != "", "no code: %v", s.location)
				return
			}
			mustf(t, s.location.Query().Get("error") == c.want && s.location.Query().Get("code") == "", "sent to %v, want error=%s", s.location, c.want)
			var n int64
			a.DB.Model(&models.User{}).Where("email = ?", p.email).Count(&n)
			mustf(t, n == 0, "an account was made from a token that must not pass")
		})
	}
}

// Linked sign-ins in the cross-tenant matrix: another person's identity.
func init() {
	crossTenantIDs["/users/me/identities/{id}"] = func(t *testing.T, a *App, w *tenants) []map[string]string {
		id := models.Identity{ID: uuid.New(), UserID: uuid.MustParse(w.theirs.Admin.ID), Provider: "mock", Subject: randomName("their-sub-"),
			Email: w.theirs.Admin.Email, EmailVerified: true, CreatedAt: a.Clock.Now(), LastUsedAt: a.Clock.Now()}
		mustf(t, a.DB.Create(&id).Error == nil, "their identity")
		w.forbid(id.Subject)
		w.afterwards(func(t *testing.T) {
			var n int64
			mustf(t, a.DB.Model(&models.Identity{}).Where("id = ?", id.ID).Count(&n).Error == nil && n == 1, "their identity was unlinked")
		})
		return one("id", id.ID.String())
	}
	notAboutAnotherOrg["POST /users/me/identities"] = "the caller's own account (a link)"
	notAboutAnotherOrg["POST /users/me/identities/complete"] = "the caller's own account (a link's code names its user)"
}

func TestIdentities(t *testing.T) {
	parallelTest(t)
	m, env := provider(t)
	a := newApp(t, env...)
	u := a.user(t, "viewer", "free")
	r := a.oidcSignIn(t, m, googleUser(u.Email, true)) // linked to the password account
	mustf(t, r.Status == 200, "sign in: %d %s", r.Status, r.Body)
	list := a.do(t, Request{Method: "GET", URL: "/users/me/identities", Headers: bearer(u)})
	var ids []struct{ ID, Provider, Email string }
	list.JSON(t, &ids)
	mustf(t, list.Status == 200 && len(ids) == 1 && ids[0].Provider == "mock" && ids[0].Email == u.Email, "list: %d %s", list.Status, list.Body)
	// A key cannot see or change how its owner signs in.
	k, _ := a.makeKey(t, u, readKey)
	r = a.do(t, Request{Method: "GET", URL: "/users/me/identities", Headers: keyHeader(k)})
	mustf(t, r.Status == 403 && strings.Contains(r.Body, "user_token_required"), "a key: %d %s", r.Status, r.Body)
	// With a password, the identity may go.
	r = a.do(t, Request{Method: "DELETE", URL: "/users/me/identities/" + ids[0].ID, Headers: bearer(u)})
	mustf(t, r.Status == 204, "unlink: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "DELETE", URL: "/users/me/identities/" + ids[0].ID, Headers: bearer(u)})
	mustf(t, r.Status == 404 && strings.Contains(r.Body, "identity_not_found"), "again: %d %s", r.Status, r.Body)

	// An account made by a provider has no password: its only identity
	// is the last way in, and stays.
	r = a.oidcSignIn(t, m, googleUser(randomName("only-")+"@example.com", true))
	mustf(t, r.Status == 200, "sign in: %d %s", r.Status, r.Body)
	only := map[string]string{"Authorization": "Bearer " + field(t, r, "access_token")}
	list = a.do(t, Request{Method: "GET", URL: "/users/me/identities", Headers: only})
	list.JSON(t, &ids)
	mustf(t, len(ids) == 1, "list: %s", list.Body)
	r = a.do(t, Request{Method: "DELETE", URL: "/users/me/identities/" + ids[0].ID, Headers: only})
	mustf(t, r.Status == 409 && strings.Contains(r.Body, "last_sign_in_method"), "unlink the last way in: %d %s", r.Status, r.Body)
}

// The development provider (DEV_ROUTES): listed, and a sign-in as any
// address ends at /dev/signed-in with a code that gives a pair, with no
// network and no provider configured.
func TestDevelopmentProvider(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	r := a.do(t, Request{Method: "GET", URL: "/auth/providers"})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"name":"dev","display_name":"Development sign-in (DEV_ROUTES, never in production)"`), "providers: %s", r.Body)
	email := randomName("dev-") + "@example.com"
	start := "/auth/oauth/dev/start?redirect_uri=" + url.QueryEscape("http://tollgate.test/dev/signed-in")
	r = a.do(t, Request{Method: "GET", URL: start + "&login_hint=" + url.QueryEscape(email), RemoteAddr: "127.0.0.1:5555"})
	mustf(t, r.Status == 302, "start: %d %s", r.Status, r.Body)
	cookie, _, _ := strings.Cut(r.Header.Get("Set-Cookie"), ";")
	authorize, _ := url.Parse(r.Header.Get("Location"))
	mustf(t, authorize.Path == "/dev/oidc/authorize" && authorize.Query().Get("login_hint") == email, "to %s", authorize)
	// A browser on this machine; from elsewhere the provider is not there.
	r = a.do(t, Request{Method: "GET", URL: authorize.RequestURI(), RemoteAddr: "203.0.113.9:5555"})
	mustf(t, r.Status == 404 || r.Status == 403, "from the network: %d", r.Status)
	r = a.do(t, Request{Method: "GET", URL: authorize.RequestURI(), RemoteAddr: "127.0.0.1:5555"})
	mustf(t, r.Status == 302, "authorize: %d %s", r.Status, r.Body)
	back, _ := url.Parse(r.Header.Get("Location"))
	r = a.do(t, Request{Method: "GET", URL: back.RequestURI(), Headers: map[string]string{"Cookie": cookie}, RemoteAddr: "127.0.0.1:5555"})
	mustf(t, r.Status == 302, "callback: %d %s", r.Status, r.Body)
	done, _ := url.Parse(r.Header.Get("Location"))
	r = a.do(t, Request{Method: "GET", URL: done.RequestURI(), RemoteAddr: "127.0.0.1:5555"})
	mustf(t, r.Status == 200 && field(t, r, "code") != "", "signed-in page: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": field(t, r, "code")}})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"email":"`+email+`"`), "token: %d %s", r.Status, r.Body)
	// Without a login_hint it asks, on a small page.
	r = a.do(t, Request{Method: "GET", URL: start, RemoteAddr: "127.0.0.1:5555"})
	authorize, _ = url.Parse(r.Header.Get("Location"))
	r = a.do(t, Request{Method: "GET", URL: authorize.RequestURI(), RemoteAddr: "127.0.0.1:5555"})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `name="login_hint"`) && strings.Contains(r.Body, "never runs in production"), "form: %d %s", r.Status, r.Body)
}

// fakeGitHub is a GitHub Enterprise Server of the test's making: OAuth 2.0
// with PKCE, then /api/v3/user and /api/v3/user/emails for the token.
func fakeGitHub(t *testing.T, id int64, emails string) []string {
	t.Helper()
	var mu sync.Mutex
	challenges := map[string]string{}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("/login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		code := randomName("gh-")
		mu.Lock()
		challenges[code] = r.URL.Query().Get("code_challenge")
		mu.Unlock()
		back, _ := url.Parse(r.URL.Query().Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {code}, "state": {r.URL.Query().Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("/login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		want, ok := challenges[r.Form.Get("code")]
		delete(challenges, r.Form.Get("code"))
		mu.Unlock()
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		if !ok || r.Form.Get("client_secret") != "gh-secret" || base64.RawURLEncoding.EncodeToString(sum[:]) != want {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"gho_test","token_type":"bearer","scope":"read:user,user:email"}`))
	})
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer gho_test" {
			w.WriteHeader(http.StatusUnauthorized)
			return false
		}
		return true
	}
	mux.HandleFunc("/api/v3/user", func(w http.ResponseWriter, r *http.Request) {
		if authorized(w, r) {
			_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "login": "octocat"})
		}
	})
	mux.HandleFunc("/api/v3/user/emails", func(w http.ResponseWriter, r *http.Request) {
		if authorized(w, r) {
			_, _ = w.Write([]byte(emails))
		}
	})
	raw, _ := json.Marshal([]map[string]string{{"name": "github", "type": "github", "issuer": srv.URL, "client_id": "gh-client", "client_secret": "gh-secret"}})
	file := filepath.Join(t.TempDir(), "oidc-providers.json")
	mustf(t, os.WriteFile(file, raw, 0o600) == nil, "write providers")
	return []string{"OIDC_PROVIDERS_FILE", file, "OAUTH_REDIRECT_URIS", frontEnd}
}

func TestGitHubSignIn(t *testing.T) {
	parallelTest(t)
	run := func(t *testing.T, a *App) *signIn {
		r := a.do(t, Request{Method: "GET", URL: "/auth/oauth/github/start?redirect_uri=" + url.QueryEscape(frontEnd)})
		mustf(t, r.Status == 302, "start: %d %s", r.Status, r.Body)
		s := &signIn{cookie: true}
		s.cookies, _, _ = strings.Cut(r.Header.Get("Set-Cookie"), ";")
		resp, err := noFollow.Get(r.Header.Get("Location"))
		mustf(t, err == nil && resp.StatusCode == 302, "github: %v", err)
		_ = resp.Body.Close()
		back, _ := url.Parse(resp.Header.Get("Location"))
		r = a.do(t, Request{Method: "GET", URL: back.RequestURI(), Headers: map[string]string{"Cookie": s.cookies}})
		mustf(t, r.Status == 302, "callback: %d %s", r.Status, r.Body)
		s.location, _ = url.Parse(r.Header.Get("Location"))
		return s
	}
	t.Run("the verified primary address signs in, by GitHub's numeric id", func(t *testing.T) {
		parallelTest(t)
		email := randomName("octo-") + "@example.com"
		a := newApp(t, fakeGitHub(t, 4242, `[{"email":"other@example.com","primary":false,"verified":true},{"email":"`+email+`","primary":true,"verified":true}]`)...)
		s := run(t, a)
		r := a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": s.location.Query().Get("code")}})
		mustf(t, r.Status == 200 && strings.Contains(r.Body, `"email":"`+email+`"`), "token: %d %s", r.Status, r.Body)
		var id models.Identity
		mustf(t, a.DB.Where("provider = ? AND subject = ?", "github", "4242").Take(&id).Error == nil, "identity by GitHub's id")
	})
	t.Run("an unverified primary address does not", func(t *testing.T) {
		parallelTest(t)
		a := newApp(t, fakeGitHub(t, 4343, `[{"email":"`+randomName("octo-")+`@example.com","primary":true,"verified":false}]`)...)
		s := run(t, a)
		mustf(t, s.location.Query().Get("error") == "provider_email_unverified", "sent to %v", s.location)
	})
}

// linkCode starts linking the mock provider to u (its login and a PKCE
// challenge), goes through the provider as who, and returns the code the
// front end receives.
func (a *App) linkCode(t *testing.T, m *mockoidc.MockOIDC, u *User, who *mockoidc.MockUser, challenge string) string {
	t.Helper()
	r := a.do(t, Request{Method: "POST", URL: "/users/me/identities", Headers: bearer(u),
		Body: map[string]string{"provider": "mock", "redirect_uri": frontEnd, "code_challenge": challenge}})
	mustf(t, r.Status == 200, "start link: %d %s", r.Status, r.Body)
	m.QueueUser(who)
	resp, err := noFollow.Get(field(t, r, "auth_url"))
	mustf(t, err == nil && resp.StatusCode == 302, "provider: %v", err)
	_ = resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	r = a.do(t, Request{Method: "GET", URL: back.RequestURI()}) // no cookie: a link is bound to the login and the verifier instead
	mustf(t, r.Status == 302, "callback: %d %s", r.Status, r.Body)
	done, _ := url.Parse(r.Header.Get("Location"))
	mustf(t, done.Query().Get("code") != "", "sent to %v", done)
	return done.Query().Get("code")
}

func pkce(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestLinkingAProvider(t *testing.T) {
	parallelTest(t)
	m, env := provider(t)
	verifier := strings.Repeat("k", 48)
	complete := func(a *App, u *User, code, verifier string) *Response {
		return a.do(t, Request{Method: "POST", URL: "/users/me/identities/complete", Headers: bearer(u), Body: map[string]string{"code": code, "code_verifier": verifier}})
	}
	t.Run("any address, once both sides are proven; then it signs in", func(t *testing.T) {
		a := newApp(t, env...)
		u := a.user(t, "viewer", "free")
		who := googleUser(randomName("elsewhere-")+"@example.com", false) // not the account's address, not even verified
		r := complete(a, u, a.linkCode(t, m, u, who, pkce(verifier)), verifier)
		mustf(t, r.Status == 201 && strings.Contains(r.Body, `"provider":"mock"`), "complete: %d %s", r.Status, r.Body)
		r = a.oidcSignIn(t, m, who)
		mustf(t, r.Status == 200 && strings.Contains(r.Body, `"id":"`+u.ID+`"`), "sign in with the linked provider: %d %s", r.Status, r.Body)
	})
	t.Run("a login older than ten minutes must log in again", func(t *testing.T) {
		a := newApp(t, env...)
		u := a.user(t, "viewer", "free")
		a.Clock.Advance(11 * time.Minute)
		r := a.do(t, Request{Method: "POST", URL: "/users/me/identities", Headers: bearer(u),
			Body: map[string]string{"provider": "mock", "redirect_uri": frontEnd, "code_challenge": pkce(verifier)}})
		mustf(t, r.Status == 403 && strings.Contains(r.Body, "reauthentication_required"), "stale: %d %s", r.Status, r.Body)
	})
	t.Run("without a challenge", func(t *testing.T) {
		a := newApp(t, env...)
		u := a.user(t, "viewer", "free")
		r := a.do(t, Request{Method: "POST", URL: "/users/me/identities", Headers: bearer(u), Body: map[string]string{"provider": "mock", "redirect_uri": frontEnd}})
		mustf(t, r.Status == 400, "no challenge: %d %s", r.Status, r.Body)
	})
	t.Run("another person's link code is refused", func(t *testing.T) {
		a := newApp(t, env...)
		attacker, victim := a.user(t, "viewer", "free"), a.user(t, "viewer", "free")
		// The attacker links their own provider account, and makes the
		// victim's front end finish it (a crafted URL): it must not attach
		// the attacker's way in to the victim's account.
		code := a.linkCode(t, m, attacker, googleUser(randomName("attacker-")+"@example.com", true), pkce(verifier))
		r := complete(a, victim, code, verifier)
		mustf(t, r.Status == 400 && strings.Contains(r.Body, "oauth_code_invalid"), "the victim completed it: %d %s", r.Status, r.Body)
		mustf(t, identities(t, a, victim.ID) == 0 && identities(t, a, attacker.ID) == 0, "linked")
	})
	t.Run("the wrong verifier, a replay, and the sign-in endpoint refuse a link code", func(t *testing.T) {
		a := newApp(t, env...)
		u := a.user(t, "viewer", "free")
		code := a.linkCode(t, m, u, googleUser(randomName("w-")+"@example.com", true), pkce(verifier))
		r := a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": code, "code_verifier": verifier}})
		mustf(t, r.Status == 400 && strings.Contains(r.Body, "oauth_code_invalid"), "a link code signed in: %d %s", r.Status, r.Body)
		mustf(t, complete(a, u, code, verifier).Status == 201, "the link itself still works once")
		mustf(t, complete(a, u, code, verifier).Status == 400, "replayed")
		code = a.linkCode(t, m, u, googleUser(randomName("w-")+"@example.com", true), pkce(verifier))
		mustf(t, complete(a, u, code, "wrong").Status == 400, "a wrong verifier")
	})
	t.Run("a provider account linked to someone else", func(t *testing.T) {
		a := newApp(t, env...)
		owner, other := a.user(t, "viewer", "free"), a.user(t, "viewer", "free")
		who := googleUser(randomName("taken-")+"@example.com", true)
		mustf(t, complete(a, owner, a.linkCode(t, m, owner, who, pkce(verifier)), verifier).Status == 201, "first link")
		r := complete(a, other, a.linkCode(t, m, other, who, pkce(verifier)), verifier)
		mustf(t, r.Status == 409 && strings.Contains(r.Body, "identity_in_use"), "second link: %d %s", r.Status, r.Body)
	})
}

// Attribute mapping: a first sign-in takes the name and picture the ID
// token gives (a picture only as https), and email_verified sent as the
// string "true" (as some providers do) counts as verified.
func TestProviderProfileClaims(t *testing.T) {
	parallelTest(t)
	for _, c := range []struct{ name, picture, wantPicture string }{
		{"Lena Berg", "https://cdn.example.com/lena.png", `"picture_url":"https://cdn.example.com/lena.png"`},
		{"Lena Berg", "javascript:alert(1)", ``},
	} {
		var a *App
		p, env := newFakeIdP(t, func() time.Time { return a.Clock.Now() })
		a = newApp(t, env...)
		p.email = randomName("profile-") + "@example.com"
		p.tamper = func(m jwt.MapClaims) { m["name"], m["picture"], m["email_verified"] = c.name, c.picture, "true" }
		s := &signIn{cookie: true}
		a.startSignIn(t, s)
		a.finishSignIn(t, s)
		tok := a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": s.location.Query().Get("code")}})
		mustf(t, tok.Status == http.StatusOK, "token: %d %s (%v)", tok.Status, tok.Body, s.location)
		me := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + field(t, tok, "access_token")}})
		mustf(t, strings.Contains(me.Body, `"name":"Lena Berg"`) && strings.Contains(me.Body, `"email_verified":true`), "me: %s", me.Body)
		if c.wantPicture == "" {
			mustf(t, !strings.Contains(me.Body, "picture_url"), "a picture that is not https was kept: %s", me.Body)
		} else {
			mustf(t, strings.Contains(me.Body, c.wantPicture), "me: %s", me.Body)
		}
	}
}

// What a provider claims reaches PostgreSQL, which refuses NUL (JSON
// carries it as \u0000): a subject that is not plain text is refused, an
// address that is not one counts as none, a name is cleaned; never a 500.
func TestProviderClaimsWithNUL(t *testing.T) {
	parallelTest(t)
	for _, c := range []struct {
		name   string
		tamper func(m jwt.MapClaims)
		want   string // ?error=, "" for a code
	}{
		{"a subject with NUL", func(m jwt.MapClaims) { m["sub"] = "sub\x00ject" }, "id_token_invalid"},
		{"an address with NUL", func(m jwt.MapClaims) { m["email"] = "le\x00na@example.com" }, "provider_email_unverified"},
		{"a name with NUL", func(m jwt.MapClaims) { m["name"] = "Le\x00na" }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			parallelTest(t)
			var a *App
			p, env := newFakeIdP(t, func() time.Time { return a.Clock.Now() })
			a = newApp(t, env...)
			p.email = randomName("nul-") + "@example.com"
			p.tamper = c.tamper
			s := &signIn{cookie: true}
			a.startSignIn(t, s)
			r := a.finishSignIn(t, s)
			mustf(t, r.Status == http.StatusFound, "callback: %d %s", r.Status, r.Body)
			mustf(t, s.location.Query().Get("error") == c.want, "sent to %v, want error=%q", s.location, c.want)
			if c.want == "" {
				tok := a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": s.location.Query().Get("code")}})
				me := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + field(t, tok, "access_token")}})
				mustf(t, strings.Contains(me.Body, `"name":"Lena"`), "me: %s", me.Body)
			}
		})
	}
}
