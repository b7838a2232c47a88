// Package models holds the GORM models, one per table. They match the SQL
// migrations in migrations/ column for column; request and response shapes
// live in handlers, never here.
package models

import (
	"time"

	"github.com/google/uuid"
)

// Roles a user can hold, from least to most privileged.
const (
	RoleViewer = "viewer"
	RoleEditor = "editor"
	RoleAdmin  = "admin"
)

// Plans (tiers) that decide a user's rate limit.
const (
	TierFree       = "free"
	TierPaid       = "paid"
	TierEnterprise = "enterprise"
)

// User is an account. Email is stored trimmed and lower-cased.
type User struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	Email         string
	PasswordHash  string
	Role          string
	Tier          string
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
