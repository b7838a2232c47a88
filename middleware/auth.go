// Package middleware holds Tollgate's own Echo middleware: bearer-token
// authentication, role checks, request logging and (in ratelimit.go) rate
// limits. Echo's stock middleware is used directly where it fits.
package middleware

import (
	"context"
	"net"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/browser"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/services"
)

// TokenVerifier checks an access token and returns its claims.
type TokenVerifier interface {
	Verify(raw string) (*services.Claims, error)
}

// KeyVerifier checks an API key presented from ip and returns its caller.
type KeyVerifier interface {
	Authenticate(ctx context.Context, raw string, ip net.IP) (*caller.Caller, error)
}

// ClientTokenVerifier checks an OAuth client's access token (typ at+jwt)
// and returns its caller.
type ClientTokenVerifier interface {
	VerifyToken(ctx context.Context, raw string) (*caller.Caller, error)
}

// AccountChecker says whether a user token's account still exists.
type AccountChecker interface {
	Live(ctx context.Context, id uuid.UUID) error
}

// CookieSessions resolve a session cookie to the access token it stands
// for, and check its CSRF token.
type CookieSessions interface {
	Access(ctx context.Context, raw string) (string, error)
	Forget(raw string)
	CSRFValid(session, token string) bool
}

// Auth carries what the auth middleware needs.
type Auth struct {
	tokens   TokenVerifier
	keys     KeyVerifier
	clients  ClientTokenVerifier
	accounts AccountChecker
	sessions CookieSessions // nil: no cookie sessions
	cookies  browser.Cookies
}

// NewAuth builds the auth middleware; accounts may be nil (no check).
func NewAuth(tokens TokenVerifier, keys KeyVerifier, clients ClientTokenVerifier, accounts AccountChecker) *Auth {
	return &Auth{tokens: tokens, keys: keys, clients: clients, accounts: accounts}
}

// WithCookies also accepts a browser's session cookie, as cookies names it.
func (a *Auth) WithCookies(sessions CookieSessions, cookies browser.Cookies) *Auth {
	a.sessions, a.cookies = sessions, cookies
	return a
}

// RequireAuth authenticates the request and puts the caller on its context
// (read it with caller.From). It accepts a user's access token or an OAuth
// client's (told apart by the JWT header's typ, at+jwt for clients) as
// `Authorization: Bearer <jwt>`, and an API key as `X-API-Key: <key>` or
// `Authorization: Bearer <key>` (the tg_ prefix tells a key from a JWT),
// and a browser's session cookie (never together with either): an unsafe
// cookie request must come from an allowed Origin and carry the CSRF token.
func (a *Auth) RequireAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		authz := req.Header.Get(echo.HeaderAuthorization)
		raw, ok := bearer(authz)
		key := req.Header.Get("X-API-Key")
		var who *caller.Caller
		session := ""
		if a.sessions != nil {
			session = a.cookies.Session(req)
		}
		switch {
		case session != "" && (authz != "" || key != ""):
			return browser.ErrAmbiguous
		case session != "":
			var err error
			if who, err = a.fromCookie(c, session); err != nil {
				return err
			}
		case key != "" || (ok && services.IsAPIKey(raw)):
			if key == "" {
				key = raw
			}
			var err error
			if who, err = a.keys.Authenticate(req.Context(), strings.TrimSpace(key), net.ParseIP(c.RealIP())); err != nil {
				return err
			}
		case ok:
			// A user token first: the common case, answered from the
			// verified-token cache without decoding the header. A client
			// token fails it cheaply (the typ check comes before RSA).
			claims, err := a.tokens.Verify(raw)
			switch {
			case err == nil:
				who = claims.Caller()
				// A token outliving its account (a row deleted by hand).
				if a.accounts != nil {
					if err := a.accounts.Live(req.Context(), who.ID); err != nil {
						return err
					}
				}
			case services.IsClientToken(raw):
				if who, err = a.clients.VerifyToken(req.Context(), raw); err != nil {
					return err
				}
			default:
				return err
			}
		default:
			return apperror.ErrAuthRequired
		}
		c.SetRequest(req.WithContext(caller.With(req.Context(), who)))
		return next(c)
	}
}

// fromCookie is the caller of a cookie request: the session's access
// token, minted afresh once if the one held was ended (a role change).
func (a *Auth) fromCookie(c *echo.Context, session string) (*caller.Caller, error) {
	req := c.Request()
	unsafe := browser.Unsafe(req.Method)
	if unsafe && !a.cookies.OriginAllowed(req) {
		return nil, browser.ErrOrigin
	}
	var claims *services.Claims
	for try := 0; ; try++ {
		tok, err := a.sessions.Access(req.Context(), session)
		if err != nil {
			return nil, err
		}
		if claims, err = a.tokens.Verify(tok); err == nil {
			break
		}
		a.sessions.Forget(session)
		if try > 0 {
			return nil, err
		}
	}
	if unsafe && !a.sessions.CSRFValid(claims.Sid, req.Header.Get(browser.CSRFHeader)) {
		return nil, browser.ErrCSRF
	}
	who := claims.Caller()
	if a.accounts != nil {
		if err := a.accounts.Live(req.Context(), who.ID); err != nil {
			return nil, err
		}
	}
	return who, nil
}

func bearer(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	token := strings.TrimSpace(header[len(prefix):])
	return token, token != ""
}

// Require lets the request through only when the caller holds scope and
// one of roles: the route's declaration of who may call it. A user is
// refused for its role (403 insufficient_permissions, as before scopes); an
// API key or OAuth client for its scope (403 insufficient_scope, with the
// RFC 6750 WWW-Authenticate naming the scope needed). A key's or client's
// scopes are a subset of what its owner's role allows now, so the role
// check can never be passed by a credential whose scope does not allow it.
// It must come after RequireAuth.
func Require(scope caller.Scope, roles ...caller.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			who, ok := caller.From(c.Request().Context())
			if !ok {
				return apperror.ErrAuthRequired
			}
			if who.Kind == caller.User && !who.Is(roles...) {
				return apperror.ErrForbidden
			}
			if !who.Has(scope) {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate,
					`Bearer error="insufficient_scope", error_description="The credential lacks the scope this route needs", scope="`+string(scope)+`"`)
				return ErrInsufficientScope
			}
			if !who.Is(roles...) {
				return apperror.ErrForbidden
			}
			return next(c)
		}
	}
}

// RequireRole lets a user through only when it holds one of roles, for
// routes no API key or client reaches (after UserOnly).
func RequireRole(roles ...caller.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			who, ok := caller.From(c.Request().Context())
			if !ok {
				return apperror.ErrAuthRequired
			}
			if !who.Is(roles...) {
				return apperror.ErrForbidden
			}
			return next(c)
		}
	}
}

// PlatformOnly lets only platform operators through (owners and admins of
// the default organization, or a credential of theirs acting in it): the
// routes over every organization's users, credentials and audit log. An
// organization's admin is not one. It must come after RequireAuth.
func PlatformOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		who, ok := caller.From(c.Request().Context())
		if !ok {
			return apperror.ErrAuthRequired
		}
		if !who.Platform {
			return errPlatformOnly
		}
		return next(c)
	}
}

var errPlatformOnly = apperror.Define(apperror.Forbidden, "platform_admin_required", "This route is for the platform's operators (admins of the default organization), not an organization's admins")

// ErrInsufficientScope: the credential lacks the route's scope.
var ErrInsufficientScope = apperror.Define(apperror.Forbidden, "insufficient_scope", "The credential lacks the scope this route needs")

// UserOnly refuses API keys and OAuth clients: managing credentials needs
// a person's login, so a leaked key cannot mint or keep itself.
func UserOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		who, ok := caller.From(c.Request().Context())
		if !ok {
			return apperror.ErrAuthRequired
		}
		if who.Kind != caller.User {
			return errUserOnly
		}
		return next(c)
	}
}

var errUserOnly = apperror.Define(apperror.Forbidden, "user_token_required", "This route needs a user's access token from POST /auth/login, not an API key or client token")

// LoopbackOnly lets a request through only when both the connection and
// the client (as trusted proxies report it) are on this machine.
func LoopbackOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		peer, _, err := net.SplitHostPort(c.Request().RemoteAddr)
		if err != nil {
			peer = c.Request().RemoteAddr
		}
		conn, client := net.ParseIP(peer), net.ParseIP(c.RealIP())
		if conn == nil || !conn.IsLoopback() || client == nil || !client.IsLoopback() {
			return errLoopbackOnly
		}
		return next(c)
	}
}

var errLoopbackOnly = apperror.Define(apperror.Forbidden, "loopback_only", "Development routes answer only clients on this machine")

// NoStore marks the answer, whatever it is, as not to be kept by any cache
// (RFC 9111; RFC 6749 5.1 for tokens): answers carrying tokens or personal
// data. Set before the handler, so errors and 429s carry it too.
func NoStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		return next(c)
	}
}
