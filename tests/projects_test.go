package tests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/database/scan"
	"github.com/tollgate/tollgate/models"
)

// withProject seeds a project of an editor ({project}, {owner_token}) and
// gives {token} and {user_id} of a user of role ("owner": that editor).
func withProject(role string) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		owner := a.user(t, caller.Editor, caller.Free)
		r := a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(owner), Body: map[string]string{"name": "Seeded", "description": "d"}})
		mustf(t, r.Status == 201, "seed project: %d %s", r.Status, r.Body)
		vals := map[string]string{"project": field(t, r, "id"), "owner_token": owner.Access}
		if role == "owner" {
			vals["token"], vals["user_id"] = owner.Access, owner.ID
			return vals
		}
		u := a.user(t, caller.Role(role), caller.Free)
		vals["token"], vals["user_id"] = u.Access, u.ID
		return vals
	}
}

func TestProjects(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		// Role-based access: viewers read, editors write their own, admins all.
		{Name: "viewer can list projects", Method: "GET", URL: "/projects", Headers: auth, Setup: withProject("viewer"),
			ExpectedStatus: 200, ExpectedContent: []string{`"data":[{"id":"{project}"`, `"page":1`, `"per_page":20`, `"has_more":false`},
			NotExpected: []string{`"total"`, `"next_cursor"`}},
		{Name: "viewer cannot create a project", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("viewer"),
			Body: map[string]string{"name": "Nope"}, ExpectedStatus: 403,
			ExpectedContent: []string{`{"error":"Insufficient permissions","code":"insufficient_permissions"}`}},
		{Name: "editor can create a project and owns it", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("editor"),
			Body: map[string]string{"name": "  Launch ", "description": "All of it"}, ExpectedStatus: 201,
			ExpectedContent: []string{`"name":"Launch"`, `"description":"All of it"`, `"owner_id":"{user_id}"`}},
		{Name: "admin can create a project", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("admin"),
			Body: map[string]string{"name": "A"}, ExpectedStatus: 201},
		{Name: "editor cannot delete", Method: "DELETE", URL: "/projects/{project}", Headers: auth, Setup: withProject("editor"), ExpectedStatus: 403},
		{Name: "viewer cannot delete", Method: "DELETE", URL: "/projects/{project}", Headers: auth, Setup: withProject("viewer"), ExpectedStatus: 403},
		{Name: "admin can delete", Method: "DELETE", URL: "/projects/{project}", Headers: auth, Setup: withProject("admin"), ExpectedStatus: 204,
			After: func(t testing.TB, a *App, _ *Response) {
				var n int64
				a.Rows(t).Model(&models.Project{}).Count(&n)
				mustf(t, n == 0, "project still stored")
			}},
		{Name: "deleting an unknown project is 404", Method: "DELETE", URL: "/projects/00000000-0000-4000-8000-000000000000", Headers: auth,
			Setup: withProject("admin"), ExpectedStatus: 404, ExpectedContent: []string{`"code":"project_not_found"`}},
		{Name: "anonymous cannot list", Method: "GET", URL: "/projects", ExpectedStatus: 401,
			ExpectedHeaders: map[string]string{"WWW-Authenticate": "Bearer"}},

		{Name: "get one project", Method: "GET", URL: "/projects/{project}", Headers: auth, Setup: withProject("viewer"),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{project}"`, `"name":"Seeded"`}},
		{Name: "unknown project is 404", Method: "GET", URL: "/projects/00000000-0000-4000-8000-000000000000", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 404},
		{Name: "malformed id is 400", Method: "GET", URL: "/projects/not-a-uuid", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_id"`}},
		{Name: "injection-looking id is just malformed", Method: "GET", URL: "/projects/1%27%20OR%20%271%27=%271", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_id"`}},

		{Name: "per_page over 100 is refused", Method: "GET", URL: "/projects?per_page=101", Headers: auth, Setup: withProject("viewer"),
			ExpectedStatus: 400, ExpectedContent: []string{`"per_page":"must be a whole number from 1 to 100"`}},
		{Name: "page 0 is refused", Method: "GET", URL: "/projects?page=0", Headers: auth, Setup: withProject("viewer"),
			ExpectedStatus: 400, ExpectedContent: []string{`"page"`}},
		{Name: "non-numeric page is refused", Method: "GET", URL: "/projects?page=abc", Headers: auth, Setup: withProject("viewer"),
			ExpectedStatus: 400},
		{Name: "a page past the end is empty", Method: "GET", URL: "/projects?page=5&per_page=10", Headers: auth, Setup: withProject("viewer"),
			ExpectedStatus: 200, ExpectedContent: []string{`"data":[]`, `"page":5`, `"per_page":10`, `"has_more":false`}},
		// The offset is bounded (10,000 rows): deeper pages are a cursor's job,
		// and a page whose offset would overflow is a 400, not page 1.
		{Name: "a page whose offset overflows is refused", Method: "GET", URL: "/projects?page=9223372036854775807&per_page=100", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"page":"reaches past row 10000: follow next_cursor instead"`}},
		{Name: "the deepest page allowed answers", Method: "GET", URL: "/projects?page=101&per_page=100", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 200, ExpectedContent: []string{`"data":[]`}},
		{Name: "one page deeper is refused", Method: "GET", URL: "/projects?page=102&per_page=100", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 400},
		{Name: "a page number too big for an int is refused", Method: "GET", URL: "/projects?page=99999999999999999999", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"page":"must be a whole number from 1"`}},
		{Name: "a forged cursor is refused", Method: "GET", URL: "/projects?cursor=bm90LWEtY3Vyc29y", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"cursor":"is not a cursor this API gave out"`}},
		{Name: "a cursor that is not base64 is refused", Method: "GET", URL: "/projects?cursor=%25%25%25", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"cursor"`}},
		{Name: "cursor and page together are refused", Method: "GET", URL: "/projects?cursor=x&page=2", Headers: auth,
			Setup: withProject("viewer"), ExpectedStatus: 400, ExpectedContent: []string{`"cursor":"give cursor or page, not both"`}},

		{Name: "missing name", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("editor"), Body: `{"description":"x"}`,
			ExpectedStatus: 400, ExpectedContent: []string{`"name":"is required"`}},
		{Name: "blank name", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("editor"), Body: `{"name":"   "}`,
			ExpectedStatus: 400, ExpectedContent: []string{`"name":"is required"`}},
		{Name: "name too long", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("editor"),
			Body: map[string]string{"name": fmt.Sprintf("%0201d", 0)}, ExpectedStatus: 400, ExpectedContent: []string{`"name":"must be at most 200 characters"`}},
		{Name: "owner_id in the body is ignored", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("editor"),
			Body: `{"name":"Mine","owner_id":"00000000-0000-4000-8000-000000000000"}`, ExpectedStatus: 201,
			ExpectedContent: []string{`"owner_id":"{user_id}"`}},

		{Name: "editor can update own project", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: withProject("owner"),
			Body: map[string]string{"name": "Renamed"}, ExpectedStatus: 200, ExpectedContent: []string{`"name":"Renamed"`, `"description":"d"`}},
		{Name: "editor cannot update another's project", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: withProject("editor"),
			Body: map[string]string{"name": "Hijack"}, ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
		{Name: "admin can update any project", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: withProject("admin"),
			Body: map[string]string{"description": "by admin"}, ExpectedStatus: 200, ExpectedContent: []string{`"description":"by admin"`, `"name":"Seeded"`}},
		{Name: "viewer cannot update", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: withProject("viewer"),
			Body: map[string]string{"name": "x"}, ExpectedStatus: 403},
		{Name: "empty patch is refused", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: withProject("owner"),
			Body: `{}`, ExpectedStatus: 400},
		{Name: "update of an unknown project is 404", Method: "PATCH", URL: "/projects/00000000-0000-4000-8000-000000000000", Headers: auth,
			Setup: withProject("admin"), Body: map[string]string{"name": "x"}, ExpectedStatus: 404},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

type projectPage struct {
	Data       []struct{ Name string }
	Page       int
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor"`
}

func TestProjectPagination(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	ed := a.user(t, caller.Editor, caller.Free)
	for i := range 5 {
		r := a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(ed), Body: map[string]string{"name": fmt.Sprintf("p%d", i)}})
		mustf(t, r.Status == http.StatusCreated, "create: %d", r.Status)
		if i != 2 { // p2 and p3 share a timestamp: ties are ordered by id
			a.Clock.Advance(1e9)
		}
	}
	var page projectPage
	a.do(t, Request{Method: "GET", URL: "/projects?page=2&per_page=2", Headers: bearer(ed)}).JSON(t, &page)
	mustf(t, page.Page == 2 && len(page.Data) == 2 && page.HasMore && page.NextCursor != "", "page 2: %+v", page)

	// Following next_cursor from the first page visits every project once,
	// newest first, even when a new project arrives in between.
	var seen []string
	url := "/projects?per_page=2"
	for i := 0; ; i++ {
		mustf(t, i < 5, "cursor never ended: %v", seen)
		var p projectPage
		r := a.do(t, Request{Method: "GET", URL: url, Headers: bearer(ed)})
		mustf(t, r.Status == 200, "%s: %d %s", url, r.Status, r.Body)
		r.JSON(t, &p)
		for _, d := range p.Data {
			seen = append(seen, d.Name)
		}
		if i == 0 {
			a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(ed), Body: map[string]string{"name": "late"}})
		}
		if !p.HasMore {
			mustf(t, p.NextCursor == "", "last page has a cursor: %+v", p)
			break
		}
		url = "/projects?per_page=2&cursor=" + p.NextCursor
	}
	tie := seen[1] + seen[2]
	mustf(t, len(seen) == 5 && seen[0] == "p4" && (tie == "p2p3" || tie == "p3p2") && seen[3] == "p1" && seen[4] == "p0", "walk: %v", seen)
}

// On PostgreSQL, Scannable reads take pgx's own path (scan.Find): the
// pool must still implement scan.NativeQuerier, or they would fall back
// to database/sql without a word. SQLite has no such path.
func TestPostgresPoolReadsNatively(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	_, native := a.DB.DB.Statement.ConnPool.(scan.NativeQuerier)
	want := os.Getenv("TEST_DATABASE_URL") != ""
	mustf(t, native == want, "native read path: %v, want %v (dialect %s)", native, want, a.DB.Dialect)
}

// Bad text in a project never reaches the database as a 500: NUL is 400 on
// both databases (PostgreSQL refuses it, SQLite would store it), invalid
// UTF-8 is stored as U+FFFD.
func TestProjectTextIsCleaned(t *testing.T) {
	parallelTest(t)
	nul := "a\u0000b"
	scenarios := []Scenario{
		{Name: "NUL in a project name", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("editor"),
			Body: map[string]string{"name": nul}, ExpectedStatus: 400, ExpectedContent: []string{`"name":"must not contain NUL characters"`}},
		{Name: "NUL in a project description", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("editor"),
			Body: map[string]string{"name": "ok", "description": nul}, ExpectedStatus: 400,
			ExpectedContent: []string{`"description":"must not contain NUL characters"`}},
		{Name: "NUL in a project update", Method: "PATCH", URL: "/projects/{project}", Headers: auth, Setup: withProject("owner"),
			Body: map[string]string{"description": nul}, ExpectedStatus: 400},
		{Name: "invalid UTF-8 in a project name is stored as U+FFFD", Method: "POST", URL: "/projects", Headers: auth, Setup: withProject("editor"),
			Body: "{\"name\":\"caf\xe9\"}", ExpectedStatus: 201, ExpectedContent: []string{`"name":"caf` + "\uFFFD" + `"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// The usage report counts the projects, and those of the last 7 days.
func TestAnalyticsCountsProjects(t *testing.T) {
	parallelTest(t)
	Scenario{Name: "the report counts projects", Method: "GET", URL: "/analytics", Headers: auth,
		Setup: func(t testing.TB, a *App) map[string]string {
			vals := withProject("admin")(t, a)
			a.Clock.Advance(8 * 24 * time.Hour)
			ed := a.user(t, caller.Editor, caller.Paid)
			r := a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(ed), Body: map[string]string{"name": "recent"}})
			mustf(t, r.Status == 201, "create: %d %s", r.Status, r.Body)
			vals["token"] = a.user(t, caller.Admin, caller.Free).Access
			return vals
		},
		ExpectedStatus: 200, ExpectedContent: []string{`"projects":{"total":2,"created_last_7_days":1}`},
	}.Run(t)
}

// BenchmarkProjectsList is the hot path end to end inside the process:
// every middleware, the verified-token cache, the per-user limit (Redis
// when TEST_REDIS_URL is set), one database query (PostgreSQL when
// TEST_DATABASE_URL is set) and the JSON answer. compare.sh measures the
// same path over real sockets under wrk.
func BenchmarkProjectsList(b *testing.B) {
	a := newApp(b, "RATE_LIMIT_TIERS", "free=1000000000/1m")
	u := a.user(b, caller.Editor, caller.Free)
	for i := range 25 {
		r := a.do(b, Request{Method: "POST", URL: "/projects", Headers: bearer(u), Body: map[string]string{"name": "project " + strconv.Itoa(i)}})
		if r.Status != http.StatusCreated {
			b.Fatalf("seed: %d %s", r.Status, r.Body)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/projects?per_page=20", nil)
			req.Header.Set("Authorization", u.Bearer())
			w := httptest.NewRecorder()
			a.Handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d %s", w.Code, w.Body)
			}
		}
	})
}

// Another organization's projects are not found, whoever asks (a member, an
// admin, an API key of the other organization), and a removed member
// loses the organization at once and at the next refresh.
func TestTenantIsolation(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	mine, theirs := a.team(t, randomSlug()), a.team(t, randomSlug())
	r := a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(theirs.Editor), Body: map[string]string{"name": "Secret plan"}})
	mustf(t, r.Status == 201 && strings.Contains(r.Body, `"org_id":"`+theirs.ID+`"`), "their project: %d %s", r.Status, r.Body)
	project := field(t, r, "id")
	key, _ := a.makeKey(t, mine.Admin, map[string]any{"name": "k", "scopes": []string{"projects:read", "projects:write", "projects:delete"}})
	for name, h := range map[string]map[string]string{"member": bearer(mine.Viewer), "admin": bearer(mine.Admin), "owner": bearer(mine.Owner),
		"api key": {"X-API-Key": key}} {
		for _, req := range []Request{{Method: "GET", URL: "/projects/" + project}, {Method: "PATCH", URL: "/projects/" + project, Body: `{"name":"x"}`},
			{Method: "DELETE", URL: "/projects/" + project}} {
			req.Headers = h
			got := a.do(t, req)
			if name == "member" && req.Method != "GET" {
				mustf(t, got.Status == 403 || got.Status == 404, "%s %s %s: %d %s", name, req.Method, req.URL, got.Status, got.Body)
				continue
			}
			mustf(t, got.Status == 404 && strings.Contains(got.Body, "project_not_found"), "%s %s %s: %d %s", name, req.Method, req.URL, got.Status, got.Body)
		}
		list := a.do(t, Request{Method: "GET", URL: "/projects", Headers: h})
		mustf(t, list.Status == 200 && !strings.Contains(list.Body, "Secret plan"), "%s lists: %d %s", name, list.Status, list.Body)
	}
	// The owning organization still has it.
	r = a.do(t, Request{Method: "GET", URL: "/projects/" + project, Headers: bearer(theirs.Viewer)})
	mustf(t, r.Status == 200, "own project: %d %s", r.Status, r.Body)
	// Removed: the token stops at once; the key loses its scopes; the next
	// refresh lands in the default organization.
	r = a.do(t, Request{Method: "DELETE", URL: "/orgs/" + mine.ID + "/members/" + mine.Admin.ID, Headers: bearer(mine.Owner)})
	mustf(t, r.Status == 204, "remove: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "GET", URL: "/projects", Headers: bearer(mine.Admin)})
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "session_ended"), "removed member's token: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "GET", URL: "/projects", Headers: map[string]string{"X-API-Key": key}})
	mustf(t, r.Status == 403 && strings.Contains(r.Body, "insufficient_scope"), "removed member's key: %d %s", r.Status, r.Body)
	r = refresh(t, a, mine.Admin.Refresh)
	mustf(t, r.Status == 200, "refresh after removal: %d %s", r.Status, r.Body)
	claims := decodeClaims(t, field(t, r, "access_token"))
	mustf(t, claims["org_id"] == models.DefaultOrgID.String(), "after removal: %v", claims)
}

// The projects routes in the cross-tenant matrix (tests/tenancy_test.go).
func init() {
	crossTenantIDs["/projects/{id}"] = theirProject
	crossTenantBodies["PATCH /projects/{id}"] = `{"name":"taken"}`
	notAboutAnotherOrg["POST /projects"] = "creates in the caller's organization"
}

// theirProject is another organization's project; the matrix checks
// afterwards that it is unchanged.
func theirProject(t *testing.T, a *App, w *tenants) []map[string]string {
	name := randomName("their-project-")
	r := a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(w.theirs.Editor), Body: map[string]string{"name": name}})
	mustf(t, r.Status == http.StatusCreated, "their project: %d %s", r.Status, r.Body)
	id := field(t, r, "id")
	w.forbid(name)
	w.afterwards(func(t *testing.T) {
		r := a.do(t, Request{Method: "GET", URL: "/projects/" + id, Headers: bearer(w.theirs.Editor)})
		mustf(t, r.Status == http.StatusOK && strings.Contains(r.Body, `"name":"`+name+`"`), "their project after the matrix: %d %s", r.Status, r.Body)
	})
	return one("id", id)
}

// Project reads set the organization in the read's own pgx batch (no
// transaction, readInOrg): many at once, for two organizations, each sees
// its own, and the pooled connections keep nothing afterwards.
func TestProjectReadsScopeTheirOwnBatch(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	if a.DB.Dialect != "postgres" {
		t.Skip("row-level security is PostgreSQL's (CI runs this on it)")
	}
	mine, theirs := a.team(t, randomSlug()), a.team(t, randomSlug())
	for _, team := range []*Team{mine, theirs} {
		r := a.do(t, Request{Method: "POST", URL: "/projects", Headers: bearer(team.Admin), Body: `{"name":"of ` + team.ID + `"}`})
		mustf(t, r.Status == 201, "create: %d %s", r.Status, r.Body)
	}
	var wg sync.WaitGroup
	for i := range 24 {
		team, other := mine, theirs
		if i%2 == 1 {
			team, other = theirs, mine
		}
		wg.Go(func() {
			r := a.do(t, Request{Method: "GET", URL: "/projects", Headers: bearer(team.Admin)})
			if r.Status != 200 || !strings.Contains(r.Body, "of "+team.ID) || strings.Contains(r.Body, other.ID) {
				t.Errorf("list of %s: %d %s", team.ID, r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	var n int64
	for range 8 {
		mustf(t, a.DB.Model(&models.Project{}).Count(&n).Error == nil && n == 0, "a pooled connection kept a read's scope: %d projects", n)
	}
}
