package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

func projects(e *echo.Echo, h *handlers.Projects, g Guards) {
	editors := mw.RequireRole(caller.Editor, caller.Admin)
	admins := mw.RequireRole(caller.Admin)
	e.GET("/projects", h.List, g.RequireAuth, g.User)                  // any authenticated user
	e.GET("/projects/:id", h.Get, g.RequireAuth, g.User)               // any authenticated user
	e.POST("/projects", h.Create, g.RequireAuth, g.User, editors)      // editor, admin
	e.PATCH("/projects/:id", h.Update, g.RequireAuth, g.User, editors) // editor (own), admin (any)
	e.DELETE("/projects/:id", h.Delete, g.RequireAuth, g.User, admins) // admin
}
