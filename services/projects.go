package services

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/database/scan"
	"github.com/tollgate/tollgate/models"
)

var errProjectNotFound = apperror.Define(apperror.NotFound, "project_not_found", "Project not found")

// Projects is the example resource: a fork copies this file for its own.
type Projects struct {
	db    *gorm.DB
	clock clock.Clock
}

// NewProjects builds the project service.
func NewProjects(db *gorm.DB, clk clock.Clock) *Projects {
	return &Projects{db: db, clock: clk}
}

// Every project belongs to one organization: each method reads and writes
// only the caller's (orgOf), so another organization's project is simply
// not found (404, never 403: no existence oracle).

// List returns one page of the organization's projects, newest first.
func (s *Projects) List(ctx context.Context, who *caller.Caller, p Page) (PageOf[models.Project], error) {
	org, err := orgOf(who)
	if err != nil {
		return PageOf[models.Project]{}, err
	}
	var page PageOf[models.Project]
	err = readInOrg(ctx, s.db, org, func(tx *gorm.DB) (err error) {
		page, err = listPage(tx.Where("org_id = ?", org), p, true, func(m *models.Project) Cursor {
			return Cursor{CreatedAt: m.CreatedAt, ID: m.ID}
		})
		return err
	})
	if err != nil {
		return page, apperror.Wrap(err, "list projects")
	}
	return page, nil
}

// Get returns one of the organization's projects.
func (s *Projects) Get(ctx context.Context, who *caller.Caller, id uuid.UUID) (*models.Project, error) {
	org, err := orgOf(who)
	if err != nil {
		return nil, err
	}
	var p models.Project
	err = readInOrg(ctx, s.db, org, func(tx *gorm.DB) error { return scan.FindOne(tx.Where("id = ? AND org_id = ?", id, org), &p) })
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errProjectNotFound
		}
		return nil, apperror.Wrap(err, "load project")
	}
	return &p, nil
}

// Create stores a project owned by the caller, in its organization.
func (s *Projects) Create(ctx context.Context, who *caller.Caller, name, description string) (*models.Project, error) {
	org, err := orgOf(who)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	p := &models.Project{ID: uuid.New(), OrgID: org, OwnerID: who.ID, Name: name, Description: description, CreatedAt: now, UpdatedAt: now}
	if err := inOrg(ctx, s.db, org, func(tx *gorm.DB) error { return tx.Create(p).Error }); err != nil {
		if errors.Is(err, gorm.ErrForeignKeyViolated) {
			return nil, errAccountGone
		}
		return nil, apperror.Wrap(err, "insert project")
	}
	return p, nil
}

// ProjectChanges are the fields PATCH may change; nil leaves a field alone.
type ProjectChanges struct {
	Name        *string
	Description *string
}

// Update changes a project. Admins may change any project; everyone else
// only their own.
func (s *Projects) Update(ctx context.Context, actor *caller.Caller, id uuid.UUID, ch ProjectChanges) (*models.Project, error) {
	p, err := s.Get(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if !actor.Is(caller.Admin) && p.OwnerID != actor.ID {
		return nil, apperror.ErrForbidden
	}
	if ch.Name != nil {
		p.Name = *ch.Name
	}
	if ch.Description != nil {
		p.Description = *ch.Description
	}
	p.UpdatedAt = s.clock.Now()
	err = inOrg(ctx, s.db, p.OrgID, func(tx *gorm.DB) error {
		return tx.Model(p).Where("org_id = ?", p.OrgID).Select("name", "description", "updated_at").Updates(p).Error
	})
	if err != nil {
		return nil, apperror.Wrap(err, "update project")
	}
	return p, nil
}

// Delete removes one of the organization's projects.
func (s *Projects) Delete(ctx context.Context, who *caller.Caller, id uuid.UUID) error {
	org, err := orgOf(who)
	if err != nil {
		return err
	}
	var deleted int64
	err = inOrg(ctx, s.db, org, func(tx *gorm.DB) error {
		res := tx.Delete(&models.Project{}, "id = ? AND org_id = ?", id, org)
		deleted = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return apperror.Wrap(err, "delete project")
	}
	if deleted == 0 {
		return errProjectNotFound
	}
	return nil
}
