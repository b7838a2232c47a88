package tests

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// forge signs claims with method and key, setting header kid unless empty.
func forge(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims(a *App, sub string) jwt.MapClaims {
	now := a.Clock.Now()
	return jwt.MapClaims{
		"sub": sub, "role": "admin", "org_id": models.DefaultOrgID.String(), "tier": "enterprise", "iss": a.Config.JWTIssuer, "aud": a.Config.JWTAudience,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": uuid.NewString(),
	}
}

func TestAccessTokenClaims(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Editor, caller.Paid)
	parts := strings.Split(u.Access, ".")
	mustf(t, len(parts) == 3, "not a JWT")
	var header map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	mustf(t, json.Unmarshal(raw, &header) == nil, "header")
	mustf(t, header["alg"] == "RS256" && header["kid"] == a.Keys.SigningKID(), "header %v", header)

	claims := jwt.MapClaims{}
	_, _, err := jwt.NewParser().ParseUnverified(u.Access, claims)
	mustf(t, err == nil, "parse: %v", err)
	for _, k := range []string{"sub", "role", "tier", "iss", "aud", "iat", "exp", "jti"} {
		mustf(t, claims[k] != nil, "claim %s missing: %v", k, claims)
	}
	mustf(t, claims["sub"] == u.ID && claims["role"] == "editor" && claims["tier"] == "paid", "claims %v", claims)
	exp, _ := claims.GetExpirationTime()
	mustf(t, exp.Time.Equal(Start.Add(15*time.Minute)), "exp %v", exp)

	// The JWKS publishes that kid, and the kid is the RFC 7638 thumbprint.
	r := a.do(t, Request{Method: "GET", URL: "/.well-known/jwks.json"})
	var jwks services.JWKS
	r.JSON(t, &jwks)
	mustf(t, len(jwks.Keys) == 1 && jwks.Keys[0].Kid == header["kid"] && jwks.Keys[0].Alg == "RS256" && jwks.Keys[0].Use == "sig", "jwks %+v", jwks)
	pub, _ := a.Keys.PublicKey(jwks.Keys[0].Kid)
	mustf(t, services.Thumbprint(pub) == jwks.Keys[0].Kid, "kid is not the thumbprint")
}

// RFC 7638 section 3.1 gives this key and its thumbprint.
func TestThumbprintMatchesRFC7638Example(t *testing.T) {
	parallelTest(t)
	n := "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	nb, _ := base64.RawURLEncoding.DecodeString(n)
	pub := &rsa.PublicKey{E: 65537}
	pub.N = new(big.Int).SetBytes(nb)
	mustf(t, services.Thumbprint(pub) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "got %s", services.Thumbprint(pub))
}

func TestRejectedAccessTokens(t *testing.T) {
	parallelTest(t)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, _ := os.ReadFile(keyDir + "/private.pem")
	priv, err := jwt.ParseRSAPrivateKeyFromPEM(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := os.ReadFile(keyDir + "/public.pem")

	cases := []struct {
		name  string
		token func(a *App, u *User) string
		code  string
	}{
		{"alg none", func(a *App, u *User) string {
			return forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, a.Keys.SigningKID(), goodClaims(a, u.ID))
		}, "invalid_token"},
		{"HS256 signed with the public key", func(a *App, u *User) string {
			return forge(t, jwt.SigningMethodHS256, pubPEM, a.Keys.SigningKID(), goodClaims(a, u.ID))
		}, "invalid_token"},
		{"missing kid", func(a *App, u *User) string {
			return forge(t, jwt.SigningMethodRS256, priv, "", goodClaims(a, u.ID))
		}, "invalid_token"},
		{"unknown kid", func(a *App, u *User) string {
			return forge(t, jwt.SigningMethodRS256, priv, "not-a-known-kid", goodClaims(a, u.ID))
		}, "invalid_token"},
		{"another key under our kid", func(a *App, u *User) string {
			return forge(t, jwt.SigningMethodRS256, otherKey, a.Keys.SigningKID(), goodClaims(a, u.ID))
		}, "invalid_token"},
		{"tampered payload", func(a *App, u *User) string {
			parts := strings.Split(u.Access, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"role":"viewer"`, `"role":"admin"`, 1)))
			return strings.Join(parts, ".")
		}, "invalid_token"},
		{"tampered header", func(a *App, u *User) string {
			parts := strings.Split(u.Access, ".")
			parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + a.Keys.SigningKID() + `","typ":"JWT","x":1}`))
			return strings.Join(parts, ".")
		}, "invalid_token"},
		{"expired", func(a *App, u *User) string {
			c := goodClaims(a, u.ID)
			c["exp"] = a.Clock.Now().Add(-time.Second).Unix()
			return forge(t, jwt.SigningMethodRS256, priv, a.Keys.SigningKID(), c)
		}, "token_expired"},
		{"not yet valid (nbf in the future)", func(a *App, u *User) string {
			c := goodClaims(a, u.ID)
			c["nbf"] = a.Clock.Now().Add(5 * time.Minute).Unix()
			return forge(t, jwt.SigningMethodRS256, priv, a.Keys.SigningKID(), c)
		}, "invalid_token"},
		{"no exp", func(a *App, u *User) string {
			c := goodClaims(a, u.ID)
			delete(c, "exp")
			return forge(t, jwt.SigningMethodRS256, priv, a.Keys.SigningKID(), c)
		}, "invalid_token"},
		{"wrong issuer", func(a *App, u *User) string {
			c := goodClaims(a, u.ID)
			c["iss"] = "someone-else"
			return forge(t, jwt.SigningMethodRS256, priv, a.Keys.SigningKID(), c)
		}, "invalid_token"},
		{"wrong audience", func(a *App, u *User) string {
			c := goodClaims(a, u.ID)
			c["aud"] = "another-api"
			return forge(t, jwt.SigningMethodRS256, priv, a.Keys.SigningKID(), c)
		}, "invalid_token"},
		{"garbage", func(a *App, u *User) string { return "not.a.jwt" }, "invalid_token"},
	}
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	// Control: a well-formed token we sign ourselves is accepted, so each
	// rejection below is due to the one thing that case changes.
	control := forge(t, jwt.SigningMethodRS256, priv, a.Keys.SigningKID(), goodClaims(a, u.ID))
	mustf(t, a.do(t, Request{Method: "GET", URL: "/analytics", Headers: map[string]string{"Authorization": "Bearer " + control}}).Status == 200, "control token refused")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.do(t, Request{Method: "GET", URL: "/analytics", Headers: map[string]string{"Authorization": "Bearer " + c.token(a, u)}})
			mustf(t, r.Status == http.StatusUnauthorized && strings.Contains(r.Body, `"code":"`+c.code+`"`), "%d %s", r.Status, r.Body)
			mustf(t, strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`), "WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		})
	}
}

func TestMissingTokenChallenge(t *testing.T) {
	parallelTest(t)
	for _, header := range []string{"", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer"} {
		a := newApp(t)
		r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": header}})
		mustf(t, r.Status == 401 && r.Body == `{"error":"Authentication required","code":"authentication_required"}`+"\n", "%q: %d %s", header, r.Status, r.Body)
		mustf(t, strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") && !strings.Contains(r.Header.Get("WWW-Authenticate"), "error="), "%q: %q", header, r.Header.Get("WWW-Authenticate"))
	}
}

// After a key rotation, tokens signed by the retired key stay valid while
// its public key is listed in JWT_PREVIOUS_PUBLIC_KEY_FILES.
func TestPreviousKeyStillVerifies(t *testing.T) {
	parallelTest(t)
	dir := t.TempDir()
	mustf(t, services.GenerateKeyPair(dir+"/new.pem", dir+"/new.pub", false) == nil, "generate")
	old := newApp(t)
	u := old.user(t, caller.Viewer, caller.Free)

	// The same deployment (database) after the rotation.
	rotated := old.sibling(t, "JWT_PRIVATE_KEY_FILE", dir+"/new.pem", "JWT_PUBLIC_KEY_FILE", dir+"/new.pub",
		"JWT_PREVIOUS_PUBLIC_KEY_FILES", keyDir+"/public.pem")
	r := rotated.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
	mustf(t, r.Status == 200, "old token refused after rotation: %d %s", r.Status, r.Body)
	var jwks services.JWKS
	rotated.do(t, Request{Method: "GET", URL: "/.well-known/jwks.json"}).JSON(t, &jwks)
	mustf(t, len(jwks.Keys) == 2 && jwks.Keys[0].Kid == rotated.Keys.SigningKID(), "jwks %+v", jwks)

	dropped := newApp(t, "JWT_PRIVATE_KEY_FILE", dir+"/new.pem", "JWT_PUBLIC_KEY_FILE", dir+"/new.pub")
	mustf(t, dropped.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)}).Status == 401, "retired key still accepted")
}

func testTokens(t testing.TB, clk clock.Clock) *services.Tokens { return testTokensEnding(t, clk, nil) }

// testTokensEnding builds a Tokens on the run's key pair, apart from any
// app: the cache and the ended-session check, without HTTP in the way.
func testTokensEnding(t testing.TB, clk clock.Clock, ended *services.EndedSessions) *services.Tokens {
	keys, err := services.LoadKeySet(filepath.Join(keyDir, "private.pem"), filepath.Join(keyDir, "public.pem"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return services.NewTokens(keys, clk, "tollgate", "tollgate-api", 15*time.Minute, ended)
}

// A cached token answers like a fresh verification: same claims, and
// expiry is checked again on every hit.
func TestVerifiedCacheRechecksExpiry(t *testing.T) {
	parallelTest(t)
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tokens := testTokens(t, clk)
	raw, err := tokens.IssueSession(&models.User{ID: uuid.New(), Tier: caller.Free}, services.Standing{OrgID: models.DefaultOrgID, Role: caller.Viewer, Tier: caller.Free}, "")
	if err != nil {
		t.Fatal(err)
	}
	first, err := tokens.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	first.Role = "admin" // callers get copies: the cache cannot be changed through them
	again, err := tokens.Verify(raw)
	if err != nil || caller.Role(again.Role) != caller.Viewer || again.Subject != first.Subject {
		t.Fatalf("cached verify: %+v %v", again, err)
	}
	clk.Advance(15 * time.Minute)
	if _, err := tokens.Verify(raw); err == nil {
		t.Fatal("an expired token passed through the cache")
	}
	if _, err := tokens.Verify(raw[:len(raw)-2] + "xx"); err == nil {
		t.Fatal("a tampered token verified")
	}
}

// An ended session's tokens and a voided user's are refused; a token
// issued in the second of the void, after it, lives.
func TestEndedSessionsRefuseTokens(t *testing.T) {
	parallelTest(t)
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC))
	ended := services.NewEndedSessions(nil, "", clk, 15*time.Minute, time.Second, slog.New(slog.DiscardHandler))
	tokens := testTokensEnding(t, clk, ended)
	u := &models.User{ID: uuid.New(), Tier: caller.Free}
	sid := uuid.NewString()
	a, _ := tokens.IssueSession(u, services.Standing{OrgID: models.DefaultOrgID, Role: caller.Viewer, Tier: caller.Free}, sid)
	b, _ := tokens.IssueSession(u, services.Standing{OrgID: models.DefaultOrgID, Role: caller.Viewer, Tier: caller.Free}, uuid.NewString())
	ended.End(context.Background(), sid)
	if _, err := tokens.Verify(a); err == nil {
		t.Fatal("a token of an ended session verified")
	}
	if _, err := tokens.Verify(b); err != nil {
		t.Fatalf("another session's token: %v", err)
	}
	ended.EndUser(context.Background(), u.ID.String())
	if _, err := tokens.Verify(b); err == nil {
		t.Fatal("a voided user's token verified")
	}
	fresh, _ := tokens.IssueSession(u, services.Standing{OrgID: models.DefaultOrgID, Role: caller.Viewer, Tier: caller.Free}, uuid.NewString())
	if _, err := tokens.Verify(fresh); err != nil {
		t.Fatalf("a token issued after the void, in its second: %v", err)
	}
	// A second void in the same second (two membership changes at once)
	// voids that token too, and one issued after it lives again.
	ended.EndUser(context.Background(), u.ID.String())
	if _, err := tokens.Verify(fresh); err == nil {
		t.Fatal("a token issued between two voids of one second outlived the second")
	}
	again, _ := tokens.IssueSession(u, services.Standing{OrgID: models.DefaultOrgID, Role: caller.Viewer, Tier: caller.Free}, uuid.NewString())
	if _, err := tokens.Verify(again); err != nil {
		t.Fatalf("a token issued after the second void: %v", err)
	}
	// Past the access-token lifetime nothing is kept.
	if ended.Len() != 2 {
		t.Fatalf("%d entries held, want the session and the user", ended.Len())
	}
	clk.Advance(16 * time.Minute)
	if err := ended.Resync(context.Background()); err != nil || ended.Len() != 0 {
		t.Fatalf("kept %d entries past their lifetime (%v)", ended.Len(), err)
	}
}
