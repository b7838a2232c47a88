package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// Enterprise SSO. An organization's connections and domains are managed
// with a person's login (owners and admins: the rule is the service's, as
// for the other /orgs routes). Discovery and the sign-in itself are for
// anyone, limited per IP: they are how a caller gets a token. The ACS is
// posted by the IdP's form in the browser, so it takes no token.
func sso(e *echo.Echo, h *handlers.SSO, g Guards) {
	e.POST("/orgs/:id/sso/connections", h.CreateConnection, g.PeopleOnly()...)
	e.GET("/orgs/:id/sso/connections", h.Connections, g.PeopleOnly()...)
	e.GET("/orgs/:id/sso/connections/:conn", h.Connection, g.PeopleOnly()...)
	e.PATCH("/orgs/:id/sso/connections/:conn", h.UpdateConnection, g.PeopleOnly()...)
	e.DELETE("/orgs/:id/sso/connections/:conn", h.DeleteConnection, g.PeopleOnly()...)
	e.POST("/orgs/:id/domains", h.AddDomain, g.PeopleOnly()...)
	e.GET("/orgs/:id/domains", h.Domains, g.PeopleOnly()...)
	e.POST("/orgs/:id/domains/:domain/verify", h.VerifyDomain, g.PeopleOnly()...)
	e.DELETE("/orgs/:id/domains/:domain", h.RemoveDomain, g.PeopleOnly()...)
	e.POST("/auth/sso/discover", h.Discover, g.Public)
	e.GET("/auth/sso/:conn/start", h.Start, g.Public)
	e.GET("/auth/sso/:conn/callback", h.Callback, g.Public)
	e.POST("/auth/sso/:conn/acs", h.ACS, mw.NoStore, g.Public)
	e.GET("/auth/sso/:conn/metadata", h.Metadata, g.Public)
}
