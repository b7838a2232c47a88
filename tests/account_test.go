package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

var resetToken = regexp.MustCompile(`\n([0-9a-f]{64})\n`)

// lastReset returns the token of the newest reset mail to email.
func (a *App) lastReset(t testing.TB, email string) string {
	t.Helper()
	sent := a.sent(t)
	for i := len(sent) - 1; i >= 0; i-- {
		if sent[i].To == email && sent[i].Subject == "Reset your password" {
			m := resetToken.FindStringSubmatch(sent[i].Body)
			mustf(t, m != nil, "reset mail without a token: %s", sent[i].Body)
			return m[1]
		}
	}
	t.Fatalf("no reset mail to %s", email)
	return ""
}

// withReset makes a user with two logins and asks for a reset link:
// {email}, {reset}, {refresh} (one login's refresh token).
func withReset(t testing.TB, a *App) map[string]string {
	u := a.user(t, caller.Viewer, caller.Free)
	r := a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": strings.ToUpper(u.Email)}})
	mustf(t, r.Status == 202, "forgot: %d %s", r.Status, r.Body)
	return map[string]string{"email": u.Email, "reset": a.lastReset(t, u.Email), "refresh": u.Refresh, "user_id": u.ID}
}

func TestPasswordReset(t *testing.T) {
	parallelTest(t)
	const fresh = "Brand-New-Pass-7"
	scenarios := []Scenario{
		{Name: "forgot answers the same for an unknown address, and sends nothing", Method: "POST", URL: "/auth/password/forgot",
			Body: map[string]string{"email": "nobody@example.com"}, ExpectedStatus: 202,
			ExpectedContent: []string{`"message":"If that account exists, a reset link is on its way"`},
			After: func(t testing.TB, a *App, _ *Response) {
				mustf(t, len(a.sent(t)) == 0, "mail for an unknown address")
			}},
		{Name: "a reset sets the password, ends every session and sends a notice", Method: "POST", URL: "/auth/password/reset",
			Setup: withReset, Body: map[string]string{"token": "{reset}", "password": fresh}, ExpectedStatus: 200,
			After: func(t testing.TB, a *App, _ *Response) {
				var u models.User
				a.DB.Where("email LIKE ?", "viewer-%").First(&u)
				sent := a.sent(t)
				mustf(t, sent[len(sent)-1].Subject == "Your password was changed", "no notice: %+v", sent[len(sent)-1])
				r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": fresh}})
				mustf(t, r.Status == 200, "new password: %d", r.Status)
				r = a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": testPassword}})
				mustf(t, r.Status == 401, "old password: %d", r.Status)
			}},
		{Name: "the sessions from before the reset are over", Method: "POST", URL: "/auth/refresh",
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withReset(t, a)
				r := a.do(t, Request{Method: "POST", URL: "/auth/password/reset", Body: map[string]string{"token": v["reset"], "password": fresh}})
				mustf(t, r.Status == 200, "reset: %d %s", r.Status, r.Body)
				return v
			},
			Body: map[string]string{"refresh_token": "{refresh}"}, ExpectedStatus: 401},
		{Name: "a reset token works once", Method: "POST", URL: "/auth/password/reset",
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withReset(t, a)
				a.do(t, Request{Method: "POST", URL: "/auth/password/reset", Body: map[string]string{"token": v["reset"], "password": fresh}})
				return v
			},
			Body: map[string]string{"token": "{reset}", "password": "Another-Pass-88"}, ExpectedStatus: 400,
			ExpectedContent: []string{`"code":"reset_token_used"`}},
		{Name: "a reset token expires with the clock", Method: "POST", URL: "/auth/password/reset",
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withReset(t, a)
				a.Clock.Advance(30 * time.Minute)
				return v
			},
			Body: map[string]string{"token": "{reset}", "password": fresh}, ExpectedStatus: 400, ExpectedContent: []string{`"code":"reset_token_expired"`}},
		{Name: "a new reset link voids the older one", Method: "POST", URL: "/auth/password/reset",
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withReset(t, a)
				a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": v["email"]}})
				return v
			},
			Body: map[string]string{"token": "{reset}", "password": fresh}, ExpectedStatus: 400, ExpectedContent: []string{`"code":"reset_token_invalid"`}},
		{Name: "the new password follows the policy, common passwords included", Method: "POST", URL: "/auth/password/reset",
			Setup: withReset, Body: map[string]string{"token": "{reset}", "password": "Password123"}, ExpectedStatus: 400,
			ExpectedContent: []string{`"password":"is one of the most common passwords`}},
		{Name: "an unknown token", Method: "POST", URL: "/auth/password/reset",
			Body: map[string]string{"token": strings.Repeat("ab", 32), "password": fresh}, ExpectedStatus: 400,
			ExpectedContent: []string{`"code":"reset_token_invalid"`}},
		{Name: "a reset also verifies the address: the link proved it", Method: "POST", URL: "/auth/password/reset",
			Setup: func(t testing.TB, a *App) map[string]string {
				register(t, a, "unverified@example.com")
				a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": "unverified@example.com"}})
				return map[string]string{"reset": a.lastReset(t, "unverified@example.com")}
			},
			Body: map[string]string{"token": "{reset}", "password": fresh}, ExpectedStatus: 200,
			After: func(t testing.TB, a *App, _ *Response) {
				r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": "unverified@example.com", "password": fresh}})
				mustf(t, r.Status == 200, "login after reset: %d %s", r.Status, r.Body)
			}},
		{Name: "reset mails are limited per account, silently", Method: "POST", URL: "/auth/password/forgot",
			Env: []string{"RATE_LIMIT_FORGOT_ACCOUNT", "2/1h"},
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withReset(t, a)
				a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": v["email"]}})
				return v
			},
			Body: map[string]string{"email": "{email}"}, ExpectedStatus: 202,
			After: func(t testing.TB, a *App, _ *Response) {
				n := 0
				for _, m := range a.sent(t) {
					if m.Subject == "Reset your password" {
						n++
					}
				}
				mustf(t, n == 2, "%d reset mails, want 2", n)
				mustf(t, strings.Contains(a.Logs.String(), `"event":"password.reset_limited"`), "not logged")
			}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// withLogins makes a user logged in twice: {token} and {refresh} of the
// second login, {other_refresh} of the first.
func withLogins(t testing.TB, a *App) map[string]string {
	u := a.user(t, caller.Editor, caller.Free)
	first := u.Refresh
	a.login(t, u)
	return map[string]string{"token": u.Access, "refresh": u.Refresh, "other_refresh": first, "email": u.Email, "user_id": u.ID}
}

func TestPasswordChangeAndSessions(t *testing.T) {
	parallelTest(t)
	const fresh = "Brand-New-Pass-7"
	scenarios := []Scenario{
		{Name: "change needs the current password", Method: "POST", URL: "/users/me/password", Headers: auth, Setup: withLogins,
			Body: map[string]string{"current_password": "Wrong-Pass-123", "new_password": fresh}, ExpectedStatus: 400,
			ExpectedContent: []string{`"code":"current_password_incorrect"`}},
		{Name: "change keeps this session and ends the others", Method: "POST", URL: "/users/me/password", Headers: auth, Setup: withLogins,
			Body: map[string]string{"current_password": testPassword, "new_password": fresh}, ExpectedStatus: 200,
			After: func(t testing.TB, a *App, r *Response) {
				other := a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: `{"refresh_token":"` + r.vals["other_refresh"] + `"}`})
				mustf(t, other.Status == 401, "the other session survived: %d", other.Status)
				this := a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: `{"refresh_token":"` + r.vals["refresh"] + `"}`})
				mustf(t, this.Status == 200, "this session ended: %d %s", this.Status, this.Body)
				sent := a.sent(t)
				mustf(t, sent[len(sent)-1].Subject == "Your password was changed", "no notice")
			}},
		{Name: "the new password follows the policy", Method: "POST", URL: "/users/me/password", Headers: auth, Setup: withLogins,
			Body: map[string]string{"current_password": testPassword, "new_password": "short"}, ExpectedStatus: 400,
			ExpectedContent: []string{`"new_password":"must be at least 10 characters`}},
		{Name: "an API key cannot change the password", Method: "POST", URL: "/users/me/password", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: withKey(caller.Admin, map[string]any{"name": "all", "scopes": caller.AllScopes()}),
			Body:  map[string]string{"current_password": testPassword, "new_password": fresh}, ExpectedStatus: 403,
			ExpectedContent: []string{`"code":"user_token_required"`}},
		{Name: "sessions lists each login, the current one marked", Method: "GET", URL: "/users/me/sessions", Headers: auth, Setup: withLogins,
			ExpectedStatus: 200, ExpectedContent: []string{`"current":true`, `"current":false`, `"ip":"192.0.2.1"`},
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, strings.Count(r.Body, `"id":`) == 2, "two sessions: %s", r.Body)
			}},
		{Name: "ending a session stops its refresh tokens", Method: "DELETE", URL: "/users/me/sessions/{other}", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withLogins(t, a)
				var rt models.RefreshToken
				sum := sha256.Sum256([]byte(v["other_refresh"]))
				a.DB.Where("token_hash = ?", hex.EncodeToString(sum[:])).First(&rt)
				v["other"] = rt.FamilyID.String()
				return v
			},
			ExpectedStatus: 204,
			After: func(t testing.TB, a *App, r *Response) {
				other := a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: `{"refresh_token":"` + r.vals["other_refresh"] + `"}`})
				mustf(t, other.Status == 401, "ended session still refreshes: %d", other.Status)
				again := a.do(t, Request{Method: "DELETE", URL: "/users/me/sessions/" + r.vals["other"], Headers: map[string]string{"Authorization": "Bearer " + r.vals["token"]}})
				mustf(t, again.Status == 404 && strings.Contains(again.Body, "session_not_found"), "ending it again: %d", again.Status)
			}},
		{Name: "someone else's session is not found", Method: "DELETE", URL: "/users/me/sessions/{other}", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withLogins(t, a)
				stranger := a.user(t, caller.Viewer, caller.Free)
				var rt models.RefreshToken
				a.DB.Where("user_id = ?", stranger.ID).First(&rt)
				v["other"] = rt.FamilyID.String()
				return v
			},
			ExpectedStatus: 404, ExpectedContent: []string{`"code":"session_not_found"`}},
		{Name: "logout with scope others keeps only this session", Method: "POST", URL: "/auth/logout", Setup: withLogins,
			Body: map[string]string{"refresh_token": "{refresh}", "scope": "others"}, ExpectedStatus: 204,
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: `{"refresh_token":"` + r.vals["other_refresh"] + `"}`}).Status == 401, "other survived")
				mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: `{"refresh_token":"` + r.vals["refresh"] + `"}`}).Status == 200, "this one ended")
			}},
		{Name: "logout with scope global ends them all", Method: "POST", URL: "/auth/logout", Setup: withLogins,
			Body: map[string]string{"refresh_token": "{refresh}", "scope": "global"}, ExpectedStatus: 204,
			After: func(t testing.TB, a *App, r *Response) {
				for _, rt := range []string{r.vals["other_refresh"], r.vals["refresh"]} {
					mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: `{"refresh_token":"` + rt + `"}`}).Status == 401, "a session survived")
				}
			}},
		{Name: "an unknown logout scope is refused", Method: "POST", URL: "/auth/logout", Setup: withLogins,
			Body: map[string]string{"refresh_token": "{refresh}", "scope": "everything"}, ExpectedStatus: 400,
			ExpectedContent: []string{`"scope":`}},
		{Name: "an admin ends every session of a user", Method: "DELETE", URL: "/admin/users/{user_id}/sessions", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withLogins(t, a)
				v["admin"] = a.user(t, caller.Admin, caller.Free).Access
				return v
			},
			ExpectedStatus: 204,
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: `{"refresh_token":"` + r.vals["refresh"] + `"}`}).Status == 401, "a session survived")
			}},
		{Name: "others may not end a user's sessions", Method: "DELETE", URL: "/admin/users/{user_id}/sessions", Headers: auth, Setup: withLogins,
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// Failed logins are counted per account, whatever the address: past the
// threshold the account answers the same 401, even to the right password,
// until the window frees; a reset still works.
func TestPerAccountLoginThrottling(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_LOGIN_ACCOUNT", "3/15m,5/24h")
	u := a.user(t, caller.Viewer, caller.Free)
	attempt := func(i int, password string) *Response {
		// A new address each time: the per-IP limits are not what is tested.
		return a.do(t, Request{Method: "POST", URL: "/auth/login", RemoteAddr: fmt.Sprintf("198.51.100.%d:1234", i),
			Body: map[string]string{"email": u.Email, "password": password}})
	}
	for i := range 3 {
		mustf(t, attempt(i, "Wrong-Pass-123").Status == 401, "failure %d", i)
	}
	r := attempt(10, testPassword)
	mustf(t, r.Status == 401 && strings.Contains(r.Body, `"code":"invalid_credentials"`), "throttled account, right password: %d %s", r.Status, r.Body)
	mustf(t, strings.Contains(a.Logs.String(), `"event":"auth.account_locked"`), "no security event")
	// Unknown addresses are counted alike.
	for i := range 4 {
		a.do(t, Request{Method: "POST", URL: "/auth/login", RemoteAddr: fmt.Sprintf("198.51.100.%d:1", 20+i),
			Body: map[string]string{"email": "ghost@example.com", "password": "Wrong-Pass-123"}})
	}
	var throttled int
	for _, l := range strings.Split(a.Logs.String(), "\n") {
		if strings.Contains(l, "auth.account_locked") {
			throttled++
		}
	}
	mustf(t, throttled == 2, "the unknown address was not throttled (once per account and window): %d events", throttled)
	// The short window frees; the long one still holds after more failures.
	a.Clock.Advance(16 * time.Minute)
	mustf(t, attempt(11, testPassword).Status == http.StatusOK, "after the short window")
	for i := range 2 {
		attempt(30+i, "Wrong-Pass-123")
	}
	a.Clock.Advance(16 * time.Minute)
	mustf(t, attempt(12, testPassword).Status == 401, "the day's window (5 failures) still holds")
	mustf(t, !strings.Contains(a.Logs.String(), "store unavailable"), "the limit store failed: %s", a.Logs.String())
	// A password reset works while throttled, and ends the throttling: the
	// counters belong to the old password.
	fr := a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": u.Email}})
	mustf(t, fr.Status == 202, "forgot while throttled: %d", fr.Status)
	rr := a.do(t, Request{Method: "POST", URL: "/auth/password/reset", Body: map[string]string{"token": a.lastReset(t, u.Email), "password": "Brand-New-Pass-7"}})
	mustf(t, rr.Status == 200, "reset while throttled: %d %s", rr.Status, rr.Body)
	mustf(t, attempt(13, "Brand-New-Pass-7").Status == 200, "after the reset, the owner logs in")
}

// keyWorks reports whether an API key is still accepted.
func keyWorks(t testing.TB, a *App, key string) bool {
	t.Helper()
	r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"X-API-Key": key}})
	mustf(t, r.Status == 200 || r.Status == 401, "GET /users/me with a key: %d %s", r.Status, r.Body)
	return r.Status == 200
}

// A reset is how an account is taken back: the API keys and OAuth clients
// made since the password was last set end with it (whoever knew the old
// password may have made them), the older ones are listed in the notice,
// and revoke_api_keys ends them all. A change (by someone who knows the
// password) ends none and lists every one.
func TestPasswordResetEndsTheCredentialsMadeSinceTheLastPassword(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Admin, caller.Free)
	a.user(t, caller.Admin, caller.Free) // not the last admin
	old, oldID := a.makeKey(t, u, readKey)
	a.Clock.Advance(time.Hour)
	a.login(t, u)
	r := a.do(t, Request{Method: "POST", URL: "/users/me/password", Headers: bearer(u),
		Body: map[string]string{"current_password": testPassword, "new_password": "Second-Horse-42"}})
	mustf(t, r.Status == 200, "change: %d %s", r.Status, r.Body)
	u.Password = "Second-Horse-42"
	notice := a.sent(t)[len(a.sent(t))-1]
	mustf(t, strings.Contains(notice.Body, "These still work") && strings.Contains(notice.Body, "DELETE /api-keys/"+oldID), "the change's notice does not list the key: %s", notice.Body)
	mustf(t, keyWorks(t, a, old), "a change ended a key")

	a.Clock.Advance(time.Hour)
	a.login(t, u)
	fresh, freshID := a.makeKey(t, u, readKey)
	clientID, secret, _ := a.client(t, u, readClient)
	a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": u.Email}})
	r = a.do(t, Request{Method: "POST", URL: "/auth/password/reset", Body: map[string]string{"token": a.lastReset(t, u.Email), "password": "Third-Horse-42"}})
	mustf(t, r.Status == 200, "reset: %d %s", r.Status, r.Body)
	mustf(t, !keyWorks(t, a, fresh), "a key made since the last password survived the reset")
	mustf(t, keyWorks(t, a, old), "a key older than the last password was ended")
	tok := a.do(t, formRequest("/oauth/token", urlValues("grant_type", "client_credentials"), map[string]string{"Authorization": basicAuth(clientID, secret)}))
	mustf(t, tok.Status == 401, "a client made since the last password still gets tokens: %d %s", tok.Status, tok.Body)
	notice = a.sent(t)[len(a.sent(t))-1]
	mustf(t, strings.Contains(notice.Body, freshID) && strings.Contains(notice.Body, clientID) && strings.Contains(notice.Body, "DELETE /api-keys/"+oldID),
		"the reset's notice: %s", notice.Body)
	mustf(t, auditCount(t, a, "credentials.revoked", "") == 1, "not audited")

	// revoke_api_keys: every one goes.
	a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": u.Email}})
	r = a.do(t, Request{Method: "POST", URL: "/auth/password/reset", Body: map[string]any{"token": a.lastReset(t, u.Email), "password": "Fourth-Horse-42", "revoke_api_keys": true}})
	mustf(t, r.Status == 200, "reset: %d %s", r.Status, r.Body)
	mustf(t, !keyWorks(t, a, old), "revoke_api_keys left a key")
}
