package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// For an API key or a client, "me" is its owner.
func users(e *echo.Echo, h *handlers.Users, g Guards) {
	e.GET("/users/me", h.Me, g.RequireAuth, g.User, mw.Require(c.UsersRead, c.Viewer, c.Editor, c.Admin))
}
