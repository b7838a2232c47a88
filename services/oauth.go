package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/product"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

// The token endpoint authentication methods (RFC 7591); a client must use
// the one it was registered with.
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
)

// MaxClientTokenTTL bounds a client's access-token lifetime.
const MaxClientTokenTTL = 24 * time.Hour

// Errors of the OAuth endpoints, in RFC 6749 section 5.2's shape.
var (
	errInvalidClient = apperror.NewOAuth(apperror.Unauthenticated, "invalid_client", "Client authentication failed")
	errInvalidScope  = apperror.NewOAuth(apperror.Invalid, "invalid_scope", "The requested scope is unknown or not allowed for this client")
	errNoAuthority   = apperror.NewOAuth(apperror.Invalid, "invalid_grant", "The client's owner no longer holds any of its scopes")
	errClientGone    = apperror.Define(apperror.NotFound, "client_not_found", "OAuth client not found")
	// errClientOwnerNotMember: a client acts for its owner's membership.
	errClientOwnerNotMember = apperror.Define(apperror.Forbidden, "membership_required", "A client acts for its owner in the organization: join it first")
	errClientDisabled       = apperror.Define(apperror.Conflict, "client_disabled", "This OAuth client is disabled")
	errClientTokenDead      = apperror.Define(apperror.Unauthenticated, "invalid_token", "Invalid token")
)

// OAuthConfig holds the client credentials rules.
type OAuthConfig struct {
	Audience      string        // this API's audience, the default for clients
	TokenTTL      time.Duration // default access-token lifetime
	RotationGrace time.Duration // how long a rotated-out secret works by default
	Peppers       Peppers
}

// Clients holds the OAuth 2.0 client credentials grant: registration,
// client authentication, token issue, revocation and introspection.
type Clients struct {
	db          *gorm.DB
	clock       clock.Clock
	log         *slog.Logger
	tokens      *Tokens
	revocations *Revocations
	audit       *Audit
	orgs        *Orgs // who manages an organization, for its own clients
	cfg         OAuthConfig
}

// NewClients builds the OAuth client service.
func NewClients(db *gorm.DB, clk clock.Clock, log *slog.Logger, tokens *Tokens, rev *Revocations, audit *Audit, orgs *Orgs, cfg OAuthConfig) *Clients {
	return &Clients{db: db, clock: clk, log: log, tokens: tokens, revocations: rev, audit: audit, orgs: orgs, cfg: cfg}
}

// NewClient is what Register needs.
type NewClient struct {
	Name       string
	Scopes     []caller.Scope
	Audience   string
	TokenTTL   time.Duration // 0: the default
	AuthMethod string        // "": client_secret_basic
}

// Register makes a client owned by owner (an admin) and returns it with its
// secret, shown this once.
func (s *Clients) Register(ctx context.Context, owner *caller.Caller, in NewClient, ip string) (*models.OAuthClient, string, error) {
	var details map[string]string
	in.Name, details = checkCredential(in.Name, in.Scopes, owner)
	if in.Audience == "" {
		in.Audience = s.cfg.Audience
	}
	if in.TokenTTL == 0 {
		in.TokenTTL = s.cfg.TokenTTL
	}
	if in.TokenTTL < time.Minute || in.TokenTTL > MaxClientTokenTTL {
		details["access_token_ttl"] = fmt.Sprintf("must be between 60 and %d seconds", int(MaxClientTokenTTL.Seconds()))
	}
	if in.AuthMethod == "" {
		in.AuthMethod = AuthBasic
	}
	if in.AuthMethod != AuthBasic && in.AuthMethod != AuthPost {
		details["token_endpoint_auth_method"] = "must be client_secret_basic or client_secret_post"
	}
	if len(details) > 0 {
		return nil, "", apperror.Validation(details)
	}
	id, err := randomBase62(22)
	if err != nil {
		return nil, "", apperror.Wrap(err, "make client id")
	}
	secret, err := randomBase62(43)
	if err != nil {
		return nil, "", apperror.Wrap(err, "make client secret")
	}
	c := &models.OAuthClient{
		ID: uuid.New(), ClientID: product.ClientIDPrefix + id, OwnerID: owner.ID, OrgID: owner.OrgID, Name: in.Name,
		Secret: s.cfg.Peppers.secret(secret), Scopes: caller.FormatScopes(caller.SortScopes(slices.Clone(in.Scopes))), Audience: in.Audience,
		TokenTTLSeconds: int(in.TokenTTL / time.Second), AuthMethod: in.AuthMethod, CreatedAt: s.clock.Now(),
	}
	if err := s.audit.Do(ctx, s.db, clientEvent("oauth_client.registered", c), func(tx *gorm.DB) error {
		return inOrg(ctx, tx, c.OrgID, func(tx *gorm.DB) error { return tx.Create(c).Error })
	}); err != nil {
		if errors.Is(err, gorm.ErrForeignKeyViolated) {
			return nil, "", errAccountGone
		}
		return nil, "", apperror.Wrap(err, "insert oauth client")
	}
	s.event("oauth_client.registered", owner, c, ip)
	return c, secret, nil
}

// List returns one page of clients, newest first.
func (s *Clients) List(ctx context.Context, p Page) (PageOf[models.OAuthClient], error) {
	var page PageOf[models.OAuthClient]
	err := acrossOrgs(ctx, s.db, func(tx *gorm.DB) (err error) {
		page, err = listPage(tx, p, true, func(m *models.OAuthClient) Cursor { return Cursor{CreatedAt: m.CreatedAt, ID: m.ID} })
		return err
	})
	if err != nil {
		return page, apperror.Wrap(err, "list oauth clients")
	}
	return page, nil
}

func (s *Clients) find(ctx context.Context, id uuid.UUID) (*models.OAuthClient, error) {
	var c models.OAuthClient
	err := acrossOrgs(ctx, s.db, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&c).Error })
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errClientGone
		}
		return nil, apperror.Wrap(err, "load oauth client")
	}
	return &c, nil
}

// RotateSecret gives a client a new secret; the old one keeps working for
// grace (nil: the default), so both are valid during the overlap.
func (s *Clients) RotateSecret(ctx context.Context, who *caller.Caller, id uuid.UUID, grace *time.Duration, ip string) (*models.OAuthClient, string, error) {
	g, err := rotationGrace(grace, s.cfg.RotationGrace)
	if err != nil {
		return nil, "", err
	}
	c, err := s.find(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return s.rotate(ctx, who, c, g, ip)
}

func (s *Clients) rotate(ctx context.Context, who *caller.Caller, c *models.OAuthClient, g time.Duration, ip string) (*models.OAuthClient, string, error) {
	if c.DisabledAt != nil {
		return nil, "", errClientDisabled
	}
	secret, err := randomBase62(43)
	if err != nil {
		return nil, "", apperror.Wrap(err, "make client secret")
	}
	if err := rotateSecret(ctx, s.db, s.audit, s.cfg.Peppers, c.OrgID, c, &c.Secret, secret, s.clock.Now().Add(g), clientEvent("oauth_client.secret_rotated", c)); err != nil {
		return nil, "", apperror.Wrap(err, "rotate client secret")
	}
	s.event("oauth_client.secret_rotated", who, c, ip)
	return c, secret, nil
}

// Disable stops a client: no new tokens, and its tokens are refused at
// once (the resource check loads the client). Disabling twice is fine.
func (s *Clients) Disable(ctx context.Context, who *caller.Caller, id uuid.UUID, ip string) error {
	c, err := s.find(ctx, id)
	if err != nil {
		return err
	}
	return s.disable(ctx, who, c, ip)
}

func (s *Clients) disable(ctx context.Context, who *caller.Caller, c *models.OAuthClient, ip string) error {
	if c.DisabledAt != nil {
		return nil
	}
	now := s.clock.Now()
	if err := s.audit.Do(ctx, s.db, clientEvent("oauth_client.disabled", c), func(tx *gorm.DB) error {
		return inOrg(ctx, tx, c.OrgID, func(tx *gorm.DB) error { return tx.Model(c).Update("disabled_at", now).Error })
	}); err != nil {
		return apperror.Wrap(err, "disable oauth client")
	}
	c.DisabledAt = &now
	s.event("oauth_client.disabled", who, c, ip)
	return nil
}

// An organization's own clients (/orgs/{id}/clients): its owners and
// admins register and manage them, each acting only in that organization;
// another organization's client is not found (404). Platform operators
// manage every organization's through the methods above.

// manages loads who's role in org: 404 for a non-member, 403 unless the
// role manages it.
func (s *Clients) manages(ctx context.Context, who *caller.Caller, org uuid.UUID) (caller.Role, error) {
	o, err := s.orgs.manager(ctx, s.db, who, org)
	if err != nil {
		return "", err
	}
	return o.Role, nil
}

// RegisterIn registers a client of org owned by who, with a subset of the
// scopes of who's role there (at every use, cut to that role as it is then).
func (s *Clients) RegisterIn(ctx context.Context, who *caller.Caller, org uuid.UUID, in NewClient, ip string) (*models.OAuthClient, string, error) {
	role, err := s.manages(ctx, who, org)
	if err != nil {
		return nil, "", err
	}
	// A client acts for its owner's membership: a platform operator who
	// manages org without belonging to it would register a client with
	// no scopes at all.
	var member int64
	if err := s.db.WithContext(ctx).Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", org, who.ID).Count(&member).Error; err != nil {
		return nil, "", apperror.Wrap(err, "check membership")
	}
	if member == 0 {
		return nil, "", errClientOwnerNotMember
	}
	acting := *who
	acting.OrgID, acting.OrgRole, acting.Role = org, role, role.RouteRole()
	return s.Register(ctx, &acting, in, ip)
}

// ListIn returns one page of org's clients, newest first.
func (s *Clients) ListIn(ctx context.Context, who *caller.Caller, org uuid.UUID, p Page) (PageOf[models.OAuthClient], error) {
	var page PageOf[models.OAuthClient]
	if _, err := s.manages(ctx, who, org); err != nil {
		return page, err
	}
	err := inOrg(ctx, s.db, org, func(tx *gorm.DB) (err error) {
		page, err = listPage(tx.Where("org_id = ?", org), p, true, func(m *models.OAuthClient) Cursor { return Cursor{CreatedAt: m.CreatedAt, ID: m.ID} })
		return err
	})
	if err != nil {
		return page, apperror.Wrap(err, "list oauth clients")
	}
	return page, nil
}

// findIn loads org's client id, for who (who must manage org).
func (s *Clients) findIn(ctx context.Context, who *caller.Caller, org, id uuid.UUID) (*models.OAuthClient, error) {
	if _, err := s.manages(ctx, who, org); err != nil {
		return nil, err
	}
	var c models.OAuthClient
	err := inOrg(ctx, s.db, org, func(tx *gorm.DB) error { return tx.Where("id = ? AND org_id = ?", id, org).Take(&c).Error })
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errClientGone
		}
		return nil, apperror.Wrap(err, "load oauth client")
	}
	return &c, nil
}

// RotateSecretIn is RotateSecret for org's own client.
func (s *Clients) RotateSecretIn(ctx context.Context, who *caller.Caller, org, id uuid.UUID, grace *time.Duration, ip string) (*models.OAuthClient, string, error) {
	g, err := rotationGrace(grace, s.cfg.RotationGrace)
	if err != nil {
		return nil, "", err
	}
	c, err := s.findIn(ctx, who, org, id)
	if err != nil {
		return nil, "", err
	}
	return s.rotate(ctx, who, c, g, ip)
}

// DisableIn is Disable for org's own client.
func (s *Clients) DisableIn(ctx context.Context, who *caller.Caller, org, id uuid.UUID, ip string) error {
	c, err := s.findIn(ctx, who, org, id)
	if err != nil {
		return err
	}
	return s.disable(ctx, who, c, ip)
}

// clientRow is a client with its owner's current standing in its
// organization.
type clientRow struct {
	models.OAuthClient
	OwnerStanding
}

// AuthenticatedClient is a client whose credentials checked out.
type AuthenticatedClient struct{ row *clientRow }

// ClientID is the client's client_id.
func (a *AuthenticatedClient) ClientID() string { return a.row.ClientID }

func (s *Clients) load(ctx context.Context, clientID string) (*clientRow, error) {
	var rows []clientRow
	// The client names its organization: looked up across them all.
	err := acrossOrgs(ctx, s.db, func(tx *gorm.DB) error {
		return tx.Table("oauth_clients").
			Select("oauth_clients.*, "+ownerColumns).Scopes(ownerJoins("oauth_clients", "owner_id")).
			Where("oauth_clients.client_id = ?", clientID).Limit(1).Scan(&rows).Error
	})
	if err != nil {
		return nil, apperror.Wrap(err, "load oauth client")
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// Authenticate checks a client's id and secret, sent with method. Every
// failure is the same invalid_client.
func (s *Clients) Authenticate(ctx context.Context, clientID, secret, method string) (*AuthenticatedClient, error) {
	if clientID == "" || secret == "" || len(clientID) > 100 || len(secret) > 200 {
		return nil, errInvalidClient
	}
	c, err := s.load(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		// Same work as a known client: no timing hint that the id exists.
		s.cfg.Peppers.hash(s.cfg.Peppers.Current, secret)
		return nil, errInvalidClient
	}
	current, previous := s.cfg.Peppers.check(c.Secret, secret, s.clock.Now())
	if (!current && !previous) || c.DisabledAt != nil || c.AuthMethod != method {
		return nil, errInvalidClient
	}
	if current && c.PepperVersion != s.cfg.Peppers.Current {
		if err := s.cfg.Peppers.moveToCurrent(ctx, s.db, &models.OAuthClient{}, c.OrgID, c.ID, secret); err != nil {
			s.log.Warn("oauth client: moving to the current pepper failed", "client_id", c.ClientID, "error", err)
		}
	}
	return &AuthenticatedClient{row: c}, nil
}

// IssuedToken is the token endpoint's answer.
type IssuedToken struct {
	AccessToken string
	ExpiresIn   int
	Scope       string
}

// allowedScopes are the client's scopes its owner's role still allows.
func (c *clientRow) allowedScopes() []caller.Scope {
	own, _, _ := caller.ParseScopes(c.Scopes)
	return caller.Intersect(own, c.OwnerRole.Scopes())
}

// Token issues an access token for the requested scope (space-separated;
// empty: every scope the client may have).
func (s *Clients) Token(ctx context.Context, ac *AuthenticatedClient, scope string) (*IssuedToken, error) {
	c := ac.row
	allowed := c.allowedScopes()
	if len(allowed) == 0 {
		return nil, errNoAuthority
	}
	granted := allowed
	if strings.TrimSpace(scope) != "" {
		asked, _, ok := caller.ParseScopes(scope)
		if !ok || !caller.Subset(asked, allowed) {
			return nil, errInvalidScope
		}
		granted = asked
	}
	ttl := time.Duration(c.TokenTTLSeconds) * time.Second
	raw, claims, err := s.tokens.IssueClient(c.ClientID, c.Audience, caller.FormatScopes(granted), ttl)
	if err != nil {
		return nil, apperror.Wrap(err, "sign client token")
	}
	s.log.Info("security event", "event", "oauth.token_issued", "actor_type", caller.Client, "client_id", c.ClientID, "jti", claims.ID, "scope", claims.Scope)
	s.audit.RecordAlone(ctx, Event{Action: "oauth.token_issued", Reason: claims.Scope, ActorType: string(caller.Client), ActorID: c.ClientID,
		TargetType: "token", TargetID: claims.ID})
	return &IssuedToken{AccessToken: raw, ExpiresIn: c.TokenTTLSeconds, Scope: claims.Scope}, nil
}

// Revoke revokes an access token issued to ac (RFC 7009). Unknown,
// invalid or foreign tokens are ignored: the answer is the same.
func (s *Clients) Revoke(ctx context.Context, ac *AuthenticatedClient, token string) {
	_, cc, valid := s.tokens.Inspect(token)
	if !valid || cc == nil || cc.ClientID != ac.row.ClientID {
		return
	}
	s.revocations.Revoke(ctx, cc.ID, cc.ExpiresAt.Time)
	s.log.Info("security event", "event", "oauth.token_revoked", "actor_type", caller.Client, "client_id", ac.row.ClientID, "jti", cc.ID)
}

// Introspection is RFC 7662's answer; only Active when inactive.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
}

// Introspect describes a token: a client's access token (active unless
// revoked, expired, or its client disabled) or a user's access token.
func (s *Clients) Introspect(ctx context.Context, token string) (Introspection, error) {
	uc, cc, valid := s.tokens.Inspect(token)
	if !valid {
		return Introspection{}, nil
	}
	if uc != nil {
		return Introspection{Active: true, Scope: uc.Scope, TokenType: "Bearer", Exp: uc.ExpiresAt.Unix(), Iat: unix(uc.IssuedAt),
			Sub: uc.Subject, Aud: strings.Join(uc.Audience, " "), Iss: uc.Issuer, Jti: uc.ID}, nil
	}
	if s.revocations.Revoked(ctx, cc.ID) {
		return Introspection{}, nil
	}
	c, err := s.load(ctx, cc.ClientID)
	if err != nil {
		return Introspection{}, err
	}
	if c == nil || c.DisabledAt != nil {
		return Introspection{}, nil
	}
	asked, _, _ := caller.ParseScopes(cc.Scope)
	return Introspection{Active: true, Scope: caller.FormatScopes(caller.Intersect(asked, c.allowedScopes())), ClientID: cc.ClientID, TokenType: "Bearer",
		Exp: cc.ExpiresAt.Unix(), Iat: unix(cc.IssuedAt), Sub: cc.Subject, Aud: strings.Join(cc.Audience, " "), Iss: cc.Issuer, Jti: cc.ID}, nil
}

func unix(d *jwt.NumericDate) int64 {
	if d == nil {
		return 0
	}
	return d.Unix()
}

// Caller turns a verified client token into the request's caller: refused
// when revoked or its client is disabled or gone; its scopes cut to what
// the client and its owner's role allow now.
func (s *Clients) Caller(ctx context.Context, cc *ClientClaims) (*caller.Caller, error) {
	if s.revocations.Revoked(ctx, cc.ID) {
		return nil, errClientTokenDead
	}
	c, err := s.load(ctx, cc.ClientID)
	if err != nil {
		return nil, err
	}
	if c == nil || c.DisabledAt != nil {
		return nil, errClientTokenDead
	}
	asked, _, _ := caller.ParseScopes(cc.Scope)
	who := c.caller(caller.Client, c.OwnerID, c.OrgID, caller.Intersect(asked, c.allowedScopes()))
	who.TokenID, who.ClientID, who.Bucket = cc.ID, c.ClientID, "client:"+c.ClientID
	return who, nil
}

// Metadata is RFC 8414's authorization server metadata.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
}

// Metadata describes this server to OAuth clients; baseURL is where it is
// reached (APP_BASE_URL).
func (s *Clients) Metadata(baseURL string) Metadata {
	methods := []string{AuthBasic, AuthPost}
	scopes := []string{}
	for _, sc := range caller.AllScopes() {
		scopes = append(scopes, string(sc))
	}
	return Metadata{
		Issuer: s.tokens.issuer, TokenEndpoint: baseURL + "/oauth/token", RevocationEndpoint: baseURL + "/oauth/revoke",
		IntrospectionEndpoint: baseURL + "/oauth/introspect", JWKSURI: baseURL + "/.well-known/jwks.json",
		GrantTypesSupported: []string{"client_credentials"}, TokenEndpointAuthMethodsSupported: methods,
		RevocationAuthMethodsSupported: methods, IntrospectionAuthMethodsSupported: methods,
		ScopesSupported: scopes, ResponseTypesSupported: []string{},
	}
}

func (s *Clients) event(action string, who *caller.Caller, c *models.OAuthClient, ip string) {
	s.log.Info("security event", "event", action, "actor_type", who.Kind, "actor_id", who.ID, "client_id", c.ClientID, "ip", ip)
}

// VerifyToken checks a client access token and returns its caller.
func (s *Clients) VerifyToken(ctx context.Context, raw string) (*caller.Caller, error) {
	cc, err := s.tokens.VerifyClient(raw)
	if err != nil {
		return nil, err
	}
	return s.Caller(ctx, cc)
}

func clientEvent(action string, c *models.OAuthClient) Event {
	return Event{Action: action, TargetType: "oauth_client", TargetID: c.ClientID}
}
