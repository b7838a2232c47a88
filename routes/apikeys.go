package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Keys are managed with a person's login: a key can neither make nor keep
// keys. Any user manages their own; admins list and revoke everyone's.
func apiKeys(e *echo.Echo, h *handlers.APIKeys, g Guards) {
	e.POST("/api-keys", h.Create, g.PeopleOnly()...)
	e.GET("/api-keys", h.List, g.PeopleOnly()...)
	e.DELETE("/api-keys/:id", h.Revoke, g.PeopleOnly()...)
	e.POST("/api-keys/:id/rotate", h.Rotate, g.PeopleOnly()...)
	e.GET("/admin/api-keys", h.ListAll, g.PlatformPeople()...)
	e.DELETE("/admin/api-keys/:id", h.RevokeAny, g.PlatformPeople()...)
}
