package tests

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
)

func TestAnalytics(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "viewer is refused", Method: "GET", URL: "/analytics", Headers: auth, Setup: asRole("viewer"), ExpectedStatus: 403},
		{Name: "editor is refused", Method: "GET", URL: "/analytics", Headers: auth, Setup: asRole("editor"), ExpectedStatus: 403},
		{Name: "anonymous is refused", Method: "GET", URL: "/analytics", ExpectedStatus: 401},
		{
			Name: "admin sees users, projects and sessions", Method: "GET", URL: "/analytics", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				vals := asRole("admin")(t, a) // an editor with one project, and an admin
				a.Clock.Advance(8 * 24 * time.Hour)
				ed := a.user(t, caller.Editor, caller.Paid)
				a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(ed), Body: map[string]string{"name": "recent"}})
				register(t, a, "unverified@example.com")
				admin := a.user(t, caller.Admin, caller.Enterprise)
				vals["token"] = admin.Access
				return vals
			},
			ExpectedStatus: 200,
			ExpectedContent: []string{
				`"by_role":{"admin":2,"editor":2,"viewer":1}`, `"by_tier":{"enterprise":1,"free":3,"paid":1}`,
				`"verified":4`, `"unverified":1`, `"total":2`, `"created_last_7_days":1`,
				// Sessions from 8 days ago have expired (7-day refresh tokens).
				`"active_refresh_sessions":2`,
			},
		},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}
