package services

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
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

// List returns one page of projects, newest first.
func (s *Projects) List(ctx context.Context, p Page) (PageOf[models.Project], error) {
	page, err := listPage(s.db.WithContext(ctx), p, true, func(m *models.Project) Cursor {
		return Cursor{CreatedAt: m.CreatedAt, ID: m.ID}
	})
	if err != nil {
		return page, apperror.Wrap(err, "list projects")
	}
	return page, nil
}

// Get returns one project.
func (s *Projects) Get(ctx context.Context, id uuid.UUID) (*models.Project, error) {
	var p models.Project
	if err := s.db.WithContext(ctx).First(&p, "id = ?", id).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errProjectNotFound
		}
		return nil, apperror.Wrap(err, "load project")
	}
	return &p, nil
}

// Create stores a project owned by owner.
func (s *Projects) Create(ctx context.Context, owner uuid.UUID, name, description string) (*models.Project, error) {
	now := s.clock.Now()
	p := &models.Project{ID: uuid.New(), OwnerID: owner, Name: name, Description: description, CreatedAt: now, UpdatedAt: now}
	if err := s.db.WithContext(ctx).Create(p).Error; err != nil {
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
	p, err := s.Get(ctx, id)
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
	if err := s.db.WithContext(ctx).Model(p).Select("name", "description", "updated_at").Updates(p).Error; err != nil {
		return nil, apperror.Wrap(err, "update project")
	}
	return p, nil
}

// Delete removes a project.
func (s *Projects) Delete(ctx context.Context, id uuid.UUID) error {
	res := s.db.WithContext(ctx).Delete(&models.Project{}, "id = ?", id)
	if res.Error != nil {
		return apperror.Wrap(res.Error, "delete project")
	}
	if res.RowsAffected == 0 {
		return errProjectNotFound
	}
	return nil
}
