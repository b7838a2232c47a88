package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Organizations are managed with a person's login: a key or a client acts
// inside one organization and cannot change who belongs to it. Who may do
// what inside an organization (its owners and admins manage, any member
// reads) depends on the role there, read afresh on each call, so the rule
// lives in the service (services/orgs.go); a non-member gets 404.
func orgs(e *echo.Echo, h *handlers.Orgs, a *handlers.Audit, g Guards) {
	e.POST("/orgs", h.Create, g.PeopleOnly()...)
	e.GET("/orgs", h.List, g.PeopleOnly()...)
	e.GET("/orgs/:id", h.Get, g.PeopleOnly()...)
	e.PATCH("/orgs/:id", h.Update, g.PeopleOnly()...)
	e.DELETE("/orgs/:id", h.Delete, g.PeopleOnly()...)
	e.GET("/orgs/:id/members", h.Members, g.PeopleOnly()...)
	e.PATCH("/orgs/:id/members/:user", h.UpdateMember, g.PeopleOnly()...)
	e.DELETE("/orgs/:id/members/:user", h.RemoveMember, g.PeopleOnly()...)
	e.POST("/orgs/:id/leave", h.Leave, g.PeopleOnly()...)
	e.POST("/orgs/:id/transfer", h.Transfer, g.PeopleOnly()...)
	e.POST("/orgs/:id/invitations", h.Invite, g.PeopleOnly()...)
	e.GET("/orgs/:id/invitations", h.Invitations, g.PeopleOnly()...)
	e.DELETE("/orgs/:id/invitations/:inv", h.RevokeInvitation, g.PeopleOnly()...)
	e.GET("/orgs/:id/audit", a.OrgList, g.PeopleOnly()...)
	e.POST("/invitations/accept", h.Accept, g.PeopleOnly()...)
}
