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
	e.GET("/admin/users", h.List, g.Protected(adminScope, c.Admin)...)
	e.PATCH("/admin/users/:id", h.Update, g.Protected(adminScope, c.Admin)...)
	e.DELETE("/admin/users/:id", h.Delete, g.Protected(adminScope, c.Admin)...)
	// Ending a user's sessions and resetting their second factor take an
	// admin's login.
	e.DELETE("/admin/users/:id/sessions", h.EndSessions, g.PeopleOnly(c.Admin)...)
	e.DELETE("/admin/users/:id/mfa", h.ResetMFA, g.PeopleOnly(c.Admin)...)
}
