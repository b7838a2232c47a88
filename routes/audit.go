package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
)

// The audit log is for admins with their login.
func audit(e *echo.Echo, h *handlers.Audit, g Guards) {
	e.GET("/admin/audit", h.List, g.PeopleOnly(c.Admin)...)
	e.GET("/admin/audit/verify", h.Verify, g.PeopleOnly(c.Admin)...)
}
