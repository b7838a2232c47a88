package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// Each route names the scope and the roles it needs (mw.Require); API keys
// and OAuth clients pass on their scope, users on their role.
func projects(e *echo.Echo, h *handlers.Projects, g Guards) {
	anyone := []c.Role{c.Viewer, c.Editor, c.Admin}
	e.GET("/projects", h.List, g.RequireAuth, g.User, mw.Require(c.ProjectsRead, anyone...))
	e.GET("/projects/:id", h.Get, g.RequireAuth, g.User, mw.Require(c.ProjectsRead, anyone...))
	e.POST("/projects", h.Create, g.RequireAuth, g.User, mw.Require(c.ProjectsWrite, c.Editor, c.Admin))
	e.PATCH("/projects/:id", h.Update, g.RequireAuth, g.User, mw.Require(c.ProjectsWrite, c.Editor, c.Admin)) // editors their own
	e.DELETE("/projects/:id", h.Delete, g.RequireAuth, g.User, mw.Require(c.ProjectsDelete, c.Admin))
}
