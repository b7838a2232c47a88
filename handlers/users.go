package handlers

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// UserResponse is a user as the API shows it: never the password hash.
// Role is the role in OrgID: for the caller, the organization its token
// acts in; on the admin routes, the default organization. Tier is the
// account's own plan (an organization with a tier of its own bills by it).
type UserResponse struct {
	ID            uuid.UUID  `json:"id" format:"uuid" example:"7c9e6679-7425-40de-944b-e07fc1f90ae7"`
	Email         string     `json:"email" example:"marta@example.com"`
	OrgID         *uuid.UUID `json:"org_id,omitempty" format:"uuid" example:"00000000-0000-4000-8000-000000000001"`
	Role          string     `json:"role,omitempty" example:"viewer"` // absent: no organization
	Tier          string     `json:"tier" example:"free"`
	EmailVerified bool       `json:"email_verified" example:"true"`
	// Name and PictureURL: what an identity provider last gave (absent: none).
	Name       string    `json:"name,omitempty" example:"Marta Rossi"`
	PictureURL string    `json:"picture_url,omitempty" example:"https://lh3.googleusercontent.com/a/photo"`
	CreatedAt  time.Time `json:"created_at" format:"date-time"`
	UpdatedAt  time.Time `json:"updated_at" format:"date-time"`
}

func toUser(u *models.User, org uuid.UUID, role caller.Role) UserResponse {
	out := UserResponse{ID: u.ID, Email: u.Email, Role: string(role), Tier: string(u.Tier), EmailVerified: u.EmailVerified,
		Name: u.Name, PictureURL: u.PictureURL, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if org != uuid.Nil && role != "" {
		out.OrgID = &org
	}
	return out
}

func toUserInOrg(u *services.UserInOrg) UserResponse {
	return toUser(&u.User, models.DefaultOrgID, u.Role)
}

// Users serves the caller's own profile and the admin user management.
type Users struct {
	users    *services.Users
	sessions *services.Sessions
	mfa      *services.MFA
}

// NewUsers builds the user handlers.
func NewUsers(users *services.Users, a *services.Accounts) *Users {
	return &Users{users: users, sessions: a.Sessions, mfa: a.MFA}
}

// Me returns the caller's profile.
//
//	@Summary	The caller's profile
//	@Description	Any authenticated user. Limited per user by tier.
//	@ID	getMe
//	@Tags	users
//	@Security	BearerAuth
//	@x-scope	"users:read"
//	@Success	200	{object}	UserResponse
//	@Failure	401	{object}	ErrorResponse	"authentication_required, invalid_token, token_expired (see WWW-Authenticate) or account_not_found (the account was deleted)"
//	@Router		/users/me [get]
func (h *Users) Me(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	u, err := h.users.Current(c.Request().Context(), cl.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUser(u, cl.OrgID, cl.OrgRole))
}

// List returns a page of users.
//
//	@Summary	List users (admin)
//	@Description	Admins only. Admins are not limited per user; other callers count against their tier before the 403, and failed authentication against the per-IP limit.
//	@ID	listUsers
//	@Tags	admin
//	@Security	BearerAuth
//	@x-scope	"admin"
//	@Success	200	{object}	UserPage
//	@Failure	400	{object}	ErrorResponse	"validation_failed, invalid_json or invalid_id"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions: the role may not do this"
//	@Router		/admin/users [get]
func (h *Users) List(c *echo.Context) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := h.users.List(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(page, p, toUserInOrg))
}

// UpdateUserRequest changes a user's role or plan.
type UpdateUserRequest struct {
	Role *string `json:"role,omitempty" validate:"omitempty,default_role"` // in the default organization
	Tier *string `json:"tier,omitempty" validate:"omitempty,tier"`
}

// Update changes a user's role or tier.
//
//	@Summary	Change a user's role or tier (admin)
//	@Description	The user's access tokens are refused at once (they carry the old claims): the next refresh gives one with the new ones. The last admin cannot be demoted (409 last_admin). Admins only (admins are not limited per user; other callers count against their tier before the 403).
//	@ID	updateUser
//	@Tags	admin
//	@Security	BearerAuth
//	@x-scope	"admin"
//	@Param	id	path	string	true	"user id (UUID)"	format(uuid)
//	@Param	body	body	UpdateUserRequest	true	"fields to change"
//	@Success	200	{object}	UserResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions: the role may not do this"
//	@Failure	404	{object}	ErrorResponse	"user_not_found"
//	@Failure	409	{object}	ErrorResponse	"last_admin: the only admin cannot be demoted"
//	@Router			/admin/users/{id} [patch]
func (h *Users) Update(c *echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req UpdateUserRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	u, err := h.users.Update(c.Request().Context(), id, services.UserChanges{Role: (*caller.Role)(req.Role), Tier: (*caller.Tier)(req.Tier)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserInOrg(u))
}

// Delete removes a user (admins).
//
//	@Summary	Delete a user (admin)
//	@Description	Removes the account and everything it owns (projects, API keys, OAuth clients, sessions); its access tokens are refused at once, on every instance. The last admin cannot be deleted (409 last_admin). Audited as user.deleted.
//	@ID	deleteUser
//	@Tags	admin
//	@Security	BearerAuth
//	@x-scope	"admin"
//	@Param	id	path	string	true	"user id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions: the role may not do this"
//	@Failure	404	{object}	ErrorResponse	"user_not_found"
//	@Failure	409	{object}	ErrorResponse	"last_admin: the only admin cannot be deleted"
//	@Router			/admin/users/{id} [delete]
func (h *Users) Delete(c *echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := h.users.Delete(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// EndSessions ends every session of a user (admins).
//
//	@Summary	End every session of a user (admin)
//	@Description	Their refresh tokens and access tokens stop working at once, on every instance.
//	@ID	endUserSessions
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	id	path	string	true	"user id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Failure	404	{object}	ErrorResponse	"user_not_found"
//	@Router			/admin/users/{id}/sessions [delete]
func (h *Users) EndSessions(c *echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := h.sessions.EndAll(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ResetMFA removes a user's second factor (admins).
//
//	@Summary	Reset a user's two-factor authentication (admin)
//	@Description	For a person who lost both the authenticator and the recovery codes, once their identity is established outside the API: the second factor and its recovery codes go, every session of the account ends, the owner is mailed, and the audit log records the admin (mfa.reset). The person logs in with the password (or resets it first) and enrols again.
//	@ID	resetUserMFA
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	id	path	string	true	"user id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Failure	404	{object}	ErrorResponse	"user_not_found"
//	@Failure	409	{object}	ErrorResponse	"mfa_not_enabled"
//	@Router			/admin/users/{id}/mfa [delete]
func (h *Users) ResetMFA(c *echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := h.mfa.Reset(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
