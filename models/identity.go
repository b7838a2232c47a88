package models

import (
	"time"

	"github.com/google/uuid"
)

// Identity links an identity provider's subject to a user: a sign-in with
// that provider as that subject is a sign-in as the user.
type Identity struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID        uuid.UUID `gorm:"type:uuid"`
	Provider      string
	Subject       string
	Email         string // as the provider last gave it
	EmailVerified bool
	CreatedAt     time.Time
	LastUsedAt    time.Time
}

// OAuthFlow is a sign-in with a provider in progress: what the callback
// must match (the state's and the browser binding's hashes) and what it
// needs (the nonce, the PKCE verifier, where to send the browser).
type OAuthFlow struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	StateHash     string
	BrowserHash   string
	Provider      string
	Nonce         string
	Verifier      string
	RedirectURI   string
	CodeChallenge string     // the front end's own PKCE challenge for the one-time code ("": none)
	LinkUserID    *uuid.UUID `gorm:"type:uuid"` // set: linking a provider to this user, not a sign-in
	ConnectionID  *uuid.UUID `gorm:"type:uuid"` // set: an organization's SSO connection (Provider is "sso:" and its id)
	ExpiresAt     time.Time
	UsedAt        *time.Time
	CreatedAt     time.Time
}

// OAuthCode is the one-time code a finished sign-in hands the front end,
// traded once, soon, for a token pair.
type OAuthCode struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	CodeHash      string
	UserID        uuid.UUID `gorm:"type:uuid"`
	Provider      string
	CodeChallenge string
	// Link: the code of a link, carrying the identity to link to UserID.
	Link          bool
	Subject       string
	Email         string
	EmailVerified bool
	OrgID         *uuid.UUID `gorm:"type:uuid"` // an SSO sign-in's organization: the session starts in it
	ExpiresAt     time.Time
	UsedAt        *time.Time
	CreatedAt     time.Time
}

// TableName names the sign-in flow table.
func (OAuthFlow) TableName() string { return "oauth_flows" }

// TableName names the one-time code table.
func (OAuthCode) TableName() string { return "oauth_codes" }
