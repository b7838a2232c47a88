package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Anyone may read the API docs, when SWAGGER_ENABLED is on (h is nil when
// off). Not rate limited: static and pre-rendered, like the probes.
func docs(e *echo.Echo, h *handlers.Docs) {
	if h == nil {
		return
	}
	e.GET("/openapi.json", h.OpenAPI)
	e.GET("/swagger", h.SwaggerUI)
	e.GET("/swagger/*", h.SwaggerUI)
}
