package services

import (
	"context"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

// Claims are the access token's claims; middleware puts them on the request
// context and handlers read them with ClaimsFrom.
type Claims struct {
	Role string `json:"role"`
	Tier string `json:"tier"`
	jwt.RegisteredClaims
}

// UserID is the subject as a UUID (validated when the token was verified).
func (c *Claims) UserID() uuid.UUID { id, _ := uuid.Parse(c.Subject); return id }

type claimsKey struct{}

// WithClaims returns ctx carrying c.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the verified claims on ctx, if any.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Tokens issues and verifies RS256 access tokens.
type Tokens struct {
	keys     *KeySet
	clock    clock.Clock
	issuer   string
	audience string
	ttl      time.Duration
	parser   *jwt.Parser
}

// NewTokens builds the access-token service.
func NewTokens(keys *KeySet, clk clock.Clock, issuer, audience string, ttl time.Duration) *Tokens {
	return &Tokens{
		keys: keys, clock: clk, issuer: issuer, audience: audience, ttl: ttl,
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

// Issue signs an access token for u.
func (t *Tokens) Issue(u *models.User) (string, error) {
	now := t.clock.Now()
	claims := Claims{
		Role: u.Role,
		Tier: u.Tier,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   u.ID.String(),
			Issuer:    t.issuer,
			Audience:  jwt.ClaimStrings{t.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			ID:        uuid.NewString(),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = t.keys.SigningKID()
	return tok.SignedString(t.keys.signing)
}

// Verify checks signature, algorithm, kid, issuer, audience, expiry and
// not-before, and returns the claims. Errors are apperror values: expired
// tokens get their own code so clients know to refresh.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	var claims Claims
	_, err := t.parser.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("missing kid")
		}
		key, ok := t.keys.PublicKey(kid)
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return key, nil
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return nil, apperror.ErrTokenExpired
		}
		return nil, apperror.ErrInvalidToken
	}
	if _, err := uuid.Parse(claims.Subject); err != nil || claims.Role == "" {
		return nil, apperror.ErrInvalidToken
	}
	return &claims, nil
}
