package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

func analytics(e *echo.Echo, h *handlers.Analytics, g Guards) {
	e.GET("/analytics", h.Get, g.RequireAuth, g.User, mw.RequireRole(caller.Admin)) // admin (not limited: admins skip g.User)
}
