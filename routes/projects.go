package routes

import (
	"github.com/labstack/echo/v5"

	c "github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
)

// The scopes of the projects routes, and the roles that imply them.
var (
	projectsRead   = c.DefineScope("projects:read", "list and read projects", c.Viewer, c.Editor, c.Admin)
	projectsWrite  = c.DefineScope("projects:write", "create and update projects (editor: own; admin: any)", c.Editor, c.Admin)
	projectsDelete = c.DefineScope("projects:delete", "delete projects", c.Admin)
)

// Each route names the scope and the roles it needs; API keys and OAuth
// clients pass on their scope, users on their role.
func projects(e *echo.Echo, h *handlers.Projects, g Guards) {
	anyone := []c.Role{c.Viewer, c.Editor, c.Admin}
	e.GET("/projects", h.List, g.Protected(projectsRead, anyone...)...)
	e.GET("/projects/:id", h.Get, g.Protected(projectsRead, anyone...)...)
	e.POST("/projects", h.Create, g.Protected(projectsWrite, c.Editor, c.Admin)...)
	e.PATCH("/projects/:id", h.Update, g.Protected(projectsWrite, c.Editor, c.Admin)...) // editors their own
	e.DELETE("/projects/:id", h.Delete, g.Protected(projectsDelete, c.Admin)...)
}
