package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

func register(t testing.TB, a *App, email string) *Response {
	t.Helper()
	return a.do(t, Request{Method: "POST", URL: "/auth/register", Body: map[string]string{"email": email, "password": testPassword}})
}

func TestRegister(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{
			Name: "valid credentials create an unverified viewer on the free tier", Method: "POST", URL: "/auth/register",
			Body:            map[string]string{"email": "  Marta@Example.COM ", "password": testPassword},
			ExpectedStatus:  http.StatusAccepted,
			ExpectedContent: []string{`"message":"Check your inbox`},
			NotExpected:     []string{"password", "hash", "marta"},
			After: func(t testing.TB, a *App, _ *Response) {
				var u models.User
				mustf(t, a.DB.Where("email = ?", "marta@example.com").First(&u).Error == nil, "no user stored")
				mustf(t, defaultRole(t, a, u.ID) == "viewer" && u.Tier == "free" && !u.EmailVerified, "stored %+v", u)
			},
		},
		{
			Name: "an address with a verified account gets the same answer, and its owner a notice", Method: "POST", URL: "/auth/register",
			Body: map[string]string{"email": "MARTA@example.com", "password": "Another-Pass-77"},
			Setup: func(t testing.TB, a *App) map[string]string {
				mustf(t, register(t, a, "marta@example.com").Status == 202, "first registration failed")
				a.do(t, Request{Method: "GET", URL: "/auth/verify?token=" + a.lastToken(t, "marta@example.com")})
				return nil
			},
			ExpectedStatus: http.StatusAccepted, ExpectedContent: []string{`"message":"Check your inbox`},
			After: func(t testing.TB, a *App, _ *Response) {
				sent := a.sent(t)
				mustf(t, sent[len(sent)-1].Subject == "You already have an account", "last mail %+v", sent[len(sent)-1])
				// The account and its password are untouched.
				r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": "marta@example.com", "password": testPassword}})
				mustf(t, r.Status == 200, "the owner's password changed: %d", r.Status)
			},
		},
		{
			Name: "a squatter's registration is overridden by the owner's", Method: "POST", URL: "/auth/register",
			Body: map[string]string{"email": "victim@example.com", "password": "Owners-Pass-2024"},
			Setup: func(t testing.TB, a *App) map[string]string {
				r := a.do(t, Request{Method: "POST", URL: "/auth/register", Body: map[string]string{"email": "victim@example.com", "password": "Squatter-Pass-1"}})
				mustf(t, r.Status == 202, "squatter: %d", r.Status)
				return map[string]string{"squatter_link": a.lastToken(t, "victim@example.com")}
			},
			ExpectedStatus: http.StatusAccepted,
			After: func(t testing.TB, a *App, _ *Response) {
				// The owner follows the newest link; the squatter's password
				// no longer opens the account.
				r := a.do(t, Request{Method: "GET", URL: "/auth/verify?token=" + a.lastToken(t, "victim@example.com")})
				mustf(t, r.Status == 200, "owner's link: %d %s", r.Status, r.Body)
				r = a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": "victim@example.com", "password": "Squatter-Pass-1"}})
				mustf(t, r.Status == 401, "the squatter's password still works: %d", r.Status)
				r = a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": "victim@example.com", "password": "Owners-Pass-2024"}})
				mustf(t, r.Status == 200, "the owner's password: %d %s", r.Status, r.Body)
			},
		},
		{
			Name: "a new link voids the older ones", Method: "GET", URL: "/auth/verify?token={first}",
			Setup: func(t testing.TB, a *App) map[string]string {
				register(t, a, "twice@example.com")
				first := a.lastToken(t, "twice@example.com")
				a.do(t, Request{Method: "POST", URL: "/auth/verify/resend", Body: map[string]string{"email": "twice@example.com"}})
				mustf(t, a.lastToken(t, "twice@example.com") != first, "no new link")
				return map[string]string{"first": first}
			},
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"code":"verification_token_invalid"`},
		},
		{
			Name: "weak password is rejected with a field message", Method: "POST", URL: "/auth/register",
			Body:           map[string]string{"email": "weak@example.com", "password": "alllowercase1"},
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"code":"validation_failed"`, `"password":"must be at least 10 characters`},
		},
		{
			Name: "a common password is rejected though it passes the character rules", Method: "POST", URL: "/auth/register",
			Body:           map[string]string{"email": "common@example.com", "password": "Password123"},
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"password":"is one of the most common passwords`},
		},
		{
			Name: "short password is rejected", Method: "POST", URL: "/auth/register",
			Body:           map[string]string{"email": "short@example.com", "password": "Abc12345"},
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"password"`},
		},
		{
			Name: "password over 72 bytes is rejected", Method: "POST", URL: "/auth/register",
			Body:           map[string]string{"email": "long@example.com", "password": "Aa1" + strings.Repeat("x", 70)},
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"password":"must be at most 72 bytes"`},
		},
		{
			Name: "malformed email is rejected", Method: "POST", URL: "/auth/register",
			Body:           map[string]string{"email": "not-an-email", "password": testPassword},
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"email":"must be a valid email address"`},
		},
		{
			Name: "missing fields are named", Method: "POST", URL: "/auth/register", Body: `{}`,
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"email":"is required"`, `"password":"is required"`},
		},
		{
			Name: "wrong JSON type is named", Method: "POST", URL: "/auth/register", Body: `{"email": 5, "password": "x"}`,
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"email":"must be a string"`},
		},
		{
			Name: "role, tier and email_verified in the body are not honoured", Method: "POST", URL: "/auth/register",
			Body:           map[string]any{"email": "sneaky@example.com", "password": testPassword, "role": "admin", "tier": "enterprise", "email_verified": true},
			ExpectedStatus: http.StatusAccepted,
			After: func(t testing.TB, a *App, _ *Response) {
				var u models.User
				a.DB.Where("email = ?", "sneaky@example.com").First(&u)
				mustf(t, defaultRole(t, a, u.ID) == "viewer" && u.Tier == "free" && !u.EmailVerified, "stored %+v", u)
			},
		},
		{
			Name: "registration mails a verification link whose token is stored only as a hash", Method: "POST", URL: "/auth/register",
			Body:           map[string]string{"email": "mail@example.com", "password": testPassword},
			ExpectedStatus: http.StatusAccepted,
			After: func(t testing.TB, a *App, _ *Response) {
				token := a.lastToken(t, "mail@example.com")
				mustf(t, len(token) >= 64, "token %q shorter than 32 bytes", token)
				mustf(t, strings.Contains(a.sent(t)[0].Body, "http://tollgate.test/auth/verify?token="), "link not built from APP_BASE_URL")
				var rows []models.EmailVerificationToken
				a.DB.Find(&rows)
				mustf(t, len(rows) == 1 && rows[0].TokenHash != token && len(rows[0].TokenHash) == 64, "stored %+v", rows)
				mustf(t, rows[0].ExpiresAt.Equal(Start.Add(24*time.Hour)), "expires %v", rows[0].ExpiresAt)
			},
		},
		{
			Name: "malformed JSON", Method: "POST", URL: "/auth/register", Body: `{"email":`,
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"code":"invalid_json"`},
		},
		{
			Name: "non-JSON content type", Method: "POST", URL: "/auth/register", Body: `email=a`,
			Headers:        map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			ExpectedStatus: http.StatusUnsupportedMediaType, ExpectedContent: []string{`"code":"unsupported_media_type"`},
		},
		{
			Name: "body over 1 MiB", Method: "POST", URL: "/auth/register",
			Body:           `{"email":"` + strings.Repeat("a", 1<<20) + `@example.com","password":"x"}`,
			ExpectedStatus: http.StatusRequestEntityTooLarge, ExpectedContent: []string{`"code":"request_too_large"`},
		},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

func TestVerifyEmail(t *testing.T) {
	parallelTest(t)
	registered := func(t testing.TB, a *App) map[string]string {
		mustf(t, register(t, a, "v@example.com").Status == 202, "register failed")
		return map[string]string{"token": a.lastToken(t, "v@example.com")}
	}
	scenarios := []Scenario{
		{
			Name: "a fresh token verifies the account", Method: "GET", URL: "/auth/verify?token={token}", Setup: registered,
			ExpectedStatus: http.StatusOK, ExpectedContent: []string{"Email verified"},
			After: func(t testing.TB, a *App, _ *Response) {
				r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": "v@example.com", "password": testPassword}})
				mustf(t, r.Status == 200, "login after verify: %d %s", r.Status, r.Body)
			},
		},
		{
			Name: "a used token is refused", Method: "GET", URL: "/auth/verify?token={token}",
			Setup: func(t testing.TB, a *App) map[string]string {
				v := registered(t, a)
				mustf(t, a.do(t, Request{Method: "GET", URL: "/auth/verify?token=" + v["token"]}).Status == 200, "first use failed")
				return v
			},
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"code":"verification_token_used"`},
		},
		{
			Name: "an expired token is refused", Method: "GET", URL: "/auth/verify?token={token}",
			Setup: func(t testing.TB, a *App) map[string]string {
				v := registered(t, a)
				a.Clock.Advance(24 * time.Hour)
				return v
			},
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"code":"verification_token_expired"`},
		},
		{
			Name: "an unknown token is refused", Method: "GET", URL: "/auth/verify?token=" + strings.Repeat("ab", 32),
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"code":"verification_token_invalid"`},
		},
		{
			Name: "a missing token is a validation error", Method: "GET", URL: "/auth/verify",
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"token":"is required"`},
		},
		{
			Name: "resend answers 202 for an unknown account and sends nothing", Method: "POST", URL: "/auth/verify/resend",
			Body: map[string]string{"email": "nobody@example.com"}, ExpectedStatus: http.StatusAccepted,
			After: func(t testing.TB, a *App, _ *Response) {
				mustf(t, len(a.sent(t)) == 0, "mail sent for unknown account")
			},
		},
		{
			Name: "resend mails a new working link to an unverified account", Method: "POST", URL: "/auth/verify/resend",
			Body: map[string]string{"email": "V@example.com"}, Setup: registered, ExpectedStatus: http.StatusAccepted,
			After: func(t testing.TB, a *App, _ *Response) {
				mustf(t, len(a.sent(t)) == 2, "want a second mail, got %d", len(a.sent(t)))
				r := a.do(t, Request{Method: "GET", URL: "/auth/verify?token=" + a.lastToken(t, "v@example.com")})
				mustf(t, r.Status == 200, "new link: %d %s", r.Status, r.Body)
			},
		},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

func TestLogin(t *testing.T) {
	parallelTest(t)
	withUser := func(t testing.TB, a *App) map[string]string {
		u := a.user(t, caller.Viewer, caller.Free)
		return map[string]string{"email": u.Email, "password": u.Password, "id": u.ID}
	}
	scenarios := []Scenario{
		{
			Name: "valid login returns both tokens and the user", Method: "POST", URL: "/auth/login",
			Body: `{"email":"{email}","password":"{password}"}`, Setup: withUser,
			ExpectedStatus: http.StatusOK,
			ExpectedContent: []string{`"access_token":"ey`, `"token_type":"Bearer"`, `"expires_in":900`, `"refresh_token":"`,
				`"refresh_expires_in":604800`, `"user":{"id":"{id}"`},
			NotExpected: []string{"password_hash"},
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, len(field(t, r, "refresh_token")) == 128, "refresh token is not 64 bytes hex")
			},
		},
		{
			Name: "wrong password", Method: "POST", URL: "/auth/login", Body: `{"email":"{email}","password":"Wrong-Pass-99"}`, Setup: withUser,
			ExpectedStatus: http.StatusUnauthorized, ExpectedContent: []string{`{"error":"Invalid email or password","code":"invalid_credentials"}`},
		},
		{
			Name: "unknown email gets the very same answer", Method: "POST", URL: "/auth/login", Body: `{"email":"ghost@example.com","password":"Wrong-Pass-99"}`,
			ExpectedStatus: http.StatusUnauthorized, ExpectedContent: []string{`{"error":"Invalid email or password","code":"invalid_credentials"}`},
		},
		{
			Name: "unverified account with the right password is told so", Method: "POST", URL: "/auth/login",
			Body: map[string]string{"email": "new@example.com", "password": testPassword},
			Setup: func(t testing.TB, a *App) map[string]string {
				register(t, a, "new@example.com")
				return nil
			},
			ExpectedStatus: http.StatusForbidden, ExpectedContent: []string{`"error":"Email not verified"`, `"code":"email_not_verified"`},
		},
		{
			Name: "unverified account with a wrong password learns nothing", Method: "POST", URL: "/auth/login",
			Body: map[string]string{"email": "new@example.com", "password": "Wrong-Pass-99"},
			Setup: func(t testing.TB, a *App) map[string]string {
				register(t, a, "new@example.com")
				return nil
			},
			ExpectedStatus: http.StatusUnauthorized, ExpectedContent: []string{`"code":"invalid_credentials"`},
		},
		{
			Name: "missing password", Method: "POST", URL: "/auth/login", Body: `{"email":"a@example.com"}`,
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{`"password":"is required"`},
		},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// Unknown email and wrong password get byte-identical answers, and cost the
// same bcrypt work: the unknown address is compared against a dummy hash of
// the configured cost (counted by cost, not timed). 5: not the suite's 4.
func TestUnknownEmailAndWrongPasswordAnswerAlike(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "BCRYPT_COST", "5")
	u := a.user(t, caller.Viewer, caller.Free)
	wrong := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": "Wrong-Pass-99"}})
	unknown := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": "x" + u.Email, "password": "Wrong-Pass-99"}})
	mustf(t, wrong.Status == unknown.Status && wrong.Body == unknown.Body, "answers differ: %d %s / %d %s", wrong.Status, wrong.Body, unknown.Status, unknown.Body)
	mustf(t, wrong.Header.Get("WWW-Authenticate") == unknown.Header.Get("WWW-Authenticate"), "headers differ")
	// the fixture's login, the wrong password and the unknown address
	hashes := grep(a.scrape(t), "app_password_hashes_total{")
	mustf(t, hashes == `app_password_hashes_total{cost="5"} 3`, "comparisons by cost: %s", hashes)
}

func TestAccessTokenExpiresAfterTTL(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	a.Clock.Advance(15*time.Minute - time.Second)
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)}).Status == 200, "token refused before expiry")
	a.Clock.Advance(time.Second)
	r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
	mustf(t, r.Status == 401 && strings.Contains(r.Body, `"code":"token_expired"`) && strings.Contains(r.Body, `"error":"Token expired"`), "at expiry: %d %s", r.Status, r.Body)
	mustf(t, strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`), "WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
}

func refresh(t testing.TB, a *App, token string) *Response {
	t.Helper()
	return a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: map[string]string{"refresh_token": token}})
}

func TestRefreshRotation(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	first := u.Refresh

	r := refresh(t, a, first)
	mustf(t, r.Status == 200, "refresh: %d %s", r.Status, r.Body)
	second := field(t, r, "refresh_token")
	mustf(t, second != first && field(t, r, "access_token") != "", "no new pair")
	a2 := &User{Access: field(t, r, "access_token")}
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(a2)}).Status == 200, "new access token refused")

	sum := sha256.Sum256([]byte(first))
	var old, replacement models.RefreshToken
	a.DB.Where("token_hash = ?", hex.EncodeToString(sum[:])).First(&old)
	mustf(t, old.RevokedAt != nil && old.ReplacedBy != nil, "old token not revoked and linked: %+v", old)
	a.DB.Where("id = ?", *old.ReplacedBy).First(&replacement)
	mustf(t, replacement.RevokedAt == nil && replacement.FamilyID == old.FamilyID, "replacement %+v", replacement)

	// The old token again within the grace period: a retry (two tabs, a
	// lost answer). The same successor, a working access token, and the
	// family lives on.
	a.Clock.Advance(5 * time.Second)
	r = refresh(t, a, first)
	mustf(t, r.Status == 200 && field(t, r, "refresh_token") == second, "retry within grace: %d %s", r.Status, r.Body)
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(&User{Access: field(t, r, "access_token")})}).Status == 200, "the retry's access token refused")
	mustf(t, !strings.Contains(a.Logs.String(), "refresh_token_reuse"), "a retry was logged as reuse")
	r = refresh(t, a, second)
	mustf(t, r.Status == 200, "family revoked by a retry: %d %s", r.Status, r.Body)
	third := field(t, r, "refresh_token")
	// One tab rotated again: a retry of the first token follows the line
	// to its newest token.
	a.Clock.Advance(5*time.Second - time.Millisecond)
	r = refresh(t, a, first)
	mustf(t, r.Status == 200 && field(t, r, "refresh_token") == third, "retry after a second rotation: %d %s", r.Status, r.Body)

	// After the grace period: reuse. The whole family goes, the newest token too.
	a.Clock.Advance(time.Millisecond)
	r = refresh(t, a, first)
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "refresh_token_reused"), "reuse: %d %s", r.Status, r.Body)
	mustf(t, strings.Contains(a.Logs.String(), `"level":"WARN"`) && strings.Contains(a.Logs.String(), "refresh_token_reuse") &&
		strings.Contains(a.Logs.String(), u.ID), "no security log line: %s", a.Logs.String())
	r = refresh(t, a, third)
	mustf(t, r.Status == 401, "descendant survived reuse: %d %s", r.Status, r.Body)

	// Other logins of the same user are separate families and live on.
	other := &User{Email: u.Email, Password: u.Password}
	a.login(t, other)
	mustf(t, refresh(t, a, other.Refresh).Status == 200, "unrelated family was revoked")
}

func TestRefreshExpiryAndUnknownTokens(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	r := refresh(t, a, strings.Repeat("0", 128))
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_refresh_token"), "unknown: %d %s", r.Status, r.Body)
	a.Clock.Advance(7 * 24 * time.Hour)
	r = refresh(t, a, u.Refresh)
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "refresh_token_expired"), "expired: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: `{}`})
	mustf(t, r.Status == 400, "missing token: %d", r.Status)
}

// Twenty tabs refresh with one token at once, over real connections: every
// one gets 200 and the same successor, and the family stays one line of
// descent (one live token, every other rotated into it).
func TestConcurrentRefresh(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	body := `{"refresh_token":"` + u.Refresh + `"}`
	results := atOnce(20, func(int) *Response {
		res, err := srv.Client().Post(srv.URL+"/auth/refresh", "application/json", strings.NewReader(body))
		if err != nil {
			return &Response{Body: err.Error()}
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return &Response{Status: res.StatusCode, Header: res.Header, Body: string(raw)}
	})
	var successor string
	for i, r := range results {
		mustf(t, r.Status == 200, "refresh %d: %d %s", i, r.Status, r.Body)
		tok := field(t, r, "refresh_token")
		mustf(t, successor == "" || tok == successor, "refresh %d got another successor", i)
		successor = tok
		mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(&User{Access: field(t, r, "access_token")})}).Status == 200, "refresh %d: access token refused", i)
	}
	var rows []models.RefreshToken
	a.DB.Where("user_id = ?", u.ID).Order("created_at").Find(&rows)
	mustf(t, len(rows) == 2 && rows[0].RevokedAt != nil && rows[0].ReplacedBy != nil && *rows[0].ReplacedBy == rows[1].ID && rows[1].RevokedAt == nil,
		"the family is not one line of two tokens: %+v", rows)
	mustf(t, refresh(t, a, successor).Status == 200, "the successor does not refresh")
	mustf(t, !strings.Contains(a.Logs.String(), "refresh_token_reuse"), "a concurrent refresh was taken for reuse")
}

// With REFRESH_REUSE_GRACE=0 a race is not forgiven: exactly one of the
// concurrent refreshes wins, and the others revoke the family.
func TestConcurrentRefreshWithoutGrace(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "REFRESH_REUSE_GRACE", "0s")
	u := a.user(t, caller.Viewer, caller.Free)
	results := atOnce(12, func(int) *Response { return refresh(t, a, u.Refresh) })
	ok := 0
	for _, r := range results {
		switch r.Status {
		case 200:
			ok++
		case 401:
			mustf(t, strings.Contains(r.Body, "refresh_token_reused"), "401 %s", r.Body)
		default:
			t.Fatalf("unexpected %d %s", r.Status, r.Body)
		}
	}
	mustf(t, ok == 1, "%d refreshes of one token succeeded, want exactly 1", ok)
	var active int64
	a.DB.Model(&models.RefreshToken{}).Where("user_id = ? AND revoked_at IS NULL", u.ID).Count(&active)
	mustf(t, active == 0, "%d live refresh tokens after reuse", active)
}

func TestRefreshPicksUpRoleChangesAndDeletion(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	admin := a.user(t, caller.Admin, caller.Free)
	u := a.user(t, caller.Viewer, caller.Free)
	r := a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + u.ID, Headers: bearer(admin), Body: map[string]string{"role": "admin", "tier": "paid"}})
	mustf(t, r.Status == 200, "promote: %d %s", r.Status, r.Body)
	// The old access token, which says viewer, is refused at once.
	r = a.do(t, Request{Method: "GET", URL: "/analytics", Headers: bearer(u)})
	mustf(t, r.Status == 401 && strings.Contains(r.Body, `"code":"session_ended"`), "old token after the change: %d %s", r.Status, r.Body)
	r = refresh(t, a, u.Refresh)
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"role":"admin"`) && strings.Contains(r.Body, `"tier":"paid"`), "refresh: %s", r.Body)
	u.Access, u.Refresh = field(t, r, "access_token"), field(t, r, "refresh_token")
	mustf(t, a.do(t, Request{Method: "GET", URL: "/analytics", Headers: bearer(u)}).Status == 200, "new token lacks the role")

	a.DB.Exec("DELETE FROM users WHERE id = ?", u.ID)
	r = refresh(t, a, u.Refresh)
	mustf(t, r.Status == 401, "deleted user refreshed: %d %s", r.Status, r.Body)
}

func TestLogout(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	r := refresh(t, a, u.Refresh)
	next := field(t, r, "refresh_token")
	for i := range 2 { // idempotent
		r = a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": next}})
		mustf(t, r.Status == 204 && r.Body == "", "logout %d: %d %s", i, r.Status, r.Body)
	}
	mustf(t, refresh(t, a, next).Status == 401, "token usable after logout")
	r = a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": "unknown"}})
	mustf(t, r.Status == 204, "unknown token: %d", r.Status)
	r = a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: `{}`})
	mustf(t, r.Status == 400, "missing token: %d", r.Status)
}

// The CLI's path to the first admin makes a verified user that can log in.
func TestCreatedUserIsVerified(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	_, err := services.NewUsers(a.DB.DB, a.Clock, services.NewHasher(4, 1, time.Minute)).Create(context.Background(), services.NewUser{Email: "x@example.com", Password: "weak", Role: "admin", Tier: "free"})
	mustf(t, err != nil, "weak password accepted")
	_, err = services.NewUsers(a.DB.DB, a.Clock, services.NewHasher(4, 1, time.Minute)).Create(context.Background(), services.NewUser{Email: "x@example.com", Password: testPassword, Role: "root", Tier: "free"})
	mustf(t, err != nil, "unknown role accepted")
	admin := a.user(t, caller.Admin, caller.Enterprise)
	r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(admin)})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"role":"admin"`) && strings.Contains(r.Body, `"email_verified":true`), "%s", r.Body)
}

// hashesAt is how many bcrypt operations ran at cost, from the metrics.
func hashesAt(t testing.TB, a *App, cost int) int {
	t.Helper()
	m := regexp.MustCompile(`app_password_hashes_total\{cost="` + strconv.Itoa(cost) + `"\} (\d+)`).FindStringSubmatch(a.scrape(t))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// After BCRYPT_COST is raised, a password hashed at the old cost is
// rehashed at its next successful login, and until then such an account
// does the work of an up-to-date one, right password or wrong (it answered
// in 8 ms against 245 ms, which also told such accounts apart).
func TestRaisedBcryptCostRehashesAtLoginWithTheSameWork(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "BCRYPT_COST", "5")
	now := a.Clock.Now()
	u := &models.User{ID: uuid.New(), Email: randomName("old-") + "@example.com", PasswordHash: fixtureHash(t, 4), Tier: caller.Free,
		EmailVerified: true, CreatedAt: now, UpdatedAt: now}
	mustf(t, a.DB.Create(u).Error == nil, "insert")
	login := func(password string) *Response {
		return a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": password}})
	}
	before := hashesAt(t, a, 5)
	mustf(t, login("Wrong-Pass-123").Status == 401, "wrong password")
	mustf(t, hashesAt(t, a, 5) == before+1, "a wrong password for an old-cost account did no work at the current cost")
	mustf(t, login(testPassword).Status == 200, "right password")
	mustf(t, hashesAt(t, a, 5) == before+2, "the right password was not rehashed at the current cost")
	var stored models.User
	a.DB.Where("id = ?", u.ID).Take(&stored)
	cost, err := bcrypt.Cost([]byte(stored.PasswordHash))
	mustf(t, err == nil && cost == 5, "stored cost %d %v", cost, err)
	mustf(t, login(testPassword).Status == 200, "login after the rehash")
	mustf(t, hashesAt(t, a, 4) == 2, "%d checks at the old cost", hashesAt(t, a, 4))
}

// Addresses that look alike are alike: NFC and NFD spellings and an IDNA
// domain in either form are one account; address literals and look-alike
// letters from another script are refused.
func TestLookAlikeAddressesAreOneAccountOrRefused(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	n := 0
	reg := func(email string) *Response {
		n++ // a fresh client address each time: the per-IP limits are not what is tested
		return a.do(t, Request{Method: "POST", URL: "/auth/register", RemoteAddr: fmt.Sprintf("198.51.100.%d:1234", n),
			Body: map[string]string{"email": email, "password": testPassword}})
	}
	count := func() int64 {
		var n int64
		a.DB.Model(&models.User{}).Count(&n)
		return n
	}
	for _, same := range [][]string{
		{"jos\u00e9@example.com", "jose\u0301@example.com", " JOSE\u0301@Example.COM "},     // NFC, NFD, case and spaces
		{"ana@b\u00fccher.example", "ana@xn--bcher-kva.example", "ana@B\u00dcCHER.example"}, // Unicode, punycode, upper case
	} {
		before := count()
		for _, e := range same {
			mustf(t, reg(e).Status == 202, "register %q", e)
		}
		mustf(t, count() == before+1, "%q made %d accounts, want one", same, count()-before)
	}
	var stored []string
	a.DB.Model(&models.User{}).Order("email").Pluck("email", &stored)
	mustf(t, strings.Join(stored, " ") == "ana@xn--bcher-kva.example jos\u00e9@example.com", "stored: %q", stored)
	// The NFD spelling logs in to the NFC account (once verified).
	a.DB.Model(&models.User{}).Where("1 = 1").Update("email_verified", true)
	r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": "jose\u0301@example.com", "password": testPassword}})
	mustf(t, r.Status == 200, "login with the other spelling: %d %s", r.Status, r.Body)

	for email, want := range map[string]string{
		"a@[127.0.0.1]":                 "address literal",
		"\u0430lice@example.com":        "mix writing systems", // Cyrillic а, then Latin
		"alice@ex\u0430mple.com":        "mix writing systems",
		"bob@exa_mple.com":              "valid domain",
		"\u30c6\u30b9\u30c8@example.jp": "", // Japanese: one script
	} {
		r := reg(email)
		if want == "" {
			mustf(t, r.Status == 202, "%q refused: %d %s", email, r.Status, r.Body)
			continue
		}
		mustf(t, r.Status == 400 && strings.Contains(r.Body, want), "%q: %d %s", email, r.Status, r.Body)
	}
}

// The breached-password check sees through spaces, case and full-width
// letters (" Password123" passed it).
func TestCommonPasswordsInDisguiseAreRefused(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	for _, p := range []string{" Password123", "Password123 ", "\uff30\uff41\uff53\uff53\uff57\uff4f\uff52\uff44123", "Pass word123"} {
		r := a.do(t, Request{Method: "POST", URL: "/auth/register", RemoteAddr: "198.51.100.9:1",
			Body: map[string]string{"email": randomName("p-") + "@example.com", "password": p}})
		mustf(t, r.Status == 400 && strings.Contains(r.Body, "most common passwords"), "%q: %d %s", p, r.Status, r.Body)
	}
}
