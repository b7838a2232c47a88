package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
	"github.com/tollgate/tollgate/models"
)

func admin(e *echo.Echo, h *handlers.Users, g Guards) {
	admins := mw.RequireRole(models.RoleAdmin)
	e.GET("/admin/users", h.List, g.RequireAuth, g.User, admins)         // admin
	e.PATCH("/admin/users/:id", h.Update, g.RequireAuth, g.User, admins) // admin
}
