package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// The OAuth endpoints authenticate the client themselves (HTTP Basic or
// the form), limited per IP and per client_id; failed client
// authentication counts like a failed login (g.Login). Clients are
// registered by admins with their login.
func oauth(e *echo.Echo, h *handlers.OAuth, g Guards) {
	e.POST("/oauth/token", h.Token, mw.NoStore, g.TokenIP, g.Login, g.TokenClient)
	e.POST("/oauth/revoke", h.Revoke, mw.NoStore, g.TokenIP, g.Login, g.TokenClient)
	e.POST("/oauth/introspect", h.Introspect, mw.NoStore, g.TokenIP, g.Login, g.TokenClient)
	e.GET("/.well-known/oauth-authorization-server", h.Metadata, g.Public)

	e.POST("/admin/oauth/clients", h.CreateClient, g.PlatformPeople()...)
	e.GET("/admin/oauth/clients", h.ListClients, g.PlatformPeople()...)
	e.POST("/admin/oauth/clients/:id/rotate-secret", h.RotateClientSecret, g.PlatformPeople()...)
	e.DELETE("/admin/oauth/clients/:id", h.DisableClient, g.PlatformPeople()...)
}
