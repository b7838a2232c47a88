package tests

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/tollgate/tollgate/models"
)

// asRole logs in a user of role and returns its token as {token}, its id as
// {user_id}, and a project owned by an editor as {project}.
func asRole(role string) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		owner := a.user(t, models.RoleEditor, models.TierFree)
		r := a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(owner), Body: map[string]string{"name": "Seeded", "description": "d"}})
		mustf(t, r.Status == 201, "seed project: %d %s", r.Status, r.Body)
		vals := map[string]string{"project": field(t, r, "id"), "owner_token": owner.Access}
		if role == "owner" {
			vals["token"], vals["user_id"] = owner.Access, owner.ID
			return vals
		}
		u := a.user(t, role, models.TierFree)
		vals["token"], vals["user_id"] = u.Access, u.ID
		return vals
	}
}

var auth = map[string]string{"Authorization": "Bearer {token}"}

func TestProjects(t *testing.T) {
	scenarios := []Scenario{
		// Seed 001 step 5, role-based access.
		{Name: "viewer can list projects", Method: "GET", URL: "/projects", Headers: auth, Setup: asRole("viewer"),
			ExpectedStatus: 200, ExpectedContent: []string{`"data":[{"id":"{project}"`, `"page":1`, `"per_page":20`, `"total":1`}},
		{Name: "viewer cannot create a project", Method: "POST", URL: "/projects", Headers: auth, Setup: asRole("viewer"),
			Body: map[string]string{"name": "Nope"}, ExpectedStatus: 403,
			ExpectedContent: []string{`{"error":"Insufficient permissions","code":"insufficient_permissions"}`}},
		{Name: "editor can create a project and owns it", Method: "POST", URL: "/projects", Headers: auth, Setup: asRole("editor"),
			Body: map[string]string{"name": "  Launch ", "description": "All of it"}, ExpectedStatus: 201,
			ExpectedContent: []string{`"name":"Launch"`, `"description":"All of it"`, `"owner_id":"{user_id}"`}},
		{Name: "admin can create a project", Method: "POST", URL: "/projects", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"name": "A"}, ExpectedStatus: 201},
		{Name: "editor cannot delete", Method: "DELETE", URL: "/projects/{project}", Headers: auth, Setup: asRole("editor"), ExpectedStatus: 403},
		{Name: "viewer cannot delete", Method: "DELETE", URL: "/projects/{project}", Headers: auth, Setup: asRole("viewer"), ExpectedStatus: 403},
		{Name: "admin can delete", Method: "DELETE", URL: "/projects/{project}", Headers: auth, Setup: asRole("admin"), ExpectedStatus: 204,
			After: func(t testing.TB, a *App, _ *Response) {
				var n int64
				a.DB.Model(&models.Project{}).Count(&n)
				mustf(t, n == 0, "project still stored")
			}},
		{Name: "deleting an unknown project is 404", Method: "DELETE", URL: "/projects/00000000-0000-4000-8000-000000000000", Headers: auth,
			Setup: asRole("admin"), ExpectedStatus: 404, ExpectedContent: []string{`"code":"project_not_found"`}},
		{Name: "anonymous cannot list", Method: "GET", URL: "/projects", ExpectedStatus: 401,
			ExpectedHeaders: map[string]string{"WWW-Authenticate": "Bearer"}},

		{Name: "get one project", Method: "GET", URL: "/projects/{project}", Headers: auth, Setup: asRole("viewer"),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{project}"`, `"name":"Seeded"`}},
		{Name: "unknown project is 404", Method: "GET", URL: "/projects/00000000-0000-4000-8000-000000000000", Headers: auth,
			Setup: asRole("viewer"), ExpectedStatus: 404},
		{Name: "malformed id is 400", Method: "GET", URL: "/projects/not-a-uuid", Headers: auth,
			Setup: asRole("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_id"`}},
		{Name: "injection-looking id is just malformed", Method: "GET", URL: "/projects/1%27%20OR%20%271%27=%271", Headers: auth,
			Setup: asRole("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_id"`}},

		{Name: "per_page over 100 is refused", Method: "GET", URL: "/projects?per_page=101", Headers: auth, Setup: asRole("viewer"),
			ExpectedStatus: 400, ExpectedContent: []string{`"per_page":"must be a whole number from 1 to 100"`}},
		{Name: "page 0 is refused", Method: "GET", URL: "/projects?page=0", Headers: auth, Setup: asRole("viewer"),
			ExpectedStatus: 400, ExpectedContent: []string{`"page"`}},
		{Name: "non-numeric page is refused", Method: "GET", URL: "/projects?page=abc", Headers: auth, Setup: asRole("viewer"),
			ExpectedStatus: 400},
		{Name: "a page past the end is empty", Method: "GET", URL: "/projects?page=5&per_page=10", Headers: auth, Setup: asRole("viewer"),
			ExpectedStatus: 200, ExpectedContent: []string{`"data":[]`, `"page":5`, `"per_page":10`, `"total":1`}},

		{Name: "missing name", Method: "POST", URL: "/projects", Headers: auth, Setup: asRole("editor"), Body: `{"description":"x"}`,
			ExpectedStatus: 400, ExpectedContent: []string{`"name":"is required"`}},
		{Name: "blank name", Method: "POST", URL: "/projects", Headers: auth, Setup: asRole("editor"), Body: `{"name":"   "}`,
			ExpectedStatus: 400, ExpectedContent: []string{`"name":"is required"`}},
		{Name: "name too long", Method: "POST", URL: "/projects", Headers: auth, Setup: asRole("editor"),
			Body: map[string]string{"name": fmt.Sprintf("%0201d", 0)}, ExpectedStatus: 400, ExpectedContent: []string{`"name":"must be at most 200 characters"`}},
		{Name: "owner_id in the body is ignored", Method: "POST", URL: "/projects", Headers: auth, Setup: asRole("editor"),
			Body: `{"name":"Mine","owner_id":"00000000-0000-4000-8000-000000000000"}`, ExpectedStatus: 201,
			ExpectedContent: []string{`"owner_id":"{user_id}"`}},

		{Name: "editor can update own project", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: asRole("owner"),
			Body: map[string]string{"name": "Renamed"}, ExpectedStatus: 200, ExpectedContent: []string{`"name":"Renamed"`, `"description":"d"`}},
		{Name: "editor cannot update another's project", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: asRole("editor"),
			Body: map[string]string{"name": "Hijack"}, ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
		{Name: "admin can update any project", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"description": "by admin"}, ExpectedStatus: 200, ExpectedContent: []string{`"description":"by admin"`, `"name":"Seeded"`}},
		{Name: "viewer cannot update", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: asRole("viewer"),
			Body: map[string]string{"name": "x"}, ExpectedStatus: 403},
		{Name: "empty patch is refused", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: asRole("owner"),
			Body: `{}`, ExpectedStatus: 400},
		{Name: "update of an unknown project is 404", Method: "PATCH", URL: "/projects/00000000-0000-4000-8000-000000000000", Headers: auth,
			Setup: asRole("admin"), Body: map[string]string{"name": "x"}, ExpectedStatus: 404},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

func TestProjectPagination(t *testing.T) {
	a := newApp(t)
	ed := a.user(t, models.RoleEditor, models.TierFree)
	for i := range 5 {
		r := a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(ed), Body: map[string]string{"name": fmt.Sprintf("p%d", i)}})
		mustf(t, r.Status == http.StatusCreated, "create: %d", r.Status)
		a.Clock.Advance(1e9)
	}
	var page struct {
		Data  []struct{ Name string }
		Total int
	}
	a.do(t, Request{Method: "GET", URL: "/projects?page=2&per_page=2", Headers: bearer(ed)}).JSON(t, &page)
	mustf(t, page.Total == 5 && len(page.Data) == 2 && page.Data[0].Name == "p2" && page.Data[1].Name == "p1", "page 2: %+v", page)
}
