package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Anyone may call these. The probes are not rate limited: orchestrators
// poll them.
func system(e *echo.Echo, h *handlers.System, g Guards) {
	e.GET("/", h.Index, g.Public)
	e.GET("/healthz", h.Healthz)
	e.GET("/readyz", h.Readyz)
	e.GET("/public/status", h.Status, g.Public)
	e.GET("/.well-known/jwks.json", h.JWKS, g.Public)
}
