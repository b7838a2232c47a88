// Package models holds the GORM models, one per table. They match the SQL
// migrations in migrations/ column for column; request and response shapes
// live in handlers, never here.
package models

import (
	"time"

	"github.com/google/uuid"

	"github.com/tollgate/tollgate/caller"
)

// User is an account. Email is stored trimmed and lower-cased.
type User struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	Email         string
	PasswordHash  string
	Role          caller.Role
	Tier          caller.Tier
	EmailVerified bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// EmailVerificationToken is a single-use token mailed to a new account; only
// its SHA-256 hash is stored.
type EmailVerificationToken struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid"`
	TokenHash string
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

// RefreshToken is one link in a rotation chain (a family). Only its SHA-256
// hash is stored; ReplacedBy points at the token that rotated it out.
type RefreshToken struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID     uuid.UUID `gorm:"type:uuid"`
	FamilyID   uuid.UUID `gorm:"type:uuid"`
	TokenHash  string
	ExpiresAt  time.Time
	RevokedAt  *time.Time
	ReplacedBy *uuid.UUID `gorm:"type:uuid"`
	CreatedAt  time.Time
	ClientIP   string
	UserAgent  string
}

// Project is the example resource a fork replaces with its own.
type Project struct {
	ID          uuid.UUID `gorm:"type:uuid;primaryKey"`
	OwnerID     uuid.UUID `gorm:"type:uuid"`
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}
