package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Anyone may call these.
func system(e *echo.Echo, h *handlers.System) {
	e.GET("/healthz", h.Healthz)
	e.GET("/readyz", h.Readyz)
	e.GET("/public/status", h.Status)
	e.GET("/.well-known/jwks.json", h.JWKS)
}
