package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// The audit log is for admins with their login.
func audit(e *echo.Echo, h *handlers.Audit, g Guards) {
	e.GET("/admin/audit", h.List, g.PlatformPeople()...)
	e.GET("/admin/audit/verify", h.Verify, g.PlatformPeople()...)
}
