package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
)

// adminScope lets an admin's API key or client manage users; the admin
// routes that manage credentials or read the audit log take people only.
var adminScope = c.DefineScope("admin", "list and change users", c.Admin)

func admin(e *echo.Echo, h *handlers.Users, ip *handlers.IPRules, g Guards) {
	// Who may call at all: an operator's login only.
	e.GET("/admin/ip-rules", ip.List, g.PlatformPeople()...)
	e.POST("/admin/ip-rules", ip.Create, g.PlatformPeople()...)
	e.DELETE("/admin/ip-rules/:id", ip.Delete, g.PlatformPeople()...)
	e.GET("/admin/users", h.List, g.Platform(adminScope)...)
	e.PATCH("/admin/users/:id", h.Update, g.Platform(adminScope)...)
	e.DELETE("/admin/users/:id", h.Delete, g.Platform(adminScope)...)
	// Ending a user's sessions and resetting their second factor take an
	// admin's login.
	e.DELETE("/admin/users/:id/sessions", h.EndSessions, g.PlatformPeople()...)
	e.DELETE("/admin/users/:id/mfa", h.ResetMFA, g.PlatformPeople()...)
}
