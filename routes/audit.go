package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// The audit log is for admins with their login.
func audit(e *echo.Echo, h *handlers.Audit, g Guards) {
	admins := mw.Require(caller.AdminScope, caller.Admin)
	e.GET("/admin/audit", h.List, g.RequireAuth, g.User, mw.UserOnly, admins)
	e.GET("/admin/audit/verify", h.Verify, g.RequireAuth, g.User, mw.UserOnly, admins)
}
