package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// The OAuth endpoints authenticate the client themselves (HTTP Basic or
// the form), limited per IP and per client_id; failed client
// authentication counts like a failed login (g.Login). Clients are
// registered with a person's login: by platform operators (/admin, any
// organization) or by an organization's owners and admins (/orgs/{id}).
func oauth(e *echo.Echo, h *handlers.OAuth, g Guards) {
	e.POST("/oauth/token", h.Token, mw.NoStore, g.TokenIP, g.Login, g.TokenClient)
	e.POST("/oauth/revoke", h.Revoke, mw.NoStore, g.TokenIP, g.Login, g.TokenClient)
	e.POST("/oauth/introspect", h.Introspect, mw.NoStore, g.TokenIP, g.Login, g.TokenClient)
	e.GET("/.well-known/oauth-authorization-server", h.Metadata, g.Public)

	e.POST("/admin/oauth/clients", h.CreateClient, g.PlatformPeople()...)
	e.GET("/admin/oauth/clients", h.ListClients, g.PlatformPeople()...)
	e.POST("/admin/oauth/clients/:id/rotate-secret", h.RotateClientSecret, g.PlatformPeople()...)
	e.DELETE("/admin/oauth/clients/:id", h.DisableClient, g.PlatformPeople()...)
	// An organization's own clients: its owners and admins (the role in
	// that organization is read afresh in the service; a non-member gets 404).
	e.POST("/orgs/:id/clients", h.CreateOrgClient, g.PeopleOnly()...)
	e.GET("/orgs/:id/clients", h.ListOrgClients, g.PeopleOnly()...)
	e.POST("/orgs/:id/clients/:client/rotate-secret", h.RotateOrgClientSecret, g.PeopleOnly()...)
	e.DELETE("/orgs/:id/clients/:client", h.DisableOrgClient, g.PeopleOnly()...)
}
