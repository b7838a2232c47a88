// Package middleware holds Tollgate's own Echo middleware: bearer-token
// authentication, role checks, request logging and (in ratelimit.go) rate
// limits. Echo's stock middleware is used directly where it fits.
package middleware

import (
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/services"
)

// TokenVerifier checks an access token and returns its claims.
type TokenVerifier interface {
	Verify(raw string) (*services.Claims, error)
}

// Auth carries what the auth middleware needs.
type Auth struct{ tokens TokenVerifier }

// NewAuth builds the auth middleware.
func NewAuth(tokens TokenVerifier) *Auth { return &Auth{tokens: tokens} }

// RequireAuth reads `Authorization: Bearer <token>`, verifies it and puts
// the caller on the request context (read it with caller.From).
func (a *Auth) RequireAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		raw, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			return apperror.ErrAuthRequired
		}
		claims, err := a.tokens.Verify(raw)
		if err != nil {
			return err
		}
		req := c.Request()
		c.SetRequest(req.WithContext(caller.With(req.Context(), claims.Caller())))
		return next(c)
	}
}

func bearer(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	token := strings.TrimSpace(header[len(prefix):])
	return token, token != ""
}

// RequireRole lets the request through only when the caller's role is one
// of roles. It must come after RequireAuth.
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
