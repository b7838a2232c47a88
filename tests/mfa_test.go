package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

// enrolled turns TOTP on for a new user and returns the user, the secret
// and the recovery codes. The clock then moves to the next time step, so
// the confirming code is spent and a fresh one is due.
func enrolled(t testing.TB, a *App) (*User, string, []string) {
	u := a.user(t, caller.Viewer, caller.Free)
	r := a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u)})
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
	r := a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u)})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"otpauth_uri":"otpauth://totp/tollgate:`) && strings.Contains(r.Body, `"qr_code":"data:image/png;base64,`),
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
	r = a.do(t, Request{Method: "POST", URL: "/users/me/mfa/totp", Headers: bearer(u)})
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
