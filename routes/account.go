package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// A person's own account security: password and sessions need the
// person's login, never an API key or a client token.
func account(e *echo.Echo, h *handlers.Account, g Guards) {
	e.POST("/users/me/password", h.ChangePassword, g.PeopleOnly()...)
	e.GET("/users/me/sessions", h.Sessions, g.PeopleOnly()...)
	e.DELETE("/users/me/sessions/:id", h.EndSession, g.PeopleOnly()...)
	e.POST("/users/me/mfa/totp", h.StartTOTP, g.PeopleOnly()...)
	e.POST("/users/me/mfa/totp/confirm", h.ConfirmTOTP, g.PeopleOnly()...)
	e.DELETE("/users/me/mfa/totp", h.DisableTOTP, g.PeopleOnly()...)
	e.POST("/users/me/mfa/recovery-codes", h.RegenerateRecoveryCodes, g.PeopleOnly()...)
}
