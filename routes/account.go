package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// A person's own account security: password and sessions need the
// person's login (mw.UserOnly), never an API key or a client token.
func account(e *echo.Echo, h *handlers.Auth, g Guards) {
	e.POST("/users/me/password", h.ChangePassword, g.RequireAuth, g.User, mw.UserOnly)
	e.GET("/users/me/sessions", h.Sessions, g.RequireAuth, g.User, mw.UserOnly)
	e.DELETE("/users/me/sessions/:id", h.EndSession, g.RequireAuth, g.User, mw.UserOnly)
	e.POST("/users/me/mfa/totp", h.StartTOTP, g.RequireAuth, g.User, mw.UserOnly)
	e.POST("/users/me/mfa/totp/confirm", h.ConfirmTOTP, g.RequireAuth, g.User, mw.UserOnly)
	e.DELETE("/users/me/mfa/totp", h.DisableTOTP, g.RequireAuth, g.User, mw.UserOnly)
	e.POST("/users/me/mfa/recovery-codes", h.RegenerateRecoveryCodes, g.RequireAuth, g.User, mw.UserOnly)
	e.DELETE("/admin/users/:id/sessions", h.EndUserSessions, g.RequireAuth, g.User, mw.UserOnly, mw.Require(caller.AdminScope, caller.Admin))
	e.DELETE("/admin/users/:id/mfa", h.ResetUserMFA, g.RequireAuth, g.User, mw.UserOnly, mw.Require(caller.AdminScope, caller.Admin))
}
