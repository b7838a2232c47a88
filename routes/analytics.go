package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
)

var analyticsRead = c.DefineScope("analytics:read", "read the usage report", c.Admin)

// Admin users are not limited (the per-caller limit skips them); keys and
// clients are.
func analytics(e *echo.Echo, h *handlers.Analytics, g Guards) {
	e.GET("/analytics", h.Get, g.Protected(analyticsRead, c.Admin)...)
}
