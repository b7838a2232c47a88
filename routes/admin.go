package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

func admin(e *echo.Echo, h *handlers.Users, g Guards) {
	admins := mw.Require(caller.AdminScope, caller.Admin)
	e.GET("/admin/users", h.List, g.RequireAuth, g.User, admins)
	e.PATCH("/admin/users/:id", h.Update, g.RequireAuth, g.User, admins)
	e.DELETE("/admin/users/:id", h.Delete, g.RequireAuth, g.User, admins)
}
