package tests

import (
	"slices"
	"testing"

	"github.com/tollgate/tollgate/caller"
)

func TestUsersMe(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "returns the caller", Method: "GET", URL: "/users/me", Headers: auth, Setup: asRole("editor"),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{user_id}"`, `"role":"editor"`, `"email_verified":true`},
			NotExpected: []string{"password", "hash"}},
		{Name: "needs a token", Method: "GET", URL: "/users/me", ExpectedStatus: 401,
			ExpectedContent: []string{`"code":"authentication_required"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// The roles and tiers the code knows are the rows the database accepts: a
// role or tier added to one and not the other fails here, not in
// production (docs/make-it-yours.md adds one to both).
func TestRolesAndTiersMatchTheDatabase(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	for table, want := range map[string][]string{
		"roles": func() (out []string) {
			for _, r := range caller.Roles() {
				out = append(out, string(r))
			}
			return out
		}(),
		"tiers": func() (out []string) {
			for _, r := range caller.Tiers() {
				out = append(out, string(r))
			}
			return out
		}(),
	} {
		var got []string
		mustf(t, a.DB.Raw("SELECT name FROM "+table).Scan(&got).Error == nil, "read %s", table)
		slices.Sort(got)
		slices.Sort(want)
		mustf(t, slices.Equal(got, want), "%s: the database has %v, the code %v", table, got, want)
	}
	for _, tier := range caller.Tiers() {
		_, ok := a.Config.RateLimits.Tiers[string(tier)]
		mustf(t, ok, "RATE_LIMIT_TIERS has no limit for tier %s", tier)
	}
	// And the database refuses what the code does not know.
	u := a.user(t, caller.Viewer, caller.Free)
	mustf(t, a.DB.Exec("UPDATE users SET role = 'root' WHERE id = ?", u.ID).Error != nil, "an unknown role was stored")
}
