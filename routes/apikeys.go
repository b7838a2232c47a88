package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// Keys are managed with a person's login (mw.UserOnly): a key can neither
// make nor keep keys. Any user manages their own; admins list and revoke
// everyone's.
func apiKeys(e *echo.Echo, h *handlers.APIKeys, g Guards) {
	e.POST("/api-keys", h.Create, g.RequireAuth, g.User, mw.UserOnly)
	e.GET("/api-keys", h.List, g.RequireAuth, g.User, mw.UserOnly)
	e.DELETE("/api-keys/:id", h.Revoke, g.RequireAuth, g.User, mw.UserOnly)
	e.POST("/api-keys/:id/rotate", h.Rotate, g.RequireAuth, g.User, mw.UserOnly)
	admins := mw.Require(c.AdminScope, c.Admin)
	e.GET("/admin/api-keys", h.ListAll, g.RequireAuth, g.User, mw.UserOnly, admins)
	e.DELETE("/admin/api-keys/:id", h.RevokeAny, g.RequireAuth, g.User, mw.UserOnly, admins)
}
