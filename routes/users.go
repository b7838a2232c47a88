package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

func users(e *echo.Echo, h *handlers.Users, g Guards) {
	e.GET("/users/me", h.Me, g.RequireAuth, g.User) // any authenticated user
}
