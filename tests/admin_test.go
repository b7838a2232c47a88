package tests

import (
	"sync"
	"testing"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

func TestAdminUsers(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "admin lists users", Method: "GET", URL: "/admin/users?per_page=5", Headers: auth, Setup: asRole("admin"),
			ExpectedStatus: 200, ExpectedContent: []string{`"per_page":5`, `"id":"{user_id}"`, `"has_more":false`}, NotExpected: []string{"password", `"total"`}},
		{Name: "admin pages users by cursor", Method: "GET", URL: "/admin/users?per_page=1", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				a.user(t, caller.Viewer, caller.Free) // a second page
				return asRole("admin")(t, a)
			},
			ExpectedStatus: 200, ExpectedContent: []string{`"has_more":true`, `"next_cursor":"`}},
		// The last admin cannot be demoted: nobody could manage users after.
		{Name: "the last admin cannot demote themselves", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"role": "editor"}, ExpectedStatus: 409, ExpectedContent: []string{`"code":"last_admin"`},
			After: func(t testing.TB, a *App, _ *Response) {
				var n int64
				a.DB.Model(&models.Membership{}).Where("org_id = ? AND role = ?", models.DefaultOrgID, caller.Admin).Count(&n)
				mustf(t, n == 1, "%d admins left", n)
			}},
		{Name: "an admin can be demoted while another remains", Method: "PATCH", URL: "/admin/users/{other}", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				vals := asRole("admin")(t, a)
				vals["other"] = a.user(t, caller.Admin, caller.Free).ID
				return vals
			},
			Body: map[string]string{"role": "viewer"}, ExpectedStatus: 200, ExpectedContent: []string{`"role":"viewer"`}},
		{Name: "the last admin may still change their own tier", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"role": "admin", "tier": "paid"}, ExpectedStatus: 200, ExpectedContent: []string{`"tier":"paid"`}},
		{Name: "editor cannot list users", Method: "GET", URL: "/admin/users", Headers: auth, Setup: asRole("editor"), ExpectedStatus: 403},
		{Name: "viewer cannot change roles", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("viewer"),
			Body: map[string]string{"role": "admin"}, ExpectedStatus: 403},
		{Name: "admin changes a tier", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"tier": "enterprise"}, ExpectedStatus: 200, ExpectedContent: []string{`"tier":"enterprise"`, `"role":"admin"`}},
		{Name: "unknown role is refused", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"role": "root"}, ExpectedStatus: 400, ExpectedContent: []string{`"role":"must be one of: viewer, `, `admin"`}},
		{Name: "empty change is refused", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("admin"),
			Body: `{}`, ExpectedStatus: 400},
		{Name: "unknown user is 404", Method: "PATCH", URL: "/admin/users/00000000-0000-4000-8000-000000000000", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"tier": "paid"}, ExpectedStatus: 404},
		{Name: "malformed user id is 400", Method: "PATCH", URL: "/admin/users/42", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"tier": "paid"}, ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_id"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// Two admins demoting each other at the same moment: one wins, the other
// gets last_admin, and one admin always remains.
func TestAdminsDemotingEachOtherKeepOne(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	x, y := a.user(t, caller.Admin, caller.Free), a.user(t, caller.Admin, caller.Free)
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, pair := range [][2]*User{{x, y}, {y, x}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + pair[1].ID, Headers: bearer(pair[0]),
				Body: map[string]string{"role": "viewer"}}).Status
		}()
	}
	wg.Wait()
	var n int64
	a.DB.Model(&models.Membership{}).Where("org_id = ? AND role = ?", models.DefaultOrgID, caller.Admin).Count(&n)
	mustf(t, n == 1, "%d admins left after %v", n, statuses)
	mustf(t, (statuses[0] == 200) != (statuses[1] == 200), "statuses %v", statuses)
}
