package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// OrgResponse is an organization with the caller's role in it.
type OrgResponse struct {
	ID   uuid.UUID `json:"id" format:"uuid" example:"3f1c2b9a-8d4e-4f6a-9b7c-2e5d8a1f0c34"`
	Name string    `json:"name" example:"Acme"`
	Slug string    `json:"slug" example:"acme"`
	// Tier is the team's plan; absent: each member's own (the default
	// organization).
	Tier    string `json:"tier,omitempty" example:"free"`
	Role    string `json:"role" example:"owner" enums:"viewer,editor,admin,owner"`
	Default bool   `json:"default" example:"false"` // the organization every installation starts with
	// SSOEnforced: members other than owners sign in only through the
	// org's SSO connections.
	SSOEnforced bool      `json:"sso_enforced" example:"false"`
	CreatedAt   time.Time `json:"created_at" format:"date-time"`
	UpdatedAt   time.Time `json:"updated_at" format:"date-time"`
}

func toOrg(o *services.OrgWithRole) OrgResponse {
	out := OrgResponse{ID: o.ID, Name: o.Name, Slug: o.Slug, Role: string(o.Role), Default: o.ID == models.DefaultOrgID,
		SSOEnforced: o.SSOEnforced, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	if o.Tier != nil {
		out.Tier = string(*o.Tier)
	}
	return out
}

// MemberResponse is a member of an organization.
type MemberResponse struct {
	UserID    uuid.UUID `json:"user_id" format:"uuid"`
	Email     string    `json:"email" example:"marta@example.com"`
	Role      string    `json:"role" example:"editor" enums:"viewer,editor,admin,owner"`
	CreatedAt time.Time `json:"created_at" format:"date-time"` // when they joined
}

func toMember(m *services.Member) MemberResponse {
	return MemberResponse{UserID: m.UserID, Email: m.Email, Role: string(m.Role), CreatedAt: m.CreatedAt}
}

// InvitationResponse is an invitation; never its token, which only the
// invited address receives.
type InvitationResponse struct {
	ID         uuid.UUID  `json:"id" format:"uuid"`
	OrgID      uuid.UUID  `json:"org_id" format:"uuid"`
	Email      string     `json:"email" example:"jonas@example.com"`
	Role       string     `json:"role" example:"editor" enums:"viewer,editor,admin,owner"`
	Status     string     `json:"status" example:"pending" enums:"pending,accepted,revoked,expired"`
	InviterID  *uuid.UUID `json:"inviter_id,omitempty" format:"uuid"`
	ExpiresAt  time.Time  `json:"expires_at" format:"date-time"`
	AcceptedAt *time.Time `json:"accepted_at,omitempty" format:"date-time"`
	CreatedAt  time.Time  `json:"created_at" format:"date-time"`
}

func toInvitation(now time.Time) func(*models.Invitation) InvitationResponse {
	return func(i *models.Invitation) InvitationResponse {
		status := "pending"
		switch {
		case i.AcceptedAt != nil:
			status = "accepted"
		case i.RevokedAt != nil:
			status = "revoked"
		case !now.Before(i.ExpiresAt):
			status = "expired"
		}
		return InvitationResponse{ID: i.ID, OrgID: i.OrgID, Email: i.Email, Role: string(i.Role), Status: status, InviterID: i.InviterID,
			ExpiresAt: i.ExpiresAt, AcceptedAt: i.AcceptedAt, CreatedAt: i.CreatedAt}
	}
}

// Page types under the names the API docs give them.
type (
	OrgPage        = Paginated[OrgResponse]
	MemberPage     = Paginated[MemberResponse]
	InvitationPage = Paginated[InvitationResponse]
)

// Orgs serves organizations, their members and invitations.
type Orgs struct {
	orgs  *services.Orgs
	users *services.Users
	now   func() time.Time
}

// NewOrgs builds the organization handlers.
func NewOrgs(o *services.Orgs, u *services.Users, now func() time.Time) *Orgs {
	return &Orgs{orgs: o, users: u, now: now}
}

// CreateOrgRequest names a new organization.
type CreateOrgRequest struct {
	Name string `json:"name" validate:"required,max=100" example:"Acme"`
	Slug string `json:"slug" validate:"required,max=40" example:"acme"`
}

// Create makes an organization with the caller as owner.
//
//	@Summary	Create an organization
//	@Description	The caller becomes its owner; its tier is free. Refresh with its org_id to act in it. With ORG_SIGNUP=invite-only only platform operators may.
//	@ID	createOrg
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	body	body	CreateOrgRequest	true	"name and slug (1 to 40 lower-case letters, digits and inner hyphens)"
//	@Success	201	{object}	OrgResponse
//	@Failure	403	{object}	ErrorResponse	"user_token_required or org_creation_closed"
//	@Failure	409	{object}	ErrorResponse	"slug_taken"
//	@Router		/orgs [post]
func (h *Orgs) Create(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req CreateOrgRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if msg := services.CheckSlug(req.Slug); msg != "" {
		return validationError("slug", msg)
	}
	name, err := cleanName(req.Name)
	if err != nil {
		return err
	}
	o, err := h.orgs.Create(c.Request().Context(), cl, name, req.Slug)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toOrg(o))
}

func cleanName(raw string) (string, error) {
	name := strings.TrimSpace(services.CleanText(raw, 100))
	if name == "" {
		return "", validationError("name", "must not be blank")
	}
	return name, nil
}

// List returns the caller's organizations.
//
//	@Summary	List your organizations
//	@Description	The organizations the caller belongs to, oldest first, with the role in each: what an organization switcher shows.
//	@ID	listOrgs
//	@Tags	orgs
//	@Security	BearerAuth
//	@Success	200	{object}	OrgPage
//	@Router		/orgs [get]
func (h *Orgs) List(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := h.orgs.List(c.Request().Context(), cl, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(page, p, toOrg))
}

// Get returns one organization.
//
//	@Summary	Get an organization
//	@Description	Members only: any other caller gets 404, as if it did not exist.
//	@ID	getOrg
//	@Tags	orgs
//	@Security	BearerAuth
//	@Success	200	{object}	OrgResponse
//	@Router		/orgs/{id} [get]
func (h *Orgs) Get(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	o, err := h.orgs.Get(c.Request().Context(), cl, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toOrg(o))
}

// UpdateOrgRequest changes an organization; absent fields stay.
type UpdateOrgRequest struct {
	Name *string `json:"name,omitempty" validate:"omitempty,max=100" example:"Acme Inc."`
	Slug *string `json:"slug,omitempty" validate:"omitempty,max=40" example:"acme"`
	// Tier is for platform operators only: it is what the team pays for.
	Tier *string `json:"tier,omitempty" validate:"omitempty,tier" example:"paid"`
	// SSOEnforced: needs an enabled SSO connection and a verified domain.
	SSOEnforced *bool `json:"sso_enforced,omitempty" example:"true"`
}

// Update renames an organization or sets its tier.
//
//	@Summary	Update an organization
//	@Description	Owners and admins change name and slug; only platform operators change the tier, which reaches the members' tokens at their next refresh.
//	@ID	updateOrg
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	body	body	UpdateOrgRequest	true	"fields to change"
//	@Success	200	{object}	OrgResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, tier_platform_only or user_token_required"
//	@Failure	409	{object}	ErrorResponse	"slug_taken, sso_connection_required"
//	@Router		/orgs/{id} [patch]
func (h *Orgs) Update(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	var req UpdateOrgRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	ch := services.OrgChanges{Slug: req.Slug, Tier: (*caller.Tier)(req.Tier), SSOEnforced: req.SSOEnforced}
	if req.Name == nil && req.Slug == nil && req.Tier == nil && req.SSOEnforced == nil {
		return validationError("body", "give name, slug, tier or sso_enforced")
	}
	if req.Slug != nil {
		if msg := services.CheckSlug(*req.Slug); msg != "" {
			return validationError("slug", msg)
		}
	}
	if req.Name != nil {
		name, err := cleanName(*req.Name)
		if err != nil {
			return err
		}
		ch.Name = &name
	}
	o, err := h.orgs.Update(c.Request().Context(), cl, id, ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toOrg(o))
}

// Delete removes an organization and everything it owns.
//
//	@Summary	Delete an organization
//	@Description	Owners (or platform operators) only. Its projects, API keys, clients, memberships and invitations go with it; its members' tokens stop at once. The default organization cannot be deleted.
//	@ID	deleteOrg
//	@Tags	orgs
//	@Security	BearerAuth
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"owner_required or user_token_required"
//	@Failure	409	{object}	ErrorResponse	"default_organization"
//	@Router		/orgs/{id} [delete]
func (h *Orgs) Delete(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	if err := h.orgs.Delete(c.Request().Context(), cl, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Members lists an organization's members.
//
//	@Summary	List members
//	@Description	Any member; oldest first.
//	@ID	listOrgMembers
//	@Tags	orgs
//	@Security	BearerAuth
//	@Success	200	{object}	MemberPage
//	@Router		/orgs/{id}/members [get]
func (h *Orgs) Members(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := h.orgs.Members(c.Request().Context(), cl, id, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(page, p, toMember))
}

func orgAndUser(c *echo.Context) (*caller.Caller, uuid.UUID, uuid.UUID, error) {
	cl, id, err := whoAndID(c)
	if err != nil {
		return nil, uuid.Nil, uuid.Nil, err
	}
	user, err := pathUUID(c, "user")
	if err != nil {
		return nil, uuid.Nil, uuid.Nil, err
	}
	return cl, id, user, nil
}

// MemberRoleRequest sets a member's role.
type MemberRoleRequest struct {
	Role string `json:"role" validate:"required,role" example:"editor" enums:"viewer,editor,admin,owner"`
}

// UpdateMember changes a member's role.
//
//	@Summary	Change a member's role
//	@Description	Owners and admins; only owners make or unmake owners. The last owner cannot be demoted (409 last_owner); in the default organization, which has no owners, the last admin (409 last_admin). The member's tokens stop at once; their next refresh carries the new role.
//	@ID	updateOrgMember
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	user	path	string	true	"the member's user id"	format(uuid)
//	@Param	body	body	MemberRoleRequest	true	"the new role"
//	@Success	200	{object}	MemberResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, owner_required or user_token_required"
//	@Failure	404	{object}	ErrorResponse	"org_not_found or member_not_found"
//	@Failure	409	{object}	ErrorResponse	"last_owner, last_admin or default_organization"
//	@Router		/orgs/{id}/members/{user} [patch]
func (h *Orgs) UpdateMember(c *echo.Context) error {
	cl, id, user, err := orgAndUser(c)
	if err != nil {
		return err
	}
	var req MemberRoleRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	m, err := h.orgs.SetRole(c.Request().Context(), cl, id, user, caller.Role(req.Role))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toMember(m))
}

// RemoveMember takes a member out of an organization.
//
//	@Summary	Remove a member
//	@Description	Owners and admins; only owners remove owners; never the last owner. The member's tokens stop at once; their next refresh lands in another organization of theirs.
//	@ID	removeOrgMember
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	user	path	string	true	"the member's user id"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, owner_required or user_token_required"
//	@Failure	404	{object}	ErrorResponse	"org_not_found or member_not_found"
//	@Failure	409	{object}	ErrorResponse	"last_owner or last_admin"
//	@Router		/orgs/{id}/members/{user} [delete]
func (h *Orgs) RemoveMember(c *echo.Context) error {
	cl, id, user, err := orgAndUser(c)
	if err != nil {
		return err
	}
	if err := h.orgs.Remove(c.Request().Context(), cl, id, user); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Leave takes the caller out of an organization.
//
//	@Summary	Leave an organization
//	@Description	Any member but the last owner (409: transfer ownership or delete the organization first).
//	@ID	leaveOrg
//	@Tags	orgs
//	@Security	BearerAuth
//	@Success	204
//	@Failure	409	{object}	ErrorResponse	"last_owner or last_admin"
//	@Router		/orgs/{id}/leave [post]
func (h *Orgs) Leave(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	if err := h.orgs.Leave(c.Request().Context(), cl, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// TransferRequest names the new owner.
type TransferRequest struct {
	UserID uuid.UUID `json:"user_id" validate:"required" format:"uuid"`
}

// Transfer hands ownership to another member.
//
//	@Summary	Transfer ownership
//	@Description	An owner makes another member owner and becomes admin.
//	@ID	transferOrg
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	body	body	TransferRequest	true	"the member who becomes owner"
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"owner_required or user_token_required"
//	@Failure	404	{object}	ErrorResponse	"org_not_found or member_not_found"
//	@Failure	409	{object}	ErrorResponse	"default_organization"
//	@Router		/orgs/{id}/transfer [post]
func (h *Orgs) Transfer(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	var req TransferRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.orgs.Transfer(c.Request().Context(), cl, id, req.UserID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// InviteRequest invites an address.
type InviteRequest struct {
	Email string `json:"email" validate:"required,max=254" example:"jonas@example.com"`
	Role  string `json:"role" validate:"required,role" example:"editor" enums:"viewer,editor,admin,owner"`
}

// Invite asks an address to join.
//
//	@Summary	Invite someone
//	@Description	Owners and admins; only owners invite owners. The link goes by mail (through the outbox), never in the answer; a pending invitation of the same address is replaced. It works once, for that address verified, until INVITATION_TTL (7 days).
//	@ID	createInvitation
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	body	body	InviteRequest	true	"address and role"
//	@Success	201	{object}	InvitationResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, owner_required or user_token_required"
//	@Failure	409	{object}	ErrorResponse	"default_organization (it has no owners)"
//	@Router		/orgs/{id}/invitations [post]
func (h *Orgs) Invite(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	var req InviteRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	inv, err := h.orgs.Invite(c.Request().Context(), cl, id, req.Email, caller.Role(req.Role))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toInvitation(h.now())(inv))
}

// Invitations lists an organization's invitations.
//
//	@Summary	List invitations
//	@Description	Owners and admins; newest first, with their status.
//	@ID	listInvitations
//	@Tags	orgs
//	@Security	BearerAuth
//	@Success	200	{object}	InvitationPage
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions or user_token_required"
//	@Router		/orgs/{id}/invitations [get]
func (h *Orgs) Invitations(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := h.orgs.Invitations(c.Request().Context(), cl, id, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(page, p, toInvitation(h.now())))
}

// RevokeInvitation withdraws a pending invitation.
//
//	@Summary	Revoke an invitation
//	@Description	Owners and admins; a pending invitation only.
//	@ID	revokeInvitation
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	inv	path	string	true	"invitation id"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions or user_token_required"
//	@Failure	404	{object}	ErrorResponse	"org_not_found or invitation_not_found"
//	@Router		/orgs/{id}/invitations/{inv} [delete]
func (h *Orgs) RevokeInvitation(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	inv, err := pathUUID(c, "inv")
	if err != nil {
		return err
	}
	if err := h.orgs.Revoke(c.Request().Context(), cl, id, inv); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// AcceptRequest carries the mailed invitation token.
type AcceptRequest struct {
	Token string `json:"token" validate:"required,max=256" example:"the token from the invitation mail"`
}

// Accept joins the invitation's organization.
//
//	@Summary	Accept an invitation
//	@Description	The signed-in user's verified address must be the invited one. Single use: of concurrent accepts exactly one wins. Answers the organization joined; refresh with its org_id to act in it.
//	@ID	acceptInvitation
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	body	body	AcceptRequest	true	"invitation token"
//	@Success	200	{object}	OrgResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, invalid_json, invitation_invalid or invitation_expired"
//	@Failure	403	{object}	ErrorResponse	"invitation_email_mismatch or user_token_required"
//	@Failure	409	{object}	ErrorResponse	"already_member"
//	@Router		/invitations/accept [post]
func (h *Orgs) Accept(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req AcceptRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	u, err := h.users.Current(c.Request().Context(), cl.ID)
	if err != nil {
		return err
	}
	o, err := h.orgs.Accept(c.Request().Context(), u, req.Token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toOrg(o))
}
