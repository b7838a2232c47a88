package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

// Enterprise SSO: an organization's owners and admins register its identity
// providers (OpenID Connect or SAML 2.0) and prove the domains its people's
// addresses are in with a DNS TXT record. An address in a verified domain
// finds its organization's connection (Discover); a sign-in through a
// connection is accepted only for an address in one of that organization's
// verified domains, so an IdP an organization controls cannot vouch for
// anyone else. The IdP's groups map to the member's role at every sign-in.

// TXTResolver looks up TXT records (net.DefaultResolver in production, a
// map in tests).
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// SSOConfig holds what enterprise SSO needs beyond the social sign-in's.
type SSOConfig struct {
	Resolver TXTResolver
	// AllowPrivateNetworks lets connections reach loopback and private
	// addresses (development and tests; an org admin's URL must not reach
	// the server's own network otherwise).
	AllowPrivateNetworks bool
	// ClockSkew is the leeway on SAML NotBefore / NotOnOrAfter.
	ClockSkew time.Duration
}

const (
	connOIDC           = "oidc"
	connSAML           = "saml"
	domainChallenge    = "_tollgate-challenge." // the TXT record's name, before the domain
	domainTokenPrefix  = "tollgate-domain-verification="
	ssoProviderPrefix  = "sso:"
	maxMetadataBytes   = 1 << 20
	secretPurposeSSO   = "sso-client-secret"
	failDomainNotOwned = "sso_domain_not_verified" // the address is not in the org's verified domains
	failNoRole         = "sso_no_role"             // the IdP's groups map to no role here
	failAssertion      = "saml_assertion_invalid"  // signature, audience, time, replay...
)

var (
	errConnNotFound    = apperror.Define(apperror.NotFound, "sso_connection_not_found", "No such SSO connection")
	errConnInvalid     = apperror.Define(apperror.Invalid, "sso_connection_invalid", "The connection's settings are not valid")
	errConnUnreachable = apperror.Define(apperror.Invalid, "sso_discovery_failed", "The issuer's OpenID Connect discovery or the metadata URL could not be read")
	errDomainNotFound  = apperror.Define(apperror.NotFound, "domain_not_found", "No such domain")
	errDomainInvalid   = apperror.Define(apperror.Invalid, "invalid_domain", "Not a domain name (example.com)")
	errDomainClaimed   = apperror.Define(apperror.Conflict, "domain_taken", "This domain is verified by another organization")
	errDomainUnproven  = apperror.Define(apperror.Invalid, "domain_not_verified", "The TXT record was not found: publish it and try again (DNS may take a while)")
	errSSONotFound     = apperror.Define(apperror.NotFound, "sso_not_found", "No single sign-on for this address: sign in another way")
	errSSORequired     = apperror.Define(apperror.Forbidden, "sso_required", "Your organization signs you in through its identity provider: use POST /auth/sso/discover")
	errEnforceNeedsSSO = apperror.Define(apperror.Conflict, "sso_connection_required", "Enforcing SSO needs an enabled connection and a verified domain first")
	errPrivateAddress  = errors.New("address not reachable from here (private network)")
	errNoPlace         = errors.New("no role in the organization")
)

// ConnectionInput creates or changes a connection; nil or "" leaves a
// field as it is on a change.
type ConnectionInput struct {
	Kind, Name                     string
	Enabled, AllowIdPInitiated     *bool
	Issuer, ClientID, ClientSecret string
	Scopes                         []string // nil: unchanged
	MetadataXML, MetadataURL       string
	EmailAttribute, NameAttribute  *string
	GroupsAttribute, DefaultRole   *string
	RoleMapping                    map[string]string
}

// Connection is a connection as its managers see it (never its secret).
type Connection struct {
	models.SSOConnection
	Mapping         map[string]string
	HasClientSecret bool
	IdPEntityID     string // SAML: the IdP's entity id, from its metadata
}

func (s *Federation) view(c *models.SSOConnection) *Connection {
	out := &Connection{SSOConnection: *c, HasClientSecret: c.ClientSecret != "", Mapping: map[string]string{}}
	_ = json.Unmarshal([]byte(c.RoleMapping), &out.Mapping)
	if c.Kind == connSAML {
		if md, err := parseIdPMetadata([]byte(c.IdPMetadata)); err == nil {
			out.IdPEntityID = md.entityID
		}
	}
	out.ClientSecret = ""
	return out
}

// CreateConnection registers an identity provider for org.
func (s *Federation) CreateConnection(ctx context.Context, who *caller.Caller, org uuid.UUID, in ConnectionInput) (*Connection, error) {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	c := &models.SSOConnection{ID: uuid.New(), OrgID: org, Kind: in.Kind, Enabled: true, RoleMapping: "{}", DefaultRole: string(caller.Viewer),
		CreatedAt: now, UpdatedAt: now}
	if in.Kind != connOIDC && in.Kind != connSAML {
		return nil, errConnInvalid.WithMessage("kind must be oidc or saml")
	}
	if err := s.applyConnection(ctx, c, in, true); err != nil {
		return nil, err
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(c).Error; err != nil {
			return apperror.Wrap(err, "insert connection")
		}
		return s.audit.Record(ctx, tx, Event{Action: "sso.connection_created", Reason: c.Kind, OrgID: org.String(), TargetType: "sso_connection", TargetID: c.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	return s.view(c), nil
}

// applyConnection validates in onto c (create: every required field).
func (s *Federation) applyConnection(ctx context.Context, c *models.SSOConnection, in ConnectionInput, create bool) error {
	if in.Name != "" || create {
		name := strings.TrimSpace(in.Name)
		if name == "" || utf8.RuneCountInString(name) > 100 {
			return errConnInvalid.WithMessage("name: 1 to 100 characters")
		}
		c.Name = name
	}
	for _, f := range []struct {
		in  *string
		out *string
	}{{in.EmailAttribute, &c.EmailAttribute}, {in.NameAttribute, &c.NameAttribute}, {in.GroupsAttribute, &c.GroupsAttribute}} {
		if f.in != nil {
			if len(*f.in) > 200 {
				return errConnInvalid.WithMessage("attribute names: at most 200 characters")
			}
			*f.out = *f.in
		}
	}
	if in.Enabled != nil {
		c.Enabled = *in.Enabled
	}
	if in.AllowIdPInitiated != nil {
		if *in.AllowIdPInitiated && c.Kind != connSAML {
			return errConnInvalid.WithMessage("allow_idp_initiated: SAML connections only")
		}
		c.AllowIdPInitiated = *in.AllowIdPInitiated
	}
	if in.DefaultRole != nil {
		if r := caller.Role(*in.DefaultRole); r != "" && !mappable(r) {
			return errConnInvalid.WithMessage("default_role: viewer, editor, admin or empty (refuse members in no mapped group)")
		}
		c.DefaultRole = *in.DefaultRole
	}
	if in.RoleMapping != nil {
		if len(in.RoleMapping) > 100 {
			return errConnInvalid.WithMessage("role_mapping: at most 100 groups")
		}
		for g, r := range in.RoleMapping {
			if g == "" || len(g) > 200 || !mappable(caller.Role(r)) {
				return errConnInvalid.WithMessage("role_mapping: group names (1 to 200 characters) to viewer, editor or admin")
			}
		}
		raw, _ := json.Marshal(in.RoleMapping)
		c.RoleMapping = string(raw)
	}
	switch c.Kind {
	case connOIDC:
		if in.MetadataXML != "" || in.MetadataURL != "" {
			return errConnInvalid.WithMessage("metadata_xml and metadata_url are for SAML connections")
		}
		if in.Issuer != "" || create {
			if err := s.checkURL(in.Issuer); err != nil {
				return errConnInvalid.WithMessage("issuer: " + err.Error())
			}
			c.Issuer = strings.TrimSuffix(in.Issuer, "/")
		}
		if in.ClientID != "" || create {
			if in.ClientID == "" || len(in.ClientID) > 500 {
				return errConnInvalid.WithMessage("client_id is required (at most 500 characters)")
			}
			c.ClientID = in.ClientID
		}
		if in.Scopes != nil {
			for _, sc := range in.Scopes {
				if sc == "" || len(sc) > 100 || strings.ContainsAny(sc, " \t\r\n") {
					return errConnInvalid.WithMessage("scopes: words without spaces, at most 100 characters each")
				}
			}
			if len(in.Scopes) > 20 {
				return errConnInvalid.WithMessage("scopes: at most 20")
			}
			c.Scopes = strings.Join(in.Scopes, " ")
		}
		if in.ClientSecret != "" || create {
			if in.ClientSecret == "" || len(in.ClientSecret) > 500 {
				return errConnInvalid.WithMessage("client_secret is required (at most 500 characters)")
			}
			sealed, err := s.accountDeps.cfg.MFAKeys.sealFor(secretPurposeSSO, in.ClientSecret, c.ID[:])
			if err != nil {
				return apperror.Wrap(err, "seal client secret")
			}
			c.ClientSecret, c.KeyVersion = sealed, s.accountDeps.cfg.MFAKeys.Current
		}
		if in.Issuer != "" || create {
			// Discovery now, so a typo is a 400 here, not a failed sign-in later.
			if _, err := s.discover(ctx, c.Issuer); err != nil {
				s.log.Info("sso discovery failed", "issuer", c.Issuer, "error", err)
				return errConnUnreachable
			}
		}
	case connSAML:
		if in.Issuer != "" || in.ClientID != "" || in.ClientSecret != "" || in.Scopes != nil {
			return errConnInvalid.WithMessage("issuer, client_id, client_secret and scopes are for OpenID Connect connections")
		}
		raw := []byte(in.MetadataXML)
		if in.MetadataURL != "" {
			if in.MetadataXML != "" {
				return errConnInvalid.WithMessage("metadata_xml or metadata_url, not both")
			}
			if err := s.checkURL(in.MetadataURL); err != nil {
				return errConnInvalid.WithMessage("metadata_url: " + err.Error())
			}
			var err error
			if raw, err = s.fetch(ctx, in.MetadataURL); err != nil {
				s.log.Info("saml metadata fetch failed", "url", in.MetadataURL, "error", err)
				return errConnUnreachable
			}
		}
		if len(raw) > 0 || create {
			if len(raw) == 0 {
				return errConnInvalid.WithMessage("metadata_xml or metadata_url is required")
			}
			if _, err := parseIdPMetadata(raw); err != nil {
				return errConnInvalid.WithMessage("IdP metadata: " + err.Error())
			}
			c.IdPMetadata = string(raw)
		}
	}
	return nil
}

func mappable(r caller.Role) bool {
	return r == caller.Viewer || r == caller.Editor || r == caller.Admin
}

// checkURL allows https, and http only to loopback where private networks
// are allowed (development).
func (s *Federation) checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || len(raw) > 2000 || err != nil || u.Host == "" || u.User != nil:
		return errors.New("an https URL is required")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && s.cfg.SSO.AllowPrivateNetworks && isLoopback(u.Hostname()):
		return nil
	}
	return errors.New("must be https")
}

// outbound is the HTTP client connections use: an org admin's URL, so it
// refuses loopback, private and link-local addresses at connect time
// (after DNS, so a name that resolves inward is refused too).
// One client for all of them, so connections are pooled, not leaked.
func (s *Federation) outbound() *http.Client {
	s.outboundOnce.Do(func() { s.outboundHTTP = s.newOutbound() })
	return s.outboundHTTP
}

func (s *Federation) newOutbound() *http.Client {
	if s.cfg.HTTPClient != nil && s.cfg.SSO.AllowPrivateNetworks {
		return s.cfg.HTTPClient
	}
	return guardedClient(s.cfg.SSO.AllowPrivateNetworks, 10*time.Second)
}

func (s *Federation) fetch(ctx context.Context, raw string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.outbound().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", raw, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes))
}

func (s *Federation) orgConnection(ctx context.Context, db *gorm.DB, org, id uuid.UUID) (*models.SSOConnection, error) {
	var c models.SSOConnection
	err := db.WithContext(ctx).Where("id = ? AND org_id = ?", id, org).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errConnNotFound
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load connection")
	}
	return &c, nil
}

// Connections lists org's connections (its owners and admins).
func (s *Federation) Connections(ctx context.Context, who *caller.Caller, org uuid.UUID) ([]*Connection, error) {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return nil, err
	}
	var rows []models.SSOConnection
	if err := s.db.WithContext(ctx).Where("org_id = ?", org).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, apperror.Wrap(err, "list connections")
	}
	out := make([]*Connection, 0, len(rows))
	for i := range rows {
		out = append(out, s.view(&rows[i]))
	}
	return out, nil
}

// GetConnection is one of org's connections.
func (s *Federation) GetConnection(ctx context.Context, who *caller.Caller, org, id uuid.UUID) (*Connection, error) {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return nil, err
	}
	c, err := s.orgConnection(ctx, s.db, org, id)
	if err != nil {
		return nil, err
	}
	return s.view(c), nil
}

// UpdateConnection changes one of org's connections.
func (s *Federation) UpdateConnection(ctx context.Context, who *caller.Caller, org, id uuid.UUID, in ConnectionInput) (*Connection, error) {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return nil, err
	}
	c, err := s.orgConnection(ctx, s.db, org, id)
	if err != nil {
		return nil, err
	}
	if in.Kind != "" && in.Kind != c.Kind {
		return nil, errConnInvalid.WithMessage("kind cannot change: make a new connection")
	}
	if err := s.applyConnection(ctx, c, in, false); err != nil {
		return nil, err
	}
	c.UpdatedAt = s.clock.Now()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Select("*").Omit("id", "org_id", "kind", "created_at").Updates(c).Error; err != nil {
			return apperror.Wrap(err, "update connection")
		}
		return s.audit.Record(ctx, tx, Event{Action: "sso.connection_updated", OrgID: org.String(), TargetType: "sso_connection", TargetID: c.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	return s.view(c), nil
}

// DeleteConnection removes one of org's connections; its members' linked
// sign-ins through it go with it.
func (s *Federation) DeleteConnection(ctx context.Context, who *caller.Caller, org, id uuid.UUID) error {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Delete(&models.SSOConnection{}, "id = ? AND org_id = ?", id, org)
		if res.Error != nil {
			return apperror.Wrap(res.Error, "delete connection")
		}
		if res.RowsAffected == 0 {
			return errConnNotFound
		}
		if err := tx.Delete(&models.Identity{}, "provider = ?", ssoProviderPrefix+id.String()).Error; err != nil {
			return apperror.Wrap(err, "delete identities")
		}
		return s.audit.Record(ctx, tx, Event{Action: "sso.connection_deleted", OrgID: org.String(), TargetType: "sso_connection", TargetID: id.String()})
	})
}

// NormalizeDomain lowercases a domain name and checks its shape ("" when
// it is not one).
func NormalizeDomain(d string) string {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if len(d) > 253 || !strings.Contains(d, ".") {
		return ""
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return ""
		}
		for _, r := range label {
			if ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-'; !ok {
				return ""
			}
		}
	}
	return d
}

// DomainRecord is the TXT record that proves a domain.
func DomainRecord(d *models.OrgDomain) (name, value string) {
	return domainChallenge + d.Domain, domainTokenPrefix + d.Token
}

// AddDomain claims a domain for org, unverified until VerifyDomain sees its
// TXT record. Claiming again answers the same claim (and its token).
func (s *Federation) AddDomain(ctx context.Context, who *caller.Caller, org uuid.UUID, domain string) (*models.OrgDomain, error) {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return nil, err
	}
	domain = NormalizeDomain(domain)
	if domain == "" {
		return nil, errDomainInvalid
	}
	var d models.OrgDomain
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("org_id = ? AND domain = ?", org, domain).Take(&d).Error
		if err == nil {
			return nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return apperror.Wrap(err, "load domain")
		}
		token, err := newOpaqueToken(24)
		if err != nil {
			return apperror.Wrap(err, "make domain token")
		}
		d = models.OrgDomain{ID: uuid.New(), OrgID: org, Domain: domain, Token: token, CreatedAt: s.clock.Now()}
		if err := tx.Create(&d).Error; err != nil {
			return apperror.Wrap(err, "insert domain")
		}
		return s.audit.Record(ctx, tx, Event{Action: "sso.domain_added", Reason: domain, OrgID: org.String(), TargetType: "domain", TargetID: d.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Domains lists org's domains.
func (s *Federation) Domains(ctx context.Context, who *caller.Caller, org uuid.UUID) ([]models.OrgDomain, error) {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return nil, err
	}
	out := []models.OrgDomain{}
	if err := s.db.WithContext(ctx).Where("org_id = ?", org).Order("domain").Find(&out).Error; err != nil {
		return nil, apperror.Wrap(err, "list domains")
	}
	return out, nil
}

func (s *Federation) orgDomain(ctx context.Context, org, id uuid.UUID) (*models.OrgDomain, error) {
	var d models.OrgDomain
	err := s.db.WithContext(ctx).Where("id = ? AND org_id = ?", id, org).Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errDomainNotFound
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load domain")
	}
	return &d, nil
}

// VerifyDomain looks up the domain's TXT record and, when it carries the
// token, marks the domain verified: 409 when another organization
// verified it first.
func (s *Federation) VerifyDomain(ctx context.Context, who *caller.Caller, org, id uuid.UUID) (*models.OrgDomain, error) {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return nil, err
	}
	d, err := s.orgDomain(ctx, org, id)
	if err != nil || d.VerifiedAt != nil {
		return d, err
	}
	name, want := DomainRecord(d)
	lookup, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	records, err := s.cfg.SSO.Resolver.LookupTXT(lookup, name)
	if err != nil || !slices.Contains(records, want) {
		s.audit.RecordAlone(ctx, Event{Action: "sso.domain_verify_failed", Outcome: Failure, Reason: d.Domain, OrgID: org.String(), TargetType: "domain", TargetID: d.ID.String()})
		return nil, errDomainUnproven
	}
	now := s.clock.Now()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(d).Update("verified_at", now).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return errDomainClaimed
			}
			return apperror.Wrap(err, "verify domain")
		}
		return s.audit.Record(ctx, tx, Event{Action: "sso.domain_verified", Reason: d.Domain, OrgID: org.String(), TargetType: "domain", TargetID: d.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	d.VerifiedAt = &now
	return d, nil
}

// RemoveDomain gives up a domain.
func (s *Federation) RemoveDomain(ctx context.Context, who *caller.Caller, org, id uuid.UUID) error {
	if _, err := s.orgs.manager(ctx, s.db, who, org); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Delete(&models.OrgDomain{}, "id = ? AND org_id = ?", id, org)
		if res.Error != nil {
			return apperror.Wrap(res.Error, "delete domain")
		}
		if res.RowsAffected == 0 {
			return errDomainNotFound
		}
		return s.audit.Record(ctx, tx, Event{Action: "sso.domain_removed", OrgID: org.String(), TargetType: "domain", TargetID: id.String()})
	})
}

// Discovered is the connection an address signs in through.
type Discovered struct {
	ConnectionID uuid.UUID
	Kind, Name   string
	OrgID        uuid.UUID
	Enforced     bool
}

// Discover names the enabled connection for email's domain, when an
// organization verified it (home-realm discovery).
func (s *Federation) Discover(ctx context.Context, email string) (*Discovered, error) {
	email = NormalizeEmail(email)
	at := strings.LastIndexByte(email, '@')
	if at < 0 || CheckEmail(email) != "" {
		return nil, errSSONotFound
	}
	var rows []struct {
		ID          uuid.UUID
		Kind, Name  string
		OrgID       uuid.UUID
		SSOEnforced bool
	}
	err := s.db.WithContext(ctx).Table("org_domains").
		Select("sso_connections.id, sso_connections.kind, sso_connections.name, sso_connections.org_id, organizations.sso_enforced").
		Joins("JOIN sso_connections ON sso_connections.org_id = org_domains.org_id AND sso_connections.enabled = ?", true).
		Joins("JOIN organizations ON organizations.id = org_domains.org_id").
		Where("org_domains.domain = ? AND org_domains.verified_at IS NOT NULL", email[at+1:]).
		Order("sso_connections.created_at, sso_connections.id").Limit(1).Scan(&rows).Error
	if err != nil {
		return nil, apperror.Wrap(err, "discover connection")
	}
	if len(rows) == 0 {
		return nil, errSSONotFound
	}
	r := rows[0]
	return &Discovered{ConnectionID: r.ID, Kind: r.Kind, Name: r.Name, OrgID: r.OrgID, Enforced: r.SSOEnforced}, nil
}

// enforcedSSO answers errSSORequired when u belongs, other than as an
// owner, to an organization that enforces SSO: such a member signs in
// only through it.
func enforcedSSO(db *gorm.DB, u *models.User) error {
	var n int64
	err := db.Table("memberships").Joins("JOIN organizations ON organizations.id = memberships.org_id").
		Where("memberships.user_id = ? AND organizations.sso_enforced = ? AND memberships.role <> ?", u.ID, true, caller.Owner).Count(&n).Error
	if err != nil {
		return apperror.Wrap(err, "check sso enforcement")
	}
	if n > 0 {
		return errSSORequired
	}
	return nil
}

// canEnforce is nil when org has an enabled connection and a verified
// domain: enforcing SSO without them would lock its members out.
func canEnforce(tx *gorm.DB, org uuid.UUID) error {
	var conns, domains int64
	if err := tx.Model(&models.SSOConnection{}).Where("org_id = ? AND enabled = ?", org, true).Count(&conns).Error; err != nil {
		return apperror.Wrap(err, "count connections")
	}
	if err := tx.Model(&models.OrgDomain{}).Where("org_id = ? AND verified_at IS NOT NULL", org).Count(&domains).Error; err != nil {
		return apperror.Wrap(err, "count domains")
	}
	if conns == 0 || domains == 0 {
		return errEnforceNeedsSSO
	}
	return nil
}

// ssoSignIn finds or makes the member c's IdP signed in. The address must
// be in one of c's organization's verified domains (else that IdP would
// speak for another organization's people); within them the IdP is the
// authority on addresses, so an account with the address is linked (and
// an unverified one claimed, as in resolve). The role follows the IdP's
// groups at every sign-in; an owner's membership is left alone (owners are
// managed here, not by an IdP).
func (s *Federation) ssoSignIn(ctx context.Context, c *models.SSOConnection, who claimed) (*models.User, string, error) {
	who.Email = NormalizeEmail(who.Email)
	who.EmailVerified = true // by the verified domain, checked next
	at := strings.LastIndexByte(who.Email, '@')
	if who.Subject == "" || at < 0 || CheckEmail(who.Email) != "" {
		return nil, failUnverified, nil
	}
	var owned int64
	if err := s.db.WithContext(ctx).Model(&models.OrgDomain{}).Where("org_id = ? AND domain = ? AND verified_at IS NOT NULL", c.OrgID, who.Email[at+1:]).
		Count(&owned).Error; err != nil {
		return nil, "", apperror.Wrap(err, "check domain")
	}
	if owned == 0 {
		return nil, failDomainNotOwned, nil
	}
	role := mapRole(c, who.Groups)
	provider := ssoProviderPrefix + c.ID.String()
	var u *models.User
	reason, changed := "", false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if u, err = s.known(tx, provider, who); err != nil {
			return err
		}
		if u == nil {
			local, err := userByEmail(tx, who.Email)
			if err != nil {
				return err
			}
			if u, err = s.adopt(ctx, tx, provider, who, local, c.OrgID.String(), func(*models.User) error { return nil }); err != nil {
				return err
			}
		}
		ok, ch, err := s.syncRole(ctx, tx, c, u.ID, role)
		if err != nil {
			return err
		}
		changed = ch
		if !ok && !ch {
			return errNoPlace // nothing to keep: no account or link is made for someone the org does not admit
		}
		if !ok {
			reason = failNoRole // the membership removal stays
		}
		return nil
	})
	if errors.Is(err, errNoPlace) {
		return nil, failNoRole, nil
	}
	if err != nil {
		return nil, "", err
	}
	if changed {
		s.orgs.endUser(ctx, u.ID) // the old role's access tokens end; the new pair carries the new one
	}
	return u, reason, nil
}

// mapRole is the role c's mapping gives groups: the highest a group maps
// to, else the default ("": none).
func mapRole(c *models.SSOConnection, groups []string) caller.Role {
	var mapping map[string]string
	_ = json.Unmarshal([]byte(c.RoleMapping), &mapping)
	rank := map[caller.Role]int{caller.Viewer: 1, caller.Editor: 2, caller.Admin: 3}
	best := caller.Role("")
	for _, g := range groups {
		if r := caller.Role(mapping[g]); rank[r] > rank[best] {
			best = r
		}
	}
	if best == "" {
		best = caller.Role(c.DefaultRole)
	}
	return best
}

// syncRole makes user a member of c's organization with role: joins, or
// changes the role; with no role ("") the membership ends. An owner stays
// an owner. ok is false when the person has no place in the org; changed, when
// an existing membership changed (its tokens must end).
func (s *Federation) syncRole(ctx context.Context, tx *gorm.DB, c *models.SSOConnection, user uuid.UUID, role caller.Role) (ok, changed bool, err error) {
	var m models.Membership
	err = tx.Where("org_id = ? AND user_id = ?", c.OrgID, user).Take(&m).Error
	found := err == nil
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return false, false, apperror.Wrap(err, "load membership")
	}
	ev := Event{OrgID: c.OrgID.String(), Reason: ssoProviderPrefix + c.ID.String(), TargetType: "user", TargetID: user.String()}
	switch {
	case found && m.Role == caller.Owner:
		return true, false, nil
	case found && role == m.Role:
		return true, false, nil
	case found && role == "":
		if err := tx.Delete(&models.Membership{}, "org_id = ? AND user_id = ?", c.OrgID, user).Error; err != nil {
			return false, false, apperror.Wrap(err, "remove member")
		}
		ev.Action = "org.member_removed"
	case found:
		if err := tx.Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", c.OrgID, user).Update("role", role).Error; err != nil {
			return false, false, apperror.Wrap(err, "set role")
		}
		ev.Action = "org.member_role_changed"
		ev.Reason += ":" + string(m.Role) + "->" + string(role)
	case role == "":
		return false, false, nil
	default:
		if err := tx.Create(&models.Membership{OrgID: c.OrgID, UserID: user, Role: role, CreatedAt: s.clock.Now()}).Error; err != nil {
			return false, false, apperror.Wrap(err, "add member")
		}
		ev.Action = "org.member_added"
	}
	if err := s.audit.Record(ctx, tx, ev); err != nil {
		return false, false, err
	}
	return role != "", found, nil
}
