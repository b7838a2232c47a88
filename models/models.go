// Package models holds the GORM models, one per table. They match the SQL
// migrations in migrations/ column for column; request and response shapes
// live in handlers, never here.
package models

import (
	"time"

	"github.com/google/uuid"

	"github.com/tollgate/tollgate/caller"
)

// User is an account. Email is stored trimmed and lower-cased. What the
// user may do is per organization (Membership); Tier is the account's own
// plan, which applies in organizations without a tier of their own.
type User struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	Email         string
	PasswordHash  string
	Tier          caller.Tier
	EmailVerified bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// PasswordChangedAt is when the password was last set (nil: never since
	// the account was made).
	PasswordChangedAt *time.Time
	// Name and PictureURL are what an identity provider last gave ("": none).
	Name       string
	PictureURL string
}

var userColumns = []string{"id", "email", "password_hash", "tier", "email_verified", "created_at", "updated_at", "password_changed_at", "name", "picture_url"}

// Columns and Fields let hot reads (every /users/me) scan users without
// reflection (see scan.Scannable).
func (*User) Columns() []string { return userColumns }

// Fields are the scan targets of Columns, in order.
func (u *User) Fields() []any {
	return []any{&u.ID, &u.Email, &u.PasswordHash, &u.Tier, &u.EmailVerified, &u.CreatedAt, &u.UpdatedAt, &u.PasswordChangedAt, &u.Name, &u.PictureURL}
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
	// OrgID is the session's active organization (nil: none).
	OrgID *uuid.UUID `gorm:"type:uuid"`
	// SuccessorSecret is the raw token that replaced this one, sealed with
	// MFA key SuccessorKeyVersion, kept for the reuse grace period only.
	SuccessorSecret     *string
	SuccessorKeyVersion *int
}

// Secret is how a credential's secret is kept: an HMAC made with the
// server pepper of PepperVersion and, for a while after a rotation, the
// previous secret's HMAC, valid until PreviousExpiresAt.
type Secret struct {
	SecretHash        string
	PepperVersion     int
	PreviousHash      *string
	PreviousPepper    *int
	PreviousExpiresAt *time.Time
}

// APIKey is a long-lived credential acting for its owner (UserID) with a
// subset of the owner's scopes. Only HMACs of secrets are stored.
type APIKey struct {
	ID           uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID       uuid.UUID `gorm:"type:uuid"`
	OrgID        uuid.UUID `gorm:"type:uuid"` // the one organization it acts in
	Name         string
	Start        string // the key's first characters, to tell keys apart
	Secret       `gorm:"embedded"`
	Scopes       string // space-separated
	AllowedCIDRs string `gorm:"column:allowed_cidrs"` // comma-separated; empty: any address
	RateLimit    string // LIMIT/WINDOW below the owner's tier; empty: the tier's
	ExpiresAt    *time.Time
	RevokedAt    *time.Time
	LastUsedAt   *time.Time
	CreatedAt    time.Time
}

// OAuthClient is a machine client of the client credentials grant, acting
// for its owner (the admin who registered it) with a subset of the owner's
// scopes. Only HMACs of secrets are stored.
type OAuthClient struct {
	ID              uuid.UUID `gorm:"type:uuid;primaryKey"`
	ClientID        string
	OwnerID         uuid.UUID `gorm:"type:uuid"`
	OrgID           uuid.UUID `gorm:"type:uuid"` // the one organization it acts in
	Name            string
	Secret          `gorm:"embedded"`
	Scopes          string // space-separated
	Audience        string
	TokenTTLSeconds int
	AuthMethod      string // client_secret_basic or client_secret_post
	DisabledAt      *time.Time
	CreatedAt       time.Time
}

// TableName keeps GORM from naming the table o_auth_clients.
func (OAuthClient) TableName() string { return "oauth_clients" }

// OutboxMail is one message waiting for, or done with, delivery.
type OutboxMail struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	ToAddress string
	Subject   string
	// Body is AES-GCM ciphertext under the MFA key of KeyVersion (0: clear,
	// rows from before encryption), emptied once the mail is sent or
	// abandoned: links in it open accounts.
	Body          string
	KeyVersion    int
	Status        string // pending, sent or abandoned
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	SentAt        *time.Time
}

// TableName names the outbox table.
func (OutboxMail) TableName() string { return "mail_outbox" }

// PasswordResetToken is a single-use token mailed by "forgot password";
// only its SHA-256 hash is stored.
type PasswordResetToken struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid"`
	TokenHash string
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

// AuditEvent is one row of the audit log (a hash chain; see the migration).
type AuditEvent struct {
	Seq        int64 `gorm:"primaryKey;autoIncrement:false"`
	OccurredAt time.Time
	ActorType  string // user, api_key, client, system, anonymous
	ActorID    string
	Action     string // e.g. auth.login, password.reset
	Outcome    string // success or failure
	Reason     string
	TargetType string
	TargetID   string
	IP         string `gorm:"column:ip"`
	UserAgent  string
	RequestID  string
	OrgID      string // the organization it happened in ("": none)
	PrevHash   string
	Hash       string
}

// AuditChain is the head and the anchor of the audit hash chain (one row).
type AuditChain struct {
	ID         int `gorm:"primaryKey"`
	LastSeq    int64
	LastHash   string
	AnchorSeq  int64
	AnchorHash string
}

// TableName names the chain table.
func (AuditChain) TableName() string { return "audit_chain" }

// MFATOTP is a user's TOTP enrolment; Secret is AES-GCM ciphertext.
type MFATOTP struct {
	UserID      uuid.UUID `gorm:"type:uuid;primaryKey"`
	Secret      string
	KeyVersion  int
	ConfirmedAt *time.Time
	LastStep    int64
	CreatedAt   time.Time
}

// TableName names the TOTP table.
func (MFATOTP) TableName() string { return "mfa_totp" }

// MFARecoveryCode is one single-use recovery code (hashed).
type MFARecoveryCode struct {
	ID       uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID   uuid.UUID `gorm:"type:uuid"`
	CodeHash string
	// KeyVersion is the MFA key the hash is keyed with (0: unkeyed SHA-256,
	// codes from before keyed hashes).
	KeyVersion int
	UsedAt     *time.Time
	CreatedAt  time.Time
}

// TableName names the recovery code table.
func (MFARecoveryCode) TableName() string { return "mfa_recovery_codes" }

// MFAChallenge is a pending second step of a login (the mfa_token).
type MFAChallenge struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid"`
	TokenHash string
	ExpiresAt time.Time
	UsedAt    *time.Time
	Attempts  int
	ClientIP  string
	UserAgent string
	CreatedAt time.Time
}

// TableName names the challenge table.
func (MFAChallenge) TableName() string { return "mfa_challenges" }

// IPRule allows or blocks a CIDR, from the admin API or made after
// repeated rate-limit refusals (Source auto); ExpiresAt nil: until removed.
type IPRule struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	CIDR      string    `gorm:"column:cidr"`
	Action    string    // allow or block
	Source    string    // admin or auto
	Reason    string
	CreatedBy *uuid.UUID `gorm:"type:uuid"`
	CreatedAt time.Time
	ExpiresAt *time.Time
}

// WebhookEndpoint is a receiver of auth events (Standard Webhooks). Secret
// is sealed with MFA key KeyVersion; the previous one signs too until
// PreviousExpiresAt (a rotation's overlap).
type WebhookEndpoint struct {
	ID                 uuid.UUID `gorm:"type:uuid;primaryKey"`
	URL                string
	Description        string
	Events             string // comma-separated event types, or "*"
	Secret             string
	KeyVersion         int
	PreviousSecret     *string
	PreviousKeyVersion *int
	PreviousExpiresAt  *time.Time
	DisabledAt         *time.Time
	CreatedBy          *uuid.UUID `gorm:"type:uuid"`
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// WebhookMessage is one event for one endpoint: the outbox row, and its
// delivery log.
type WebhookMessage struct {
	ID            string    // the webhook-id header: msg_...
	EndpointID    uuid.UUID `gorm:"type:uuid"`
	EventType     string
	Payload       string
	Status        string // pending, delivered or dead
	Attempts      int
	NextAttemptAt time.Time
	LastStatus    int
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
}
