package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// Admin users are not limited (they skip g.User); keys and clients are.
func analytics(e *echo.Echo, h *handlers.Analytics, g Guards) {
	e.GET("/analytics", h.Get, g.RequireAuth, g.User, mw.Require(caller.AnalyticsRead, caller.Admin))
}
