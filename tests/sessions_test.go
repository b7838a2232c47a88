package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

// twoLogins logs a new user in twice: first and second are two sessions
// of one account (second shares first's ID, email and password).
func twoLogins(t testing.TB, a *App, role caller.Role) (first, second *User) {
	first = a.user(t, role, caller.Free)
	second = &User{ID: first.ID, Email: first.Email, Password: first.Password}
	a.login(t, second)
	return first, second
}

// works reports whether u's access token is still accepted.
func works(t testing.TB, a *App, u *User) bool {
	t.Helper()
	r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
	switch {
	case r.Status == 200:
		return true
	case r.Status == 401 && strings.Contains(r.Body, `"code":"session_ended"`):
		return false
	}
	t.Fatalf("GET /users/me: %d %s", r.Status, r.Body)
	return false
}

// sessionOf is the id of u's session (the access token's sid), read from
// GET /users/me/sessions as u.
func sessionOf(t testing.TB, a *App, u *User) string {
	t.Helper()
	var out []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	a.do(t, Request{Method: "GET", URL: "/users/me/sessions", Headers: bearer(u)}).JSON(t, &out)
	for _, s := range out {
		if s.Current {
			return s.ID
		}
	}
	t.Fatal("no current session")
	return ""
}

// Access tokens of an ended session are refused at once, not up to
// ACCESS_TOKEN_TTL later, whichever way the session ended; the sessions
// that did not end go on.
func TestEndedSessionsEndTheirAccessTokensAtOnce(t *testing.T) {
	parallelTest(t)
	cases := []struct {
		name                string
		end                 func(t testing.TB, a *App, first, second *User)
		firstLives, secLive bool
	}{
		{"logout of this session", func(t testing.TB, a *App, _, second *User) {
			a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": second.Refresh}})
		}, true, false},
		{"logout of the others", func(t testing.TB, a *App, _, second *User) {
			a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": second.Refresh, "scope": "others"}})
		}, false, true},
		{"logout everywhere", func(t testing.TB, a *App, _, second *User) {
			a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": second.Refresh, "scope": "global"}})
		}, false, false},
		{"a session deleted from another", func(t testing.TB, a *App, first, second *User) {
			r := a.do(t, Request{Method: "DELETE", URL: "/users/me/sessions/" + sessionOf(t, a, first), Headers: bearer(second)})
			mustf(t, r.Status == 204, "delete: %d %s", r.Status, r.Body)
		}, false, true},
		{"a password change (this session stays)", func(t testing.TB, a *App, _, second *User) {
			r := a.do(t, Request{Method: "POST", URL: "/users/me/password", Headers: bearer(second),
				Body: map[string]string{"current_password": testPassword, "new_password": "Brand-New-Pass-7"}})
			mustf(t, r.Status == 200, "change: %d %s", r.Status, r.Body)
		}, false, true},
		{"a password reset", func(t testing.TB, a *App, first, _ *User) {
			a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": first.Email}})
			r := a.do(t, Request{Method: "POST", URL: "/auth/password/reset", Body: map[string]string{"token": a.lastReset(t, first.Email), "password": "Brand-New-Pass-7"}})
			mustf(t, r.Status == 200, "reset: %d %s", r.Status, r.Body)
		}, false, false},
		{"a role change", func(t testing.TB, a *App, first, _ *User) {
			admin := a.user(t, caller.Admin, caller.Free)
			r := a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + first.ID, Headers: bearer(admin), Body: map[string]string{"role": "editor"}})
			mustf(t, r.Status == 200, "promote: %d %s", r.Status, r.Body)
		}, false, false},
		{"a tier change", func(t testing.TB, a *App, first, _ *User) {
			admin := a.user(t, caller.Admin, caller.Free)
			r := a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + first.ID, Headers: bearer(admin), Body: map[string]string{"tier": "paid"}})
			mustf(t, r.Status == 200, "upgrade: %d %s", r.Status, r.Body)
		}, false, false},
		{"an admin ending every session", func(t testing.TB, a *App, first, _ *User) {
			admin := a.user(t, caller.Admin, caller.Free)
			r := a.do(t, Request{Method: "DELETE", URL: "/admin/users/" + first.ID + "/sessions", Headers: bearer(admin)})
			mustf(t, r.Status == 204, "end all: %d %s", r.Status, r.Body)
		}, false, false},
		{"a refresh token stolen and used twice", func(t testing.TB, a *App, first, _ *User) {
			mustf(t, refresh(t, a, first.Refresh).Status == 200, "refresh")
			a.Clock.Advance(time.Minute) // past the retry grace: theft
			mustf(t, refresh(t, a, first.Refresh).Status == 401, "reuse")
		}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t)
			first, second := twoLogins(t, a, caller.Viewer)
			mustf(t, works(t, a, first) && works(t, a, second), "before")
			c.end(t, a, first, second)
			mustf(t, works(t, a, first) == c.firstLives, "first session's token: works=%v, want %v", !c.firstLives, c.firstLives)
			mustf(t, works(t, a, second) == c.secLive, "second session's token: works=%v, want %v", !c.secLive, c.secLive)
		})
	}
}

// A role change takes the old role away at once: a demoted admin's old
// token can neither promote itself back nor anyone else (it did), and a
// refresh gives a token with the new role right away.
func TestADemotedAdminsTokenIsRefused(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	boss := a.user(t, caller.Admin, caller.Free)
	demoted := a.user(t, caller.Admin, caller.Free)
	other := a.user(t, caller.Viewer, caller.Free)
	r := a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + demoted.ID, Headers: bearer(boss), Body: map[string]string{"role": "viewer"}})
	mustf(t, r.Status == 200, "demote: %d %s", r.Status, r.Body)
	for _, id := range []string{demoted.ID, other.ID} {
		r = a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + id, Headers: bearer(demoted), Body: map[string]string{"role": "admin"}})
		mustf(t, r.Status == 401 && strings.Contains(r.Body, "session_ended"), "the demoted admin's old token promoted %s: %d %s", id, r.Status, r.Body)
	}
	var n int64
	a.DB.Model(&models.Membership{}).Where("org_id = ? AND role = ?", models.DefaultOrgID, caller.Admin).Count(&n)
	mustf(t, n == 1, "%d admins", n)
	// Refreshed in the same second as the change: the new token lives.
	r = refresh(t, a, demoted.Refresh)
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"role":"viewer"`), "refresh: %d %s", r.Status, r.Body)
	demoted.Access = field(t, r, "access_token")
	mustf(t, works(t, a, demoted), "the refreshed token is refused")
}

// A deleted user's token reads nothing (it read its profile and its own
// sessions, 200).
func TestADeletedUsersTokenIsRefused(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "the deleted user's token, on its profile", Method: "GET", URL: "/users/me", Headers: auth, Setup: deletedByAdmin,
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"session_ended"`}},
		{Name: "the deleted user's token, on its sessions", Method: "GET", URL: "/users/me/sessions", Headers: auth, Setup: deletedByAdmin,
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"session_ended"`}},
		{Name: "the deleted user's refresh token", Method: "POST", URL: "/auth/refresh", Body: map[string]string{"refresh_token": "{refresh}"}, Setup: deletedByAdmin,
			ExpectedStatus: 401},
		{Name: "the last admin cannot be deleted", Method: "DELETE", URL: "/admin/users/{admin_id}", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				admin := a.user(t, caller.Admin, caller.Free)
				return map[string]string{"admin": admin.Access, "admin_id": admin.ID}
			},
			ExpectedStatus: 409, ExpectedContent: []string{`"code":"last_admin"`}},
		{Name: "only admins delete users", Method: "DELETE", URL: "/admin/users/{user_id}", Headers: auth, Setup: withLogins,
			ExpectedStatus: 403},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// deletedByAdmin makes a user with a login, deletes it as an admin, and
// returns its (old) tokens.
func deletedByAdmin(t testing.TB, a *App) map[string]string {
	u := a.user(t, caller.Editor, caller.Free)
	admin := a.user(t, caller.Admin, caller.Free)
	r := a.do(t, Request{Method: "DELETE", URL: "/admin/users/" + u.ID, Headers: bearer(admin)})
	mustf(t, r.Status == 204, "delete: %d %s", r.Status, r.Body)
	var ev models.AuditEvent
	a.DB.Where("action = ?", "user.deleted").Take(&ev)
	mustf(t, ev.TargetID == u.ID && ev.ActorID == admin.ID, "audit: %+v", ev)
	return map[string]string{"token": u.Access, "refresh": u.Refresh}
}

// Only a live refresh token speaks for other sessions: an old, rotated
// one cannot log the account out everywhere.
func TestARotatedRefreshTokenCannotEndEverySession(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	first, second := twoLogins(t, a, caller.Viewer)
	old := first.Refresh
	r := refresh(t, a, old)
	mustf(t, r.Status == 200, "refresh: %d", r.Status)
	first.Access, first.Refresh = field(t, r, "access_token"), field(t, r, "refresh_token")
	a.Clock.Advance(time.Minute)
	for _, scope := range []string{"global", "others"} {
		r = a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": old, "scope": scope}})
		mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_refresh_token"), "scope %s with a rotated token: %d %s", scope, r.Status, r.Body)
	}
	mustf(t, works(t, a, first) && works(t, a, second), "a rotated token ended sessions")
}

// A refresh after a logout or a reset is a revoked token, not a theft: 401
// with no reuse event and no family revocation.
func TestARefreshAfterLogoutIsNotTheft(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": u.Refresh}})
	a.Clock.Advance(time.Minute)
	r := refresh(t, a, u.Refresh)
	mustf(t, r.Status == 401 && strings.Contains(r.Body, `"code":"invalid_refresh_token"`), "refresh after logout: %d %s", r.Status, r.Body)
	mustf(t, auditCount(t, a, "auth.refresh_reuse", "") == 0, "audited as reuse")
	mustf(t, !strings.Contains(a.Logs.String(), "refresh_token_reuse"), "logged as reuse")
	mustf(t, auditCount(t, a, "auth.logout", "local") == 1, "the logout is not audited")
}

// On Redis, a session ended on one instance is refused by the others at
// once (published), with no Redis call on the request path.
func TestEndedSessionsAcrossInstances(t *testing.T) {
	parallelTest(t)
	url := sharedRedis(t)
	prefix := randomName("test:") + ":"
	first := newApp(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix)
	second := first.sibling(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go second.Server.FollowEndedSessions(ctx)
	u := first.user(t, caller.Viewer, caller.Free)
	mustf(t, works(t, second, u), "before")
	time.Sleep(100 * time.Millisecond) // the subscription is up
	first.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": u.Refresh}})
	deadline := time.Now().Add(2 * time.Second)
	for works(t, second, u) {
		mustf(t, time.Now().Before(deadline), "ended on the first instance, still accepted by the second after 2 s")
		time.Sleep(5 * time.Millisecond)
	}
	// An instance started afterwards reads what ended before it came.
	third := first.sibling(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix)
	mustf(t, third.Server.Stores.Ended.Resync(context.Background()) == nil, "resync")
	mustf(t, !works(t, third, u), "a new instance accepts an ended session")
}

// A row deleted by hand, not through the API, ends its tokens too, within
// a few seconds (each user's existence is read at most once per 5 s):
// before, such a token read its sessions until it expired.
func TestATokenOfAnAccountDeletedByHandIsRefused(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Editor, caller.Free)
	mustf(t, works(t, a, u), "before")
	mustf(t, a.DB.Exec("DELETE FROM users WHERE id = ?", u.ID).Error == nil, "delete")
	a.Clock.Advance(6 * time.Second)
	for _, url := range []string{"/api-keys", "/users/me/sessions", "/users/me"} {
		r := a.do(t, Request{Method: "GET", URL: url, Headers: bearer(u)})
		mustf(t, r.Status == 401 && strings.Contains(r.Body, `"code":"account_not_found"`), "%s: %d %s", url, r.Status, r.Body)
	}
}
