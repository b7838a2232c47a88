package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
)

var usersRead = c.DefineScope("users:read", "read the caller's profile (for a key or client: its owner's)", c.Viewer, c.Editor, c.Admin)

// For an API key or a client, "me" is its owner.
func users(e *echo.Echo, h *handlers.Users, g Guards) {
	e.GET("/users/me", h.Me, g.Protected(usersRead, c.Viewer, c.Editor, c.Admin)...)
}
