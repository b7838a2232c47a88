package services

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/tollgate/tollgate/cache"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

// Claims are the access token's claims: the token's wire format. Requests
// carry the caller they describe (Caller), not the claims.
type Claims struct {
	// Role is what the route table knows the user as in the organization
	// (viewer, editor, admin: an owner is an admin); OrgRole is the role
	// itself. Tier is the organization's, or the user's where it has none.
	Role string `json:"role"`
	Tier string `json:"tier"`
	// OrgID is the active organization (absent: none); OrgTier its own
	// tier, which its org-wide budget follows (absent: it has none).
	OrgID   string `json:"org_id,omitempty"`
	OrgRole string `json:"org_role,omitempty"`
	OrgTier string `json:"org_tier,omitempty"`
	// Platform marks a platform operator (an owner or admin of the default
	// organization): the /admin routes.
	Platform bool `json:"platform_admin,omitempty"`
	// Scope is what the role implies, space-separated (RFC 8693 / 9068).
	Scope string `json:"scope"`
	// Sid is the session (refresh-token family) the token was issued in.
	Sid string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// Caller is the authenticated caller the claims describe (subject checked
// to be a UUID when the token was verified). Scopes come from the role the
// token names, so they can never exceed it.
func (c *Claims) Caller() *caller.Caller {
	id, _ := uuid.Parse(c.Subject)
	org, _ := uuid.Parse(c.OrgID)
	role := caller.Role(c.Role)
	return &caller.Caller{Kind: caller.User, ID: id, OrgID: org, OrgRole: caller.Role(c.OrgRole), Role: role, Tier: caller.Tier(c.Tier),
		OrgTier: caller.Tier(c.OrgTier), Platform: c.Platform, Scopes: role.Scopes(), TokenID: c.ID, SessionID: c.Sid}
}

// Tokens issues and verifies RS256 access tokens.
type Tokens struct {
	keys     *KeySet
	clock    clock.Clock
	issuer   string
	audience string
	ttl      time.Duration
	parser   *jwt.Parser
	verified *cache.Cache[[sha256.Size]byte, *Claims]
	clients  *cache.Cache[[sha256.Size]byte, *ClientClaims]
	ended    *EndedSessions // nil: tokens live out their TTL
}

// VerifiedCacheSize bounds the cache of verified tokens.
const VerifiedCacheSize = 10_000

// NewTokens builds the access-token service; tokens of the sessions ended
// holds are refused (nil: none are).
func NewTokens(keys *KeySet, clk clock.Clock, issuer, audience string, ttl time.Duration, ended *EndedSessions) *Tokens {
	return &Tokens{
		keys: keys, clock: clk, issuer: issuer, audience: audience, ttl: ttl, ended: ended,
		verified: cache.New[[sha256.Size]byte, *Claims](VerifiedCacheSize, clk),
		clients:  cache.New[[sha256.Size]byte, *ClientClaims](VerifiedCacheSize, clk),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(clk.Now),
		),
	}
}

// TTL is the access token lifetime.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// JWKS returns the public keys clients can verify tokens with.
func (t *Tokens) JWKS() JWKS { return t.keys.JWKS() }

// IssueSession signs an access token for u with standing st, in session
// (its refresh-token family), so the session can be told apart
// ("current", "others"). Without an organization the token is a viewer's
// of none: the org-scoped routes answer 403 no_organization.
func (t *Tokens) IssueSession(u *models.User, st Standing, session string) (string, error) {
	now := t.clock.Now()
	issued := t.ended.IssuedAfter(u.ID.String(), now)
	role := st.Role.RouteRole()
	claims := Claims{
		Sid:      session,
		Role:     string(role),
		Tier:     string(st.Tier),
		OrgRole:  string(st.Role),
		OrgTier:  string(st.OrgTier),
		Platform: st.Platform,
		Scope:    caller.FormatScopes(role.Scopes()),
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   u.ID.String(),
			Issuer:    t.issuer,
			Audience:  jwt.ClaimStrings{t.audience},
			IssuedAt:  jwt.NewNumericDate(issued),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			ID:        uuid.NewString(),
		},
	}
	if st.OrgID == uuid.Nil {
		claims.Role = string(caller.Viewer)
		claims.Scope = caller.FormatScopes(caller.Viewer.Scopes())
	} else {
		claims.OrgID = st.OrgID.String()
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = t.keys.SigningKID()
	return tok.SignedString(t.keys.signing)
}

// Verify checks signature, algorithm, kid, issuer, audience, expiry and
// not-before, and returns the claims. Errors are apperror values: expired
// tokens get their own code so clients know to refresh.
//
// A token that verified once is remembered (by its SHA-256, up to
// VerifiedCacheSize of them) with its claims: RS256 verification costs
// ~40 us of CPU per request, most of it rebuilding the public key's
// arithmetic, while a hit costs a hash and a map read. An entry lasts until
// the token expires, on the same clock: an expired token is verified
// afresh and refused as expired. The cache belongs to this
// Tokens and its KeySet: new keys mean a new Tokens and an empty cache.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	sum := sha256.Sum256([]byte(raw))
	c, ok := t.verified.Get(sum)
	if !ok {
		var err error
		if c, err = t.verify(raw); err != nil {
			return nil, err
		}
		t.verified.Put(sum, c, c.ExpiresAt.Time)
	}
	if t.endedSession(c) {
		return nil, errSessionEnded
	}
	cp := *c
	return &cp, nil
}

// endedSession reports whether c's session ended (or its user's tokens
// were all voided) since it was issued.
func (t *Tokens) endedSession(c *Claims) bool {
	if t.ended == nil {
		return false
	}
	var iat time.Time
	if c.IssuedAt != nil {
		iat = c.IssuedAt.Time
	}
	return t.ended.Ended(c.Sid, c.Subject, iat)
}

// IsClientToken reports whether raw is an OAuth client's access token
// (RFC 9068 header typ "at+jwt"), without verifying it.
func IsClientToken(raw string) bool {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Typ string `json:"typ"`
	}
	return json.Unmarshal(b, &h) == nil && strings.EqualFold(h.Typ, clientTokenType)
}

// clientTokenType is RFC 9068's media type for JWT access tokens; user
// tokens carry "JWT", so neither can pass for the other.
const clientTokenType = "at+jwt"

func (t *Tokens) verify(raw string) (*Claims, error) {
	var claims Claims
	_, err := t.parser.ParseWithClaims(raw, &claims, t.keyFor(false))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return nil, apperror.ErrTokenExpired
		}
		return nil, apperror.ErrInvalidToken
	}
	if _, err := uuid.Parse(claims.Subject); err != nil || claims.Role == "" {
		return nil, apperror.ErrInvalidToken
	}
	if _, err := uuid.Parse(claims.OrgID); claims.OrgID != "" && err != nil {
		return nil, apperror.ErrInvalidToken
	}
	return &claims, nil
}

// keyFor returns the key lookup for a user token or a client token: the
// header's typ must match, and kid must name a known key.
func (t *Tokens) keyFor(client bool) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		typ, _ := tok.Header["typ"].(string)
		if strings.EqualFold(typ, clientTokenType) != client {
			return nil, errors.New("wrong token type")
		}
		kid, _ := tok.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("missing kid")
		}
		key, ok := t.keys.PublicKey(kid)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return key, nil
	}
}

// ClientClaims are an OAuth client's access token claims (RFC 9068).
type ClientClaims struct {
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	jwt.RegisteredClaims
}

// IssueClient signs an RFC 9068 access token for an OAuth client: typ
// at+jwt, sub and client_id the client's id, aud the client's audience.
func (t *Tokens) IssueClient(clientID, audience, scope string, ttl time.Duration) (string, *ClientClaims, error) {
	now := t.clock.Now()
	claims := &ClientClaims{
		ClientID: clientID,
		Scope:    scope,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: clientID, Issuer: t.issuer, Audience: jwt.ClaimStrings{audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: uuid.NewString(),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = t.keys.SigningKID()
	tok.Header["typ"] = clientTokenType
	signed, err := tok.SignedString(t.keys.signing)
	return signed, claims, err
}

// VerifyClient checks a client access token as Verify checks a user's:
// signature, kid, issuer, this API as audience, expiry, and typ at+jwt.
// Revocation is the caller's to check (the jti).
func (t *Tokens) VerifyClient(raw string) (*ClientClaims, error) {
	sum := sha256.Sum256([]byte(raw))
	if c, ok := t.clients.Get(sum); ok {
		cp := *c
		return &cp, nil
	}
	var claims ClientClaims
	_, err := t.parser.ParseWithClaims(raw, &claims, t.keyFor(true))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return nil, apperror.ErrTokenExpired
		}
		return nil, apperror.ErrInvalidToken
	}
	if claims.ClientID == "" || claims.ClientID != claims.Subject || claims.ID == "" {
		return nil, apperror.ErrInvalidToken
	}
	t.clients.Put(sum, &claims, claims.ExpiresAt.Time)
	cp := claims
	return &cp, nil
}

// Inspect verifies raw as either kind of token, for introspection, with
// the audience unchecked (a token for another API is still ours to
// describe). It returns the user claims or the client claims, and false
// when raw is not a valid token of ours.
func (t *Tokens) Inspect(raw string) (*Claims, *ClientClaims, bool) {
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithIssuer(t.issuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(t.clock.Now))
	if IsClientToken(raw) {
		var c ClientClaims
		_, err := p.ParseWithClaims(raw, &c, t.keyFor(true))
		return nil, &c, err == nil
	}
	var c Claims
	_, err := p.ParseWithClaims(raw, &c, t.keyFor(false))
	return &c, nil, err == nil && !t.endedSession(&c)
}
