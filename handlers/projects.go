package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// ProjectPage is a page of projects, under the name the API docs give it.
type ProjectPage = Paginated[ProjectResponse]

// ProjectResponse is a project as the API shows it.
type ProjectResponse struct {
	ID          uuid.UUID `json:"id" format:"uuid" example:"1b4e28ba-2fa1-11d2-883f-0016d3cca427"`
	OrgID       uuid.UUID `json:"org_id" format:"uuid" example:"3f1c2b9a-8d4e-4f6a-9b7c-2e5d8a1f0c34"`
	OwnerID     uuid.UUID `json:"owner_id" format:"uuid" example:"7c9e6679-7425-40de-944b-e07fc1f90ae7"`
	Name        string    `json:"name" example:"Launch"`
	Description string    `json:"description" example:"Everything for the launch"`
	CreatedAt   time.Time `json:"created_at" format:"date-time"`
	UpdatedAt   time.Time `json:"updated_at" format:"date-time"`
}

func toProject(p *models.Project) ProjectResponse {
	return ProjectResponse{ID: p.ID, OrgID: p.OrgID, OwnerID: p.OwnerID, Name: p.Name, Description: p.Description, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// Projects serves the project endpoints.
type Projects struct{ projects *services.Projects }

// NewProjects builds the project handlers.
func NewProjects(p *services.Projects) *Projects { return &Projects{projects: p} }

// List returns a page of projects.
//
//	@Summary	List projects
//	@Description	Any authenticated user. Limited per user by tier (free, paid, enterprise).
//	@ID	listProjects
//	@Tags	projects
//	@Security	BearerAuth
//	@x-scope	"projects:read"
//	@Success	200	{object}	ProjectPage
//	@Failure	400	{object}	ErrorResponse	"validation_failed, invalid_json or invalid_id"
//	@Router		/projects [get]
func (h *Projects) List(c *echo.Context) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	cl, err := who(c)
	if err != nil {
		return err
	}
	page, err := h.projects.List(c.Request().Context(), cl, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(page, p, toProject))
}

// Get returns one project.
//
//	@Summary	Get a project
//	@Description	Any authenticated user. Limited per user by tier.
//	@ID	getProject
//	@Tags	projects
//	@Security	BearerAuth
//	@x-scope	"projects:read"
//	@Param	id	path	string	true	"project id (UUID)"	format(uuid)
//	@Success	200	{object}	ProjectResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, invalid_json or invalid_id"
//	@Failure	404	{object}	ErrorResponse	"project_not_found"
//	@Router		/projects/{id} [get]
func (h *Projects) Get(c *echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	cl, err := who(c)
	if err != nil {
		return err
	}
	p, err := h.projects.Get(c.Request().Context(), cl, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toProject(p))
}

// CreateProjectRequest creates a project.
type CreateProjectRequest struct {
	Name        string `json:"name" validate:"required,max=200" example:"Launch"`
	Description string `json:"description,omitempty" validate:"max=2000" example:"Everything for the launch"`
}

// Create stores a project owned by the caller.
//
//	@Summary	Create a project (editor, admin)
//	@Description	The caller becomes the owner. Limited per user by tier.
//	@ID	createProject
//	@Tags	projects
//	@Security	BearerAuth
//	@x-scope	"projects:write"
//	@Param	body	body	CreateProjectRequest	true	"the project"
//	@Success	201	{object}	ProjectResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed (NUL characters included), invalid_json or invalid_id"
//	@Failure	401	{object}	ErrorResponse	"authentication_required, invalid_token, token_expired (see WWW-Authenticate) or account_not_found (the token's account was deleted)"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions: the role may not do this"
//	@Router		/projects [post]
func (h *Projects) Create(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req CreateProjectRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		return validationError("name", "is required")
	}
	p, err := h.projects.Create(c.Request().Context(), cl, req.Name, req.Description)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toProject(p))
}

// UpdateProjectRequest changes a project; omitted fields stay as they are.
type UpdateProjectRequest struct {
	Name        *string `json:"name,omitempty" validate:"omitempty,max=200" example:"Launch v2"`
	Description *string `json:"description,omitempty" validate:"omitempty,max=2000" example:"Now with more launch"`
}

// Update changes a project: editors their own, admins any.
//
//	@Summary	Update a project (editor: own projects; admin: any)
//	@Description	Omitted fields stay as they are. Limited per user by tier.
//	@ID	updateProject
//	@Tags	projects
//	@Security	BearerAuth
//	@x-scope	"projects:write"
//	@Param	id	path	string	true	"project id (UUID)"	format(uuid)
//	@Param	body	body	UpdateProjectRequest	true	"fields to change"
//	@Success	200	{object}	ProjectResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions: the role may not do this"
//	@Failure	404	{object}	ErrorResponse	"project_not_found"
//	@Router		/projects/{id} [patch]
func (h *Projects) Update(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	var req UpdateProjectRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Name == nil && req.Description == nil {
		return validationError("body", "give name or description")
	}
	if req.Name != nil {
		trimmed := strings.TrimSpace(*req.Name)
		if trimmed == "" {
			return validationError("name", "must not be empty")
		}
		req.Name = &trimmed
	}
	p, err := h.projects.Update(c.Request().Context(), cl, id, services.ProjectChanges{Name: req.Name, Description: req.Description})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toProject(p))
}

// Delete removes a project.
//
//	@Summary	Delete a project (admin)
//	@Description	Admins only (admins are not limited per user; other callers count against their tier before the 403).
//	@ID	deleteProject
//	@Tags	projects
//	@Security	BearerAuth
//	@x-scope	"projects:delete"
//	@Param	id	path	string	true	"project id (UUID)"	format(uuid)
//	@Success	204	"deleted"
//	@Failure	400	{object}	ErrorResponse	"validation_failed, invalid_json or invalid_id"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions: the role may not do this"
//	@Failure	404	{object}	ErrorResponse	"project_not_found"
//	@Router		/projects/{id} [delete]
func (h *Projects) Delete(c *echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	cl, err := who(c)
	if err != nil {
		return err
	}
	if err := h.projects.Delete(c.Request().Context(), cl, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
