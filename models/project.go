package models

import (
	"time"

	"github.com/google/uuid"
)

// Project is the example resource a fork replaces with its own.
type Project struct {
	ID          uuid.UUID `gorm:"type:uuid;primaryKey"`
	OrgID       uuid.UUID `gorm:"type:uuid"`
	OwnerID     uuid.UUID `gorm:"type:uuid"`
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

var projectColumns = []string{"id", "org_id", "owner_id", "name", "description", "created_at", "updated_at"}

// Columns and Fields let lists scan projects without reflection (see
// scan.Scannable); a test holds them to the struct's GORM schema.
func (*Project) Columns() []string { return projectColumns }

// Fields are the scan targets of Columns, in order.
func (p *Project) Fields() []any {
	return []any{&p.ID, &p.OrgID, &p.OwnerID, &p.Name, &p.Description, &p.CreatedAt, &p.UpdatedAt}
}
