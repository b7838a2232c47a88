package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp/totp"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/product"
)

// enrolled turns TOTP on for a new user and returns the user, the secret
// and the recovery codes. The clock then moves to the next time step, so
// the confirming code is spent and a fresh one is due.
func enrolled(t testing.TB, a *App) (*User, string, []string) {
	u := a.user(t, caller.Viewer, caller.Free)
	r := a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": u.Password}})
	mustf(t, r.Status == 200, "start: %d %s", r.Status, r.Body)
	secret := field(t, r, "secret")
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp/confirm", Headers: bearer(u), Body: map[string]string{"code": code(t, a, secret)}})
	mustf(t, r.Status == 200, "confirm: %d %s", r.Status, r.Body)
	var out struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &out)
	a.Clock.Advance(30 * time.Second)
	return u, secret, out.RecoveryCodes
}

// code is the authenticator app's code now, on the test clock.
func code(t testing.TB, a *App, secret string) string {
	c, err := totp.GenerateCode(secret, a.Clock.Now())
	mustf(t, err == nil, "code: %v", err)
	return c
}

// mfaLogin logs u in up to the second step and returns the mfa_token.
func mfaLogin(t testing.TB, a *App, u *User) string {
	r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"mfa_required":true`) && !strings.Contains(r.Body, "access_token"), "login: %d %s", r.Status, r.Body)
	return field(t, r, "mfa_token")
}

func verify(t testing.TB, a *App, token, c string) *Response {
	return a.do(t, Request{Method: "POST", URL: "/auth/mfa/verify", Body: map[string]string{"mfa_token": token, "code": c}})
}

func TestTOTPEnrolment(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	// An access token alone cannot start it: the password is needed.
	r := a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u)})
	mustf(t, r.Status == 400, "start without a password: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": "Wrong-Pass-123"}})
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "current_password_incorrect"), "start with a wrong password: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": u.Password}})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"otpauth_uri":"otpauth://totp/`+product.ID+`:`) && strings.Contains(r.Body, `"qr_code":"data:image/png;base64,`),
		"start: %d %s", r.Status, r.Body)
	mustf(t, r.Header.Get("Cache-Control") == "no-store", "cached")
	secret := field(t, r, "secret")
	var row models.MFATOTP
	a.DB.Where("user_id = ?", u.ID).First(&row)
	mustf(t, row.Secret != "" && !strings.Contains(row.Secret, secret), "the secret is stored in clear")
	// Not on until confirmed: logins still give tokens.
	r = a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	mustf(t, strings.Contains(r.Body, "access_token"), "unconfirmed enrolment changed logins")
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp/confirm", Headers: bearer(u), Body: map[string]string{"code": "000000"}})
	mustf(t, r.Status == 400 && strings.Contains(r.Body, `"code":"incorrect_mfa_code"`), "wrong first code: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp/confirm", Headers: bearer(u), Body: map[string]string{"code": code(t, a, secret)}})
	mustf(t, r.Status == 200 && strings.Count(r.Body, "-") >= 10, "confirm: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": u.Password}})
	mustf(t, r.Status == 409 && strings.Contains(r.Body, "mfa_already_enabled"), "start again: %d", r.Status)
	var n int64
	a.DB.Model(&models.AuditEvent{}).Where("action = ?", "mfa.enabled").Count(&n)
	mustf(t, n == 1, "mfa.enabled not audited")
}

func TestTOTPLogin(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u, secret, recovery := enrolled(t, a)

	// The second step with the current code gives the token pair.
	c := code(t, a, secret)
	r := verify(t, a, mfaLogin(t, a, u), c)
	mustf(t, r.Status == 200 && strings.Contains(r.Body, "access_token"), "verify: %d %s", r.Status, r.Body)
	// The same code again (a replay) fails, within its time step or not.
	r = verify(t, a, mfaLogin(t, a, u), c)
	mustf(t, r.Status == 401 && strings.Contains(r.Body, `"code":"invalid_mfa_code"`), "replayed code: %d %s", r.Status, r.Body)
	// The next step's code works.
	a.Clock.Advance(30 * time.Second)
	r = verify(t, a, mfaLogin(t, a, u), code(t, a, secret))
	mustf(t, r.Status == 200, "next code: %d %s", r.Status, r.Body)

	// A recovery code works once.
	r = verify(t, a, mfaLogin(t, a, u), recovery[0])
	mustf(t, r.Status == 200, "recovery code: %d %s", r.Status, r.Body)
	r = verify(t, a, mfaLogin(t, a, u), recovery[0])
	mustf(t, r.Status == 401, "recovery code twice: %d", r.Status)

	// A mfa_token works once, for 5 minutes, for 5 attempts.
	token := mfaLogin(t, a, u)
	a.Clock.Advance(30 * time.Second)
	mustf(t, verify(t, a, token, code(t, a, secret)).Status == 200, "first use")
	a.Clock.Advance(30 * time.Second)
	r = verify(t, a, token, code(t, a, secret))
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_mfa_token"), "token twice: %d %s", r.Status, r.Body)
	token = mfaLogin(t, a, u)
	a.Clock.Advance(5 * time.Minute)
	mustf(t, strings.Contains(verify(t, a, token, code(t, a, secret)).Body, "invalid_mfa_token"), "expired token")
	token = mfaLogin(t, a, u)
	for i := range 5 {
		// Each from its own address: the per-IP failure limit is not what
		// is tested here (this address has used most of its budget).
		r := a.do(t, Request{Method: "POST", URL: "/auth/mfa/verify", RemoteAddr: fmt.Sprintf("198.51.100.%d:1234", 10+i),
			Body: map[string]string{"mfa_token": token, "code": "000000"}})
		mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_mfa_code"), "wrong code %d: %d %s", i, r.Status, r.Body)
	}
	a.Clock.Advance(30 * time.Second)
	// From another address: this one has used up its failed-login budget.
	r = a.do(t, Request{Method: "POST", URL: "/auth/mfa/verify", RemoteAddr: "198.51.100.99:1234",
		Body: map[string]string{"mfa_token": token, "code": code(t, a, secret)}})
	mustf(t, strings.Contains(r.Body, "invalid_mfa_token"), "a token after 5 wrong codes: %d %s", r.Status, r.Body)
	mustf(t, !strings.Contains(a.Logs.String(), secret), "the secret reached the log")
}

func TestTOTPDisableAndRecoveryCodes(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u, secret, recovery := enrolled(t, a)
	// The session from before the enrolment still works for settings.
	r := a.do(t, Request{Method: "POST", URL: "/users/me/mfa/recovery-codes", Headers: bearer(u), Body: map[string]string{"code": code(t, a, secret)}})
	mustf(t, r.Status == 200, "regenerate: %d %s", r.Status, r.Body)
	var fresh struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &fresh)
	mustf(t, len(fresh.RecoveryCodes) == 10 && fresh.RecoveryCodes[0] != recovery[0], "new codes: %v", fresh.RecoveryCodes)
	mustf(t, verify(t, a, mfaLogin(t, a, u), recovery[1]).Status == 401, "an old recovery code still works")
	r = a.do(t, Request{Method: "DELETE", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": "Wrong-Pass-123", "code": fresh.RecoveryCodes[0]}})
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "current_password_incorrect"), "disable with a wrong password: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "DELETE", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": testPassword, "code": fresh.RecoveryCodes[0]}})
	mustf(t, r.Status == 204, "disable: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, "access_token"), "login after disabling: %s", r.Body)
}

// A database fault during the second step answers 503 like everywhere
// else, never "invalid MFA token" (which sends the person back to log in).
func TestMFAVerifyOnAFailedDatabaseIs503(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u, secret, _ := enrolled(t, a)
	token := mfaLogin(t, a, u)
	c := code(t, a, secret)
	a.DB.Close()
	r := verify(t, a, token, c)
	mustf(t, r.Status == 503 && strings.Contains(r.Body, "service_unavailable"), "verify on a closed database: %d %s", r.Status, r.Body)
}

// auditCount counts audit events of action (and reason, when given).
func auditCount(t testing.TB, a *App, action, reason string) int64 {
	t.Helper()
	q := a.DB.Model(&models.AuditEvent{}).Where("action = ?", action)
	if reason != "" {
		q = q.Where("reason = ?", reason)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// A stolen access token is no oracle: wrong passwords and codes at every
// endpoint that checks one use up the same per-account budget (10 per 15
// minutes), and once it is spent even the right password and code answer
// as wrong ones, everywhere, logins included. Before, disabling MFA and
// making recovery codes checked without any limit.
func TestEveryPasswordAndCodeCheckSharesTheAccountBudget(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u, secret, recovery := enrolled(t, a)
	wrong := map[string]string{"password": "Wrong-Pass-123", "code": "000000"}
	steps := []struct {
		method, url string
		body        map[string]string
		want        string
	}{
		{"POST", "/users/me/mfa/recovery-codes", map[string]string{"code": "000000"}, "incorrect_mfa_code"},
		{"POST", "/users/me/mfa/recovery-codes", map[string]string{"code": "zzzzz-zzzzz-zzzzz-zzzzz"}, "incorrect_mfa_code"},
		{"DELETE", "/users/me/mfa/totp", map[string]string{"password": u.Password, "code": "000000"}, "incorrect_mfa_code"},
		{"DELETE", "/users/me/mfa/totp", wrong, "current_password_incorrect"},
		{"DELETE", "/users/me/mfa/totp", wrong, "current_password_incorrect"},
		{"POST", "/users/me/password", map[string]string{"current_password": "Wrong-Pass-123", "new_password": "Another-Horse-42"}, "current_password_incorrect"},
		{"POST", "/users/me/password", map[string]string{"current_password": "Wrong-Pass-123", "new_password": "Another-Horse-42"}, "current_password_incorrect"},
		{"POST", "/users/me/mfa/recovery-codes", map[string]string{"code": "111111"}, "incorrect_mfa_code"},
		{"DELETE", "/users/me/mfa/totp", map[string]string{"password": u.Password, "code": "222222"}, "incorrect_mfa_code"},
	}
	for i, s := range steps {
		r := a.do(t, Request{Method: s.method, URL: s.url, Headers: bearer(u), Body: s.body})
		mustf(t, r.Status == 400 && strings.Contains(r.Body, s.want), "step %d %s %s: %d %s", i, s.method, s.url, r.Status, r.Body)
	}
	// The tenth: a wrong code at the second step of a login.
	r := a.do(t, Request{Method: "POST", URL: "/auth/mfa/verify", RemoteAddr: "198.51.100.7:1234",
		Body: map[string]string{"mfa_token": mfaLogin(t, a, u), "code": "333333"}})
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_mfa_code"), "verify: %d %s", r.Status, r.Body)

	// Spent: the right answers are refused as wrong ones.
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/recovery-codes", Headers: bearer(u), Body: map[string]string{"code": recovery[0]}})
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "incorrect_mfa_code"), "regenerate with a right code when spent: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "DELETE", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": u.Password, "code": code(t, a, secret)}})
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "current_password_incorrect"), "disable with the right answers when spent: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": u.Password}})
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "current_password_incorrect"), "enrol with the right password when spent: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/auth/login", RemoteAddr: "198.51.100.8:1234", Body: map[string]string{"email": u.Email, "password": u.Password}})
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_credentials"), "login when spent: %d %s", r.Status, r.Body)
	mustf(t, auditCount(t, a, "mfa.recovery_codes_regenerated", "") == 0 && auditCount(t, a, "mfa.disabled", "") == 0, "a refused change happened")
	// One lockout event for the window, however many requests it refused.
	mustf(t, auditCount(t, a, "auth.account_locked", "") == 1, "lockouts audited %d times", auditCount(t, a, "auth.account_locked", ""))

	// The window passes: the right answers work again.
	a.Clock.Advance(16 * time.Minute)
	r = verify(t, a, mfaLogin(t, a, u), recovery[0])
	mustf(t, r.Status == 200, "a login after the window: %d %s", r.Status, r.Body)
}

// Right answers never use up the budget: a person who enters the right
// password many times is not throttled.
func TestRightAnswersCostNothing(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	for i := range 15 {
		r := a.do(t, Request{Method: "POST", URL: "/auth/login", RemoteAddr: fmt.Sprintf("198.51.100.%d:1234", i+1),
			Body: map[string]string{"email": u.Email, "password": u.Password}})
		mustf(t, r.Status == 200, "login %d: %d %s", i, r.Status, r.Body)
	}
}

// Attempt caps hold exactly under concurrency: 50 parallel guesses on one
// mfa_token get 5 checks (before: 7), and 50 parallel wrong passwords for
// one account get 10 (before: up to 81).
func TestAttemptCapsAreExactUnderConcurrency(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u, _, _ := enrolled(t, a)
	token := mfaLogin(t, a, u)
	results := atOnce(50, func(i int) *Response {
		return a.do(t, Request{Method: "POST", URL: "/auth/mfa/verify", RemoteAddr: fmt.Sprintf("203.0.113.%d:1234", i+1),
			Body: map[string]string{"mfa_token": token, "code": fmt.Sprintf("%06d", i)}})
	})
	codes, dead := 0, 0
	for _, r := range results {
		switch {
		case strings.Contains(r.Body, `"invalid_mfa_code"`):
			codes++
		case strings.Contains(r.Body, `"invalid_mfa_token"`):
			dead++
		default:
			t.Errorf("guess: %d %s", r.Status, r.Body)
		}
	}
	mustf(t, codes == 5 && dead == 45, "one mfa_token: %d codes checked, %d refused", codes, dead)

	v := a.user(t, caller.Viewer, caller.Free)
	atOnce(50, func(i int) *Response {
		return a.do(t, Request{Method: "POST", URL: "/auth/login", RemoteAddr: fmt.Sprintf("192.0.2.%d:1234", i+1),
			Body: map[string]string{"email": v.Email, "password": fmt.Sprintf("Wrong-Pass-%03d", i)}})
	})
	checked := a.DB.Model(&models.AuditEvent{}).Where("action = ? AND reason = ? AND target_id = ?", "auth.login_failed", "invalid_credentials", v.ID)
	var n int64
	checked.Count(&n)
	mustf(t, n == 10, "one account: %d passwords checked of 50, want 10", n)
}

// Turning MFA on, off and making new codes each mail the owner.
func TestMFAChangesAreMailed(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u, secret, _ := enrolled(t, a)
	r := a.do(t, Request{Method: "POST", URL: "/users/me/mfa/recovery-codes", Headers: bearer(u), Body: map[string]string{"code": code(t, a, secret)}})
	mustf(t, r.Status == 200, "regenerate: %d %s", r.Status, r.Body)
	a.Clock.Advance(30 * time.Second)
	r = a.do(t, Request{Method: "DELETE", URL: "/users/me/mfa/totp", Headers: bearer(u), Body: map[string]string{"password": u.Password, "code": code(t, a, secret)}})
	mustf(t, r.Status == 204, "disable: %d %s", r.Status, r.Body)
	var subjects []string
	for _, m := range a.sent(t) {
		if m.To == u.Email {
			subjects = append(subjects, m.Subject)
		}
	}
	want := []string{"Two-factor authentication was turned on", "New recovery codes were made", "Two-factor authentication was turned off"}
	mustf(t, strings.Join(subjects, "|") == strings.Join(want, "|"), "mails: %q", subjects)
}

// Recovery codes carry 100 bits and are stored keyed and salted, never as
// a plain hash of the code; codes from before keyed hashes still work once.
func TestRecoveryCodesAreStrongAndKeyed(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u, _, recovery := enrolled(t, a)
	seen := map[string]bool{}
	for _, c := range recovery {
		mustf(t, regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}(-[0-9a-hjkmnp-tv-z]{5}){3}$`).MatchString(c) && !seen[c], "recovery code %q", c)
		seen[c] = true
	}
	var rows []models.MFARecoveryCode
	a.DB.Where("user_id = ?", u.ID).Find(&rows)
	mustf(t, len(rows) == 10, "%d rows", len(rows))
	for _, row := range rows {
		for c := range seen {
			sum := sha256.Sum256([]byte(c))
			mustf(t, row.CodeHash != hex.EncodeToString(sum[:]), "a recovery code is stored as its plain SHA-256")
		}
		mustf(t, row.KeyVersion >= 1, "key version %d", row.KeyVersion)
	}
	// Typed loosely: upper case, no dashes.
	r := verify(t, a, mfaLogin(t, a, u), strings.ToUpper(strings.ReplaceAll(recovery[0], "-", "")))
	mustf(t, r.Status == 200, "a recovery code typed without dashes: %d %s", r.Status, r.Body)
	// A code stored before keyed hashes (unkeyed SHA-256, version 0).
	legacy := "k3v9a-q0x2m"
	sum := sha256.Sum256([]byte(legacy))
	mustf(t, a.DB.Create(&models.MFARecoveryCode{ID: uuid.New(), UserID: uuid.MustParse(u.ID), CodeHash: hex.EncodeToString(sum[:]), CreatedAt: a.Clock.Now()}).Error == nil, "insert")
	mustf(t, verify(t, a, mfaLogin(t, a, u), legacy).Status == 200, "a legacy code")
	mustf(t, verify(t, a, mfaLogin(t, a, u), legacy).Status == 401, "a legacy code twice")
}

// An admin can take a lost second factor off an account: audited, mailed,
// every session ended; nobody else can.
func TestAdminResetsMFA(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u, _, _ := enrolled(t, a)
	admin := a.user(t, caller.Admin, caller.Enterprise)
	editor := a.user(t, caller.Editor, caller.Paid)
	url := "/admin/users/" + u.ID + "/mfa"
	r := a.do(t, Request{Method: "DELETE", URL: url, Headers: bearer(editor)})
	mustf(t, r.Status == 403, "an editor: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "DELETE", URL: url, Headers: bearer(u)})
	mustf(t, r.Status == 403, "the owner with a token: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "DELETE", URL: url, Headers: bearer(admin)})
	mustf(t, r.Status == 204, "admin reset: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "DELETE", URL: url, Headers: bearer(admin)})
	mustf(t, r.Status == 409 && strings.Contains(r.Body, "mfa_not_enabled"), "again: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "DELETE", URL: "/admin/users/" + uuid.NewString() + "/mfa", Headers: bearer(admin)})
	mustf(t, r.Status == 404, "unknown user: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: map[string]string{"refresh_token": u.Refresh}})
	mustf(t, r.Status == 401, "the old session survived the reset: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, "access_token"), "login after the reset: %d %s", r.Status, r.Body)
	var ev models.AuditEvent
	a.DB.Where("action = ?", "mfa.reset").Take(&ev)
	mustf(t, ev.ActorID == admin.ID && ev.TargetID == u.ID, "audit: %+v", ev)
	mailed := false
	for _, m := range a.sent(t) {
		mailed = mailed || (m.To == u.Email && m.Subject == "Two-factor authentication was reset")
	}
	mustf(t, mailed, "the owner was not told")
}
