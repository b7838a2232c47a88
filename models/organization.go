package models

import (
	"time"

	"github.com/google/uuid"

	"github.com/tollgate/tollgate/caller"
)

// DefaultOrgID is the organization every installation starts with (the
// migration makes it): a single-tenant app never needs another.
var DefaultOrgID = uuid.MustParse("00000000-0000-4000-8000-000000000001")

// Organization is a tenant: a team whose members share its rows.
type Organization struct {
	ID   uuid.UUID `gorm:"type:uuid;primaryKey"`
	Name string
	Slug string
	// Tier is the team's plan; nil: each member's own (the default
	// organization, as before organizations existed).
	Tier *caller.Tier
	// SSOEnforced: members sign in only through the org's SSO connections
	// (owners keep their password, so a broken IdP cannot lock the org out).
	SSOEnforced bool `gorm:"column:sso_enforced"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Membership is a user's role in an organization.
type Membership struct {
	OrgID     uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	Role      caller.Role
	CreatedAt time.Time
}

// Invitation asks an address to join an organization with a role; only
// the SHA-256 of its mailed token is stored.
type Invitation struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	OrgID      uuid.UUID `gorm:"type:uuid"`
	Email      string
	Role       caller.Role
	TokenHash  string
	InviterID  *uuid.UUID `gorm:"type:uuid"`
	ExpiresAt  time.Time
	AcceptedAt *time.Time
	AcceptedBy *uuid.UUID `gorm:"type:uuid"`
	RevokedAt  *time.Time
	CreatedAt  time.Time
}
