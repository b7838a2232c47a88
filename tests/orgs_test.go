package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/database/scan"
	"github.com/tollgate/tollgate/models"
)

// Team is an organization made over HTTP by its owner, with an admin, an
// editor and a viewer added (fixture rows, as a.user makes users), each
// switched into it with POST /auth/refresh and org_id.
type Team struct {
	ID                           string
	Owner, Admin, Editor, Viewer *User
}

func (a *App) team(t testing.TB, slug string) *Team {
	t.Helper()
	tm := &Team{Owner: a.user(t, caller.Viewer, caller.Free)}
	r := a.do(t, Request{Method: "POST", URL: "/orgs", Headers: bearer(tm.Owner), Body: map[string]string{"name": "Team " + slug, "slug": slug}})
	mustf(t, r.Status == http.StatusCreated, "create org: %d %s", r.Status, r.Body)
	tm.ID = field(t, r, "id")
	org := uuid.MustParse(tm.ID)
	for role, into := range map[caller.Role]**User{caller.Admin: &tm.Admin, caller.Editor: &tm.Editor, caller.Viewer: &tm.Viewer} {
		u := a.user(t, caller.Viewer, caller.Free)
		mustf(t, a.DB.Create(&models.Membership{OrgID: org, UserID: uuid.MustParse(u.ID), Role: role, CreatedAt: a.Clock.Now()}).Error == nil, "add %s", role)
		*into = u
	}
	for _, u := range []*User{tm.Owner, tm.Admin, tm.Editor, tm.Viewer} {
		a.switchTo(t, u, tm.ID)
	}
	return tm
}

// switchTo refreshes u's session into org and keeps the new pair.
func (a *App) switchTo(t testing.TB, u *User, org string) {
	t.Helper()
	r := a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: map[string]string{"refresh_token": u.Refresh, "org_id": org}})
	mustf(t, r.Status == http.StatusOK, "switch to %s: %d %s", org, r.Status, r.Body)
	u.Access, u.Refresh = field(t, r, "access_token"), field(t, r, "refresh_token")
}

// asTeam gives {org}, {token} of the member of role (owner, admin, editor,
// viewer) and the other members' ids, of a fresh team.
func asTeam(role string) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		tm := a.team(t, randomSlug())
		by := map[string]*User{"owner": tm.Owner, "admin": tm.Admin, "editor": tm.Editor, "viewer": tm.Viewer}
		return map[string]string{"org": tm.ID, "token": by[role].Access, "owner_id": tm.Owner.ID, "admin_id": tm.Admin.ID,
			"editor_id": tm.Editor.ID, "viewer_id": tm.Viewer.ID, "user_id": by[role].ID}
	}
}

func randomSlug() string { return randomName("t-") }

// decodeClaims reads a JWT's claims without verifying it.
func decodeClaims(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	mustf(t, len(parts) == 3, "not a JWT: %q", raw)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	mustf(t, err == nil, "claims: %v", err)
	var m map[string]any
	mustf(t, json.Unmarshal(b, &m) == nil, "claims json")
	return m
}

func TestOrgs(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "a user creates an organization and owns it", Method: "POST", URL: "/orgs", Headers: auth, Setup: asRole("viewer"),
			Body: map[string]string{"name": "  Acme ", "slug": "acme"}, ExpectedStatus: 201,
			ExpectedContent: []string{`"name":"Acme"`, `"slug":"acme"`, `"role":"owner"`, `"tier":"free"`, `"default":false`}},
		{Name: "a slug in use is 409", Method: "POST", URL: "/orgs", Headers: auth, Setup: asTeam("owner"),
			Body: map[string]string{"name": "Again", "slug": "default"}, ExpectedStatus: 409, ExpectedContent: []string{`"code":"slug_taken"`}},
		{Name: "a bad slug is 400", Method: "POST", URL: "/orgs", Headers: auth, Setup: asRole("viewer"),
			Body: map[string]string{"name": "Acme", "slug": "Not A Slug"}, ExpectedStatus: 400, ExpectedContent: []string{`"slug":"must be`}},
		{Name: "a blank name is 400", Method: "POST", URL: "/orgs", Headers: auth, Setup: asRole("viewer"),
			Body: map[string]string{"name": " \t ", "slug": "acme"}, ExpectedStatus: 400, ExpectedContent: []string{`"name":"must not be blank"`}},
		{Name: "invite-only leaves making organizations to the platform", Method: "POST", URL: "/orgs", Headers: auth, Setup: asRole("viewer"),
			Env: []string{"ORG_SIGNUP", "invite-only"}, Body: map[string]string{"name": "Acme", "slug": "acme"},
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"org_creation_closed"`}},
		{Name: "an API key cannot manage organizations", Method: "GET", URL: "/orgs", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				k, _ := a.makeKey(t, a.user(t, caller.Admin, caller.Free), map[string]any{"name": "k", "scopes": []string{"users:read"}})
				return map[string]string{"key": k}
			}, ExpectedStatus: 403, ExpectedContent: []string{`"code":"user_token_required"`}},
		{Name: "members list their organizations with their role", Method: "GET", URL: "/orgs", Headers: auth, Setup: asTeam("editor"),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{org}"`, `"role":"editor"`, `"default":true`, `"role":"viewer"`}},
		{Name: "a member reads the organization", Method: "GET", URL: "/orgs/{org}", Headers: auth, Setup: asTeam("viewer"),
			ExpectedStatus: 200, ExpectedContent: []string{`"role":"viewer"`}},
		{Name: "a non-member gets 404, not 403", Method: "GET", URL: "/orgs/{org}", Headers: map[string]string{"Authorization": "Bearer {outsider}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				vals := asTeam("owner")(t, a)
				vals["outsider"] = a.team(t, randomSlug()).Owner.Access
				return vals
			}, ExpectedStatus: 404, ExpectedContent: []string{`"code":"org_not_found"`}},
		{Name: "an admin renames it", Method: "PATCH", URL: "/orgs/{org}", Headers: auth, Setup: asTeam("admin"),
			Body: map[string]string{"name": "Renamed"}, ExpectedStatus: 200, ExpectedContent: []string{`"name":"Renamed"`}},
		{Name: "an editor may not", Method: "PATCH", URL: "/orgs/{org}", Headers: auth, Setup: asTeam("editor"),
			Body: map[string]string{"name": "Renamed"}, ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
		{Name: "an owner cannot set the tier", Method: "PATCH", URL: "/orgs/{org}", Headers: auth, Setup: asTeam("owner"),
			Body: map[string]string{"tier": "enterprise"}, ExpectedStatus: 403, ExpectedContent: []string{`"code":"tier_platform_only"`}},
		{Name: "a platform operator sets the tier", Method: "PATCH", URL: "/orgs/{org}", Headers: map[string]string{"Authorization": "Bearer {platform}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				vals := asTeam("owner")(t, a)
				vals["platform"] = a.user(t, caller.Admin, caller.Free).Access
				return vals
			}, Body: map[string]string{"tier": "paid"}, ExpectedStatus: 200, ExpectedContent: []string{`"tier":"paid"`}},
		{Name: "an empty change is 400", Method: "PATCH", URL: "/orgs/{org}", Headers: auth, Setup: asTeam("owner"),
			Body: `{}`, ExpectedStatus: 400, ExpectedContent: []string{`"body":"give name, slug, tier or sso_enforced"`}},
		{Name: "an admin cannot delete it", Method: "DELETE", URL: "/orgs/{org}", Headers: auth, Setup: asTeam("admin"),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"owner_required"`}},
		{Name: "the owner deletes it, and its members' tokens stop", Method: "DELETE", URL: "/orgs/{org}", Headers: auth, Setup: asTeam("owner"),
			ExpectedStatus: 204, After: func(t testing.TB, a *App, r *Response) {
				got := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + r.vals["token"]}})
				mustf(t, got.Status == 401 && strings.Contains(got.Body, "session_ended"), "after delete: %d %s", got.Status, got.Body)
			}},
		{Name: "the default organization stays", Method: "DELETE", URL: "/orgs/" + models.DefaultOrgID.String(), Headers: auth, Setup: asRole("admin"),
			ExpectedStatus: 409, ExpectedContent: []string{`"code":"default_organization"`}},
		{Name: "nor may its admins delete it", Method: "DELETE", URL: "/orgs/" + models.DefaultOrgID.String(), Headers: auth, Setup: asRole("editor"),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"owner_required"`}},
		{Name: "members list the members", Method: "GET", URL: "/orgs/{org}/members", Headers: auth, Setup: asTeam("viewer"),
			ExpectedStatus: 200, ExpectedContent: []string{`"user_id":"{owner_id}"`, `"role":"owner"`, `"user_id":"{editor_id}"`, `"has_more":false`}},
		{Name: "an admin changes a role", Method: "PATCH", URL: "/orgs/{org}/members/{viewer_id}", Headers: auth, Setup: asTeam("admin"),
			Body: map[string]string{"role": "editor"}, ExpectedStatus: 200, ExpectedContent: []string{`"role":"editor"`, `"user_id":"{viewer_id}"`, `"email":"viewer-`}},
		{Name: "an admin cannot make an owner", Method: "PATCH", URL: "/orgs/{org}/members/{viewer_id}", Headers: auth, Setup: asTeam("admin"),
			Body: map[string]string{"role": "owner"}, ExpectedStatus: 403, ExpectedContent: []string{`"code":"owner_required"`}},
		{Name: "the last owner cannot step down", Method: "PATCH", URL: "/orgs/{org}/members/{owner_id}", Headers: auth, Setup: asTeam("owner"),
			Body: map[string]string{"role": "admin"}, ExpectedStatus: 409, ExpectedContent: []string{`"code":"last_owner"`}},
		{Name: "an unknown role is 400", Method: "PATCH", URL: "/orgs/{org}/members/{viewer_id}", Headers: auth, Setup: asTeam("owner"),
			Body: map[string]string{"role": "root"}, ExpectedStatus: 400},
		{Name: "an unknown member is 404", Method: "PATCH", URL: "/orgs/{org}/members/" + uuid.NewString(), Headers: auth, Setup: asTeam("owner"),
			Body: map[string]string{"role": "viewer"}, ExpectedStatus: 404, ExpectedContent: []string{`"code":"member_not_found"`}},
		{Name: "an admin removes a member", Method: "DELETE", URL: "/orgs/{org}/members/{editor_id}", Headers: auth, Setup: asTeam("admin"),
			ExpectedStatus: 204},
		{Name: "an admin cannot remove the owner", Method: "DELETE", URL: "/orgs/{org}/members/{owner_id}", Headers: auth, Setup: asTeam("admin"),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"owner_required"`}},
		{Name: "a viewer removes no one", Method: "DELETE", URL: "/orgs/{org}/members/{editor_id}", Headers: auth, Setup: asTeam("viewer"),
			ExpectedStatus: 403},
		{Name: "a member leaves", Method: "POST", URL: "/orgs/{org}/leave", Headers: auth, Setup: asTeam("editor"), ExpectedStatus: 204},
		{Name: "the last owner cannot leave", Method: "POST", URL: "/orgs/{org}/leave", Headers: auth, Setup: asTeam("owner"),
			ExpectedStatus: 409, ExpectedContent: []string{`"code":"last_owner"`}},
		{Name: "the owner transfers ownership", Method: "POST", URL: "/orgs/{org}/transfer", Headers: auth, Setup: asTeam("owner"),
			Body: `{"user_id":"{editor_id}"}`, ExpectedStatus: 204, After: func(t testing.TB, a *App, r *Response) {
				org := uuid.MustParse(r.vals["org"])
				var roles []string
				a.DB.Model(&models.Membership{}).Where("org_id = ? AND role = ?", org, caller.Owner).Pluck("user_id", &roles)
				mustf(t, len(roles) == 1 && roles[0] == r.vals["editor_id"], "owners now %v", roles)
			}},
		{Name: "an admin cannot transfer", Method: "POST", URL: "/orgs/{org}/transfer", Headers: auth, Setup: asTeam("admin"),
			Body: `{"user_id":"{editor_id}"}`, ExpectedStatus: 403, ExpectedContent: []string{`"code":"owner_required"`}},
		{Name: "an admin invites, by mail only", Method: "POST", URL: "/orgs/{org}/invitations", Headers: auth, Setup: asTeam("admin"),
			Body: map[string]string{"email": " Jonas@Example.com", "role": "editor"}, ExpectedStatus: 201,
			ExpectedContent: []string{`"email":"jonas@example.com"`, `"status":"pending"`, `"role":"editor"`}, NotExpected: []string{"token"},
			After: func(t testing.TB, a *App, _ *Response) {
				mustf(t, invitationToken(t, a, "jonas@example.com") != "", "no invitation mail")
			}},
		{Name: "an admin cannot invite an owner", Method: "POST", URL: "/orgs/{org}/invitations", Headers: auth, Setup: asTeam("admin"),
			Body: map[string]string{"email": "jonas@example.com", "role": "owner"}, ExpectedStatus: 403},
		{Name: "a viewer cannot invite", Method: "POST", URL: "/orgs/{org}/invitations", Headers: auth, Setup: asTeam("viewer"),
			Body: map[string]string{"email": "jonas@example.com", "role": "viewer"}, ExpectedStatus: 403},
		{Name: "a bad address is 400", Method: "POST", URL: "/orgs/{org}/invitations", Headers: auth, Setup: asTeam("owner"),
			Body: map[string]string{"email": "not-an-address", "role": "viewer"}, ExpectedStatus: 400, ExpectedContent: []string{`"email":`}},
		{Name: "admins list invitations", Method: "GET", URL: "/orgs/{org}/invitations", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				vals := asTeam("admin")(t, a)
				a.invite(t, vals["token"], vals["org"], "jonas@example.com", "viewer")
				return vals
			}, ExpectedStatus: 200, ExpectedContent: []string{`"email":"jonas@example.com"`, `"status":"pending"`}},
		{Name: "an admin revokes an invitation", Method: "DELETE", URL: "/orgs/{org}/invitations/{inv}", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				vals := asTeam("admin")(t, a)
				vals["inv"] = a.invite(t, vals["token"], vals["org"], "jonas@example.com", "viewer")
				return vals
			}, ExpectedStatus: 204},
		{Name: "an unknown invitation is 404", Method: "DELETE", URL: "/orgs/{org}/invitations/" + uuid.NewString(), Headers: auth, Setup: asTeam("owner"),
			ExpectedStatus: 404, ExpectedContent: []string{`"code":"invitation_not_found"`}},
		{Name: "admins read the organization's audit log", Method: "GET", URL: "/orgs/{org}/audit", Headers: auth, Setup: asTeam("admin"),
			ExpectedStatus: 200, ExpectedContent: []string{`"action":"org.created"`, `"org_id":"{org}"`}},
		{Name: "an editor may not read it", Method: "GET", URL: "/orgs/{org}/audit", Headers: auth, Setup: asTeam("editor"), ExpectedStatus: 403},
		{Name: "an organization's admin is no platform operator", Method: "GET", URL: "/admin/users", Headers: auth, Setup: asTeam("owner"),
			ExpectedStatus: 403},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// invite invites email to org with role as the holder of token and
// returns the invitation's id.
func (a *App) invite(t testing.TB, token, org, email, role string) string {
	t.Helper()
	r := a.do(t, Request{Method: "POST", URL: "/orgs/" + org + "/invitations", Headers: map[string]string{"Authorization": "Bearer " + token},
		Body: map[string]string{"email": email, "role": role}})
	mustf(t, r.Status == http.StatusCreated, "invite: %d %s", r.Status, r.Body)
	return field(t, r, "id")
}

var invitationRE = regexp.MustCompile(`\{"token":"([0-9a-f]+)"\}`)

// invitationToken is the token of the newest invitation mailed to email.
func invitationToken(t testing.TB, a *App, email string) string {
	t.Helper()
	sent := a.sent(t)
	for i := len(sent) - 1; i >= 0; i-- {
		if m := invitationRE.FindStringSubmatch(sent[i].Body); sent[i].To == email && m != nil {
			return m[1]
		}
	}
	t.Fatalf("no invitation mail to %s", email)
	return ""
}

// An invitation is accepted once, by the invited verified address only,
// and the new member switches into the organization with a refresh.
func TestInvitationAcceptAndSwitch(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	tm := a.team(t, randomSlug())
	jonas, other := a.user(t, caller.Viewer, caller.Free), a.user(t, caller.Viewer, caller.Free)
	a.invite(t, tm.Admin.Access, tm.ID, jonas.Email, "editor")
	token := invitationToken(t, a, jonas.Email)
	accept := func(u *User, tok string) *Response {
		return a.do(t, Request{Method: "POST", URL: "/invitations/accept", Headers: bearer(u), Body: map[string]string{"token": tok}})
	}
	r := accept(other, token)
	mustf(t, r.Status == 403 && strings.Contains(r.Body, "invitation_email_mismatch"), "someone else: %d %s", r.Status, r.Body)
	r = accept(jonas, "nonsense")
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "invitation_invalid"), "bad token: %d %s", r.Status, r.Body)
	// Twenty tabs accept at once: exactly one joins.
	results := atOnce(20, func(int) *Response { return accept(jonas, token) })
	won := 0
	for _, r := range results {
		switch {
		case r.Status == 200:
			won++
		case r.Status == 400 && strings.Contains(r.Body, "invitation_invalid"), r.Status == 409:
		default:
			t.Errorf("concurrent accept: %d %s", r.Status, r.Body)
		}
	}
	mustf(t, won == 1, "%d accepts won", won)
	r = accept(jonas, token)
	mustf(t, r.Status == 400, "reused invitation: %d %s", r.Status, r.Body)
	// Still acting in the default organization until a switch.
	me := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(jonas)})
	mustf(t, strings.Contains(me.Body, `"org_id":"`+models.DefaultOrgID.String()+`"`), "before the switch: %s", me.Body)
	a.switchTo(t, jonas, tm.ID)
	me = a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(jonas)})
	mustf(t, strings.Contains(me.Body, `"org_id":"`+tm.ID+`"`) && strings.Contains(me.Body, `"role":"editor"`), "after the switch: %s", me.Body)
	claims := decodeClaims(t, jonas.Access)
	mustf(t, claims["org_id"] == tm.ID && claims["org_role"] == "editor" && claims["role"] == "editor" && claims["platform_admin"] == nil,
		"claims %v", claims)
	// Switching into an organization one is not in is 404.
	r = a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: map[string]string{"refresh_token": other.Refresh, "org_id": tm.ID}})
	mustf(t, r.Status == 404 && strings.Contains(r.Body, "org_not_found"), "outsider switch: %d %s", r.Status, r.Body)
	// An expired invitation is refused.
	a.invite(t, tm.Owner.Access, tm.ID, other.Email, "viewer")
	late := invitationToken(t, a, other.Email)
	a.Clock.Advance(8 * 24 * time.Hour)
	a.login(t, other)
	r = accept(other, late)
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "invitation_expired"), "expired: %d %s", r.Status, r.Body)
}

// The organization's budget holds for all its members together, beside
// each member's own, and RateLimit-Policy names both.
func TestOrgBudgetIsShared(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_ORG_TIERS", "free=4/1m")
	tm := a.team(t, randomSlug())
	var statuses []int
	for _, u := range []*User{tm.Owner, tm.Admin, tm.Editor, tm.Viewer, tm.Owner} {
		r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
		statuses = append(statuses, r.Status)
		if r.Status == 200 {
			policy := r.Header.Values("RateLimit-Policy")
			mustf(t, len(policy) == 2 && strings.Contains(strings.Join(policy, ","), `"org";q=4;w=60`), "policy %v", policy)
		} else {
			mustf(t, r.Status == 429 && r.Header.Get("Retry-After") != "", "over budget: %d %v", r.Status, r.Header)
		}
	}
	mustf(t, slices.Equal(statuses, []int{200, 200, 200, 200, 429}), "statuses %v", statuses)
	// The default organization has no tier, so no team budget.
	solo := a.user(t, caller.Viewer, caller.Free)
	for range 5 {
		r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(solo)})
		mustf(t, r.Status == 200 && len(r.Header.Values("RateLimit-Policy")) == 1, "default org: %d %v", r.Status, r.Header.Values("RateLimit-Policy"))
	}
}

// ORG_SIGNUP=create-own gives a new account an organization of its own.
func TestSignupCreatesOwnOrganization(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "ORG_SIGNUP", "create-own")
	r := a.do(t, Request{Method: "POST", URL: "/auth/register", Body: map[string]string{"email": "ana@example.com", "password": testPassword}})
	mustf(t, r.Status == 202, "register: %d %s", r.Status, r.Body)
	var u models.User
	mustf(t, a.DB.Where("email = ?", "ana@example.com").Take(&u).Error == nil, "no user")
	var ms []models.Membership
	a.DB.Where("user_id = ?", u.ID).Find(&ms)
	mustf(t, len(ms) == 1 && ms[0].Role == caller.Owner && ms[0].OrgID != models.DefaultOrgID, "memberships %+v", ms)
}

// On PostgreSQL, row-level security is the second wall behind the
// services' own org filters: a query through the app's own database handle
// that names no organization sees no organization's rows, one scoped to an
// organization sees only that one's, and it cannot write a row into
// another. The app's role (as in a deployment) owns nothing.
func TestRowLevelSecurity(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	if a.DB.Dialect != "postgres" {
		t.Skip("row-level security is PostgreSQL's (CI runs this on it)")
	}
	role, _, err := a.DB.Role(context.Background())
	mustf(t, err == nil && role.Unbound() == "", "the app's role is not bound by row-level security: %+v %v", role, err)
	mine, theirs := a.team(t, randomSlug()), a.team(t, randomSlug())
	a.makeKey(t, mine.Admin, readKey)
	a.makeKey(t, theirs.Admin, readKey)
	var all int64
	mustf(t, a.Rows(t).Model(&models.APIKey{}).Count(&all).Error == nil && all == 2, "the owner sees %d keys, want 2", all)

	// Deliberately unscoped, through the app's own handle.
	var n int64
	mustf(t, a.DB.Model(&models.APIKey{}).Count(&n).Error == nil && n == 0, "an unscoped query saw %d keys", n)
	res := a.DB.Exec("UPDATE api_keys SET name = 'taken'")
	mustf(t, res.Error == nil && res.RowsAffected == 0, "an unscoped update touched %d keys: %v", res.RowsAffected, res.Error)

	// Scoped to one organization: its rows only, and no moving them out.
	err = a.DB.Transaction(func(tx *gorm.DB) error {
		mustf(t, tx.Exec("SELECT set_config('app.org_id', ?, true)", mine.ID).Error == nil, "scope")
		var orgs []string
		mustf(t, tx.Model(&models.APIKey{}).Pluck("org_id", &orgs).Error == nil && slices.Equal(orgs, []string{mine.ID}), "scoped: %v", orgs)
		res := tx.Exec("UPDATE api_keys SET name = 'taken' WHERE org_id = ?", theirs.ID)
		mustf(t, res.Error == nil && res.RowsAffected == 0, "updated another org's key: %d %v", res.RowsAffected, res.Error)
		return tx.Exec("UPDATE api_keys SET org_id = ?", theirs.ID).Error
	})
	mustf(t, err != nil && strings.Contains(err.Error(), "row-level security"), "moved a key into another org: %v", err)
	// The scope ended with its transaction: the pool's connections carry
	// nothing on.
	for range 8 {
		mustf(t, a.DB.Model(&models.APIKey{}).Count(&n).Error == nil && n == 0, "a pooled connection kept the scope: %d keys", n)
	}
	// And the app itself still works across it: each admin lists their own.
	r := a.do(t, Request{Method: "GET", URL: "/api-keys", Headers: bearer(mine.Admin)})
	mustf(t, r.Status == 200 && strings.Count(r.Body, `"org_id":"`+mine.ID+`"`) == 1 && !strings.Contains(r.Body, theirs.ID), "list: %d %s", r.Status, r.Body)

	// A scoped context that reaches GORM's own queries is refused, not run
	// unscoped (where it would quietly see nothing).
	var keys []models.APIKey
	err = a.DB.WithContext(scan.Scoped(context.Background(), scan.Scope{Setting: "app.org_id", Value: mine.ID})).Find(&keys).Error
	mustf(t, err != nil && strings.Contains(err.Error(), "scoped read"), "GORM ran a scoped read: %v", err)
}
