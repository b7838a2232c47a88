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
			Name: "admin sees users and sessions", Method: "GET", URL: "/analytics", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				vals := asRole("admin")(t, a)
				a.Clock.Advance(8 * 24 * time.Hour)
				a.user(t, caller.Editor, caller.Paid)
				register(t, a, "unverified@example.com")
				admin := a.user(t, caller.Admin, caller.Enterprise)
				vals["token"] = admin.Access
				return vals
			},
			ExpectedStatus: 200,
			ExpectedContent: []string{
				`"by_role":{"admin":2,"editor":1,`, `"viewer":1}`, `"by_tier":{"enterprise":1,"free":2,"paid":1`, // and 0 for any role or tier added
				`"verified":3`, `"unverified":1`,
				// Sessions from 8 days ago have expired (7-day refresh tokens).
				`"active_refresh_sessions":2`,
			},
		},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}
