// Package browser holds what a cookie session means over HTTP: the
// cookies' names and attributes, the CSRF header, and which origins may
// send credentialed requests. Bearer tokens never touch it.
package browser

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/product"
)

// CSRFHeader carries the CSRF token on every unsafe cookie request.
const CSRFHeader = "X-CSRF-Token"

// Errors of cookie requests.
var (
	ErrAmbiguous = apperror.Define(apperror.Invalid, "ambiguous_credentials",
		"Send a session cookie or a bearer token (or API key), not both")
	ErrOrigin = apperror.Define(apperror.Forbidden, "origin_not_allowed",
		"This origin may not send cookie-authenticated requests (CORS_ALLOWED_ORIGINS)")
	ErrCSRF = apperror.Define(apperror.Forbidden, "csrf_token_invalid",
		"Missing or wrong "+CSRFHeader+" header: send the value of the CSRF cookie")
)

// Cookies describes the session and CSRF cookies.
type Cookies struct {
	// Secure: served over https, so the cookies are Secure and carry the
	// __Host- prefix (host-only, Path=/, unsettable by a sibling
	// subdomain). Development over http://localhost gets plain names
	// without Secure, which every browser and HTTP client keeps.
	Secure bool
	// Origins may send cookie-authenticated unsafe requests besides the
	// API's own origin (CORS_ALLOWED_ORIGINS and APP_BASE_URL's).
	Origins []string
}

// New describes the cookies of an API served at baseURL that trusts
// origins.
func New(baseURL string, origins []string) Cookies {
	c := Cookies{Secure: strings.HasPrefix(baseURL, "https://"), Origins: slices.Clone(origins)}
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		c.Origins = append(c.Origins, u.Scheme+"://"+u.Host)
	}
	return c
}

func (c Cookies) name(base string) string {
	if c.Secure {
		return "__Host-" + product.ID + "_" + base
	}
	return product.ID + "_" + base
}

// SessionName is the session cookie's name.
func (c Cookies) SessionName() string { return c.name("session") }

// CSRFName is the CSRF cookie's name (readable by the page's JavaScript).
func (c Cookies) CSRFName() string { return c.name("csrf") }

// Session reads the session cookie ("" when the request has none).
func (c Cookies) Session(r *http.Request) string {
	if ck, err := r.Cookie(c.SessionName()); err == nil {
		return ck.Value
	}
	return ""
}

// Set writes the session cookie (HttpOnly) and the CSRF cookie (readable
// by scripts, for the double submit) for ttl.
func (c Cookies) Set(w http.ResponseWriter, session, csrf string, ttl time.Duration) {
	http.SetCookie(w, c.cookie(c.SessionName(), session, int(ttl.Seconds()), true))
	http.SetCookie(w, c.cookie(c.CSRFName(), csrf, int(ttl.Seconds()), false))
}

// Clear removes both cookies.
func (c Cookies) Clear(w http.ResponseWriter) {
	http.SetCookie(w, c.cookie(c.SessionName(), "", -1, true))
	http.SetCookie(w, c.cookie(c.CSRFName(), "", -1, false))
}

func (c Cookies) cookie(name, value string, maxAge int, httpOnly bool) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: httpOnly,
		Secure: c.Secure, SameSite: http.SameSiteLaxMode}
}

// Unsafe reports whether method may change state (and so needs the CSRF
// token and an allowed Origin).
func Unsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// OriginAllowed reports whether r comes from an origin that may send
// cookie-authenticated unsafe requests: one configured, or the API's own
// (the Origin's host is the Host the browser sent the cookie to). A
// request without Origin is refused: browsers send it on every unsafe
// request.
func (c Cookies) OriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return false
	}
	if slices.Contains(c.Origins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
