package models

import (
	"time"

	"github.com/google/uuid"
)

// OrgDomain is a domain an organization claims; verified once its TXT
// record was seen, and then only by that organization.
type OrgDomain struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	OrgID      uuid.UUID `gorm:"type:uuid"`
	Domain     string
	Token      string // the TXT record's value
	VerifiedAt *time.Time
	CreatedAt  time.Time
}

// SSOConnection is an organization's identity provider: OpenID Connect or
// SAML 2.0.
type SSOConnection struct {
	ID      uuid.UUID `gorm:"type:uuid;primaryKey"`
	OrgID   uuid.UUID `gorm:"type:uuid"`
	Kind    string    // "oidc" or "saml"
	Name    string
	Enabled bool
	// OpenID Connect: the issuer (discovery) and the client registered there.
	Issuer       string
	ClientID     string
	ClientSecret string // sealed (MFA_KEY), bound to the connection's id
	Scopes       string // beyond openid, email and profile; space-separated
	KeyVersion   int
	// SAML: the IdP's metadata XML (entity id, SSO URL, signing certificates).
	IdPMetadata       string `gorm:"column:idp_metadata"`
	AllowIdPInitiated bool   `gorm:"column:allow_idp_initiated"`
	// Which attribute (SAML) or claim (OIDC) holds the address, the name
	// and the groups ("": the usual ones), and how groups map to roles.
	EmailAttribute  string
	NameAttribute   string
	GroupsAttribute string
	RoleMapping     string // JSON object: group -> role
	DefaultRole     string // a member in no mapped group ("": refused)
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// TableName names the connection table.
func (SSOConnection) TableName() string { return "sso_connections" }

// SAMLAssertion is an assertion ID already used, until it expires.
type SAMLAssertion struct {
	ID        string `gorm:"primaryKey"`
	ExpiresAt time.Time
}

// TableName names the used-assertion table.
func (SAMLAssertion) TableName() string { return "saml_assertions" }
