// Package devidp is a development OpenID Connect provider, served by the
// app itself under /dev/oidc when DEV_ROUTES is on (never in production),
// so that sign-in with a provider can be tried after `go run .` and driven
// by scripts and a headless browser: it signs in as whatever address it is
// given (login_hint, or a one-field form), vouching for it. It checks what
// a real provider checks (client, exact callback, PKCE S256, single-use
// codes) and signs ID tokens (ES256) with a key made at start-up.
package devidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Prefix is where the provider is mounted.
const Prefix = "/dev/oidc"

// Config says who the provider is and whom it serves.
type Config struct {
	Issuer   string // the app's base URL + Prefix
	Callback string // the one redirect_uri it accepts
	Now      func() time.Time
}

// Provider is the development provider: an http.Handler for Prefix.
type Provider struct {
	cfg          Config
	key          *ecdsa.PrivateKey
	ClientID     string
	ClientSecret string

	mu    sync.Mutex
	codes map[string]grant
}

type grant struct {
	email, nonce, challenge string
	expires                 time.Time
}

// New makes a provider with a fresh key and client secret.
func New(cfg Config) (*Provider, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, key: key, ClientID: "tollgate-dev", ClientSecret: hex.EncodeToString(secret), codes: map[string]grant{}}, nil
}

// Client is an HTTP client that reaches the provider without a network
// (the app's own discovery, JWKS and code exchange calls).
func (p *Provider) Client() *http.Client {
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w.Result(), nil
	})}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, Prefix) {
	case "/.well-known/openid-configuration":
		writeJSON(w, http.StatusOK, map[string]any{"issuer": p.cfg.Issuer, "authorization_endpoint": p.cfg.Issuer + "/authorize",
			"token_endpoint": p.cfg.Issuer + "/token", "jwks_uri": p.cfg.Issuer + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"},
			"code_challenge_methods_supported": []string{"S256"}})
	case "/jwks":
		b64 := base64.RawURLEncoding.EncodeToString
		x, y := make([]byte, 32), make([]byte, 32)
		p.key.X.FillBytes(x)
		p.key.Y.FillBytes(y)
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "dev", "use": "sig", "alg": "ES256",
			"x": b64(x), "y": b64(y)}}})
	case "/authorize":
		p.authorize(w, r)
	case "/token":
		p.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

var form = template.Must(template.New("form").Parse(`<!doctype html><meta charset="utf-8"><title>Development sign-in</title>
<h1>Development sign-in</h1><p>DEV_ROUTES is on: this provider signs in as any address you type. It never runs in production.</p>
<form method="get">{{range $k, $v := .}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<label>Email <input name="login_hint" type="email" required autofocus></label> <button>Sign in</button></form>`))

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("client_id") != p.ClientID:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client"})
		return
	case q.Get("redirect_uri") != p.cfg.Callback:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "redirect_uri is not this client's"})
		return
	case q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "response_type=code and PKCE S256 are required"})
		return
	}
	email := q.Get("login_hint")
	if _, err := mail.ParseAddress(email); err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		q.Del("login_hint")
		_ = form.Execute(w, q)
		return
	}
	code := make([]byte, 24)
	_, _ = rand.Read(code)
	c := hex.EncodeToString(code)
	p.mu.Lock()
	now := p.cfg.Now()
	for k, g := range p.codes {
		if now.After(g.expires) {
			delete(p.codes, k)
		}
	}
	p.codes[c] = grant{email: strings.ToLower(email), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), expires: now.Add(time.Minute)}
	p.mu.Unlock()
	back, _ := url.Parse(p.cfg.Callback)
	bq := back.Query()
	bq.Set("code", c)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id, _ = url.QueryUnescape(id); id != p.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.ClientSecret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	g, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code")) // single use, right or wrong
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	now := p.cfg.Now()
	if !ok || now.After(g.expires) || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != p.cfg.Callback ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": p.cfg.Issuer, "sub": "dev:" + g.email, "aud": p.ClientID,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": g.nonce, "email": g.email, "email_verified": true})
	tok.Header["kid"] = "dev"
	idToken, err := tok.SignedString(p.key)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": "dev", "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
