package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
)

// adminScope lets an admin's API key or client manage users; the admin
// routes that manage credentials or read the audit log take people only.
var adminScope = c.DefineScope("admin", "list and change users", c.Admin)

func admin(e *echo.Echo, h *handlers.Users, g Guards) {
	e.GET("/admin/users", h.List, g.Platform(adminScope)...)
	e.PATCH("/admin/users/:id", h.Update, g.Platform(adminScope)...)
	e.DELETE("/admin/users/:id", h.Delete, g.Platform(adminScope)...)
	// Ending a user's sessions and resetting their second factor take an
	// admin's login.
	e.DELETE("/admin/users/:id/sessions", h.EndSessions, g.PlatformPeople()...)
	e.DELETE("/admin/users/:id/mfa", h.ResetMFA, g.PlatformPeople()...)
}
