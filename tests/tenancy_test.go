package tests

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tollgate/tollgate/caller"
)

// The cross-tenant matrix: every operation of /openapi.json that takes a
// credential, called by each kind of caller of one organization (a member,
// an admin, an API key, an OAuth client token) with another organization's
// ids. Each answer must be exactly what a made-up id gets (same status,
// same code: no existence oracle), never a success, and never show the
// other organization's data; afterwards that organization's rows are as
// they were. The operations come from the document, so a new route is in
// the matrix the day it is documented, and one that takes ids fails here
// until this file says which of another organization's ids to try.

// theirIDs give, for a path with parameters, the other organization's ids
// to try: one or more sets of values for the path's {parameters} (and for
// the body's placeholders). Each set is also tried with every value made
// up, in the same places. It may make the rows it names, say what must not
// leak of them (w.forbid) and check afterwards that they are unchanged
// (w.afterwards).
type theirIDs func(t *testing.T, a *App, w *tenants) []map[string]string

// crossTenantIDs are theirIDs by path. A resource's own test file adds its
// paths in an init function (tests/projects_test.go does), so deleting the
// resource deletes them too.
var crossTenantIDs = map[string]theirIDs{
	"/api-keys/{id}":          func(_ *testing.T, _ *App, w *tenants) []map[string]string { return one("id", w.key) },
	"/api-keys/{id}/rotate":   func(_ *testing.T, _ *App, w *tenants) []map[string]string { return one("id", w.key) },
	"/users/me/sessions/{id}": func(_ *testing.T, _ *App, w *tenants) []map[string]string { return one("id", w.session) },
	"/orgs/{id}":              theirOrg,
	"/orgs/{id}/audit":        theirOrg,
	"/orgs/{id}/leave":        theirOrg,
	"/orgs/{id}/members":      theirOrg,
	"/orgs/{id}/invitations":  theirOrg,
	"/orgs/{id}/clients":      theirOrg,
	"/orgs/{id}/transfer": func(_ *testing.T, _ *App, w *tenants) []map[string]string {
		return w.inTheirsAndMine("user", w.theirs.Viewer.ID)
	},
	"/orgs/{id}/members/{user}": func(_ *testing.T, _ *App, w *tenants) []map[string]string {
		return w.inTheirsAndMine("user", w.theirs.Viewer.ID)
	},
	"/orgs/{id}/invitations/{inv}": func(_ *testing.T, _ *App, w *tenants) []map[string]string {
		return w.inTheirsAndMine("inv", w.invitation)
	},
	"/orgs/{id}/clients/{client}": func(_ *testing.T, _ *App, w *tenants) []map[string]string {
		return w.inTheirsAndMine("client", w.client)
	},
	"/orgs/{id}/clients/{client}/rotate-secret": func(_ *testing.T, _ *App, w *tenants) []map[string]string {
		return w.inTheirsAndMine("client", w.client)
	},
	// Platform operators' routes: the callers here are not operators, so
	// these are refused whatever the id; they are in the matrix so that
	// stays true.
	"/admin/users/{id}":                       theirAdmin,
	"/admin/users/{id}/mfa":                   theirAdmin,
	"/admin/users/{id}/sessions":              theirAdmin,
	"/admin/api-keys/{id}":                    func(_ *testing.T, _ *App, w *tenants) []map[string]string { return one("id", w.key) },
	"/admin/oauth/clients/{id}":               func(_ *testing.T, _ *App, w *tenants) []map[string]string { return one("id", w.client) },
	"/admin/oauth/clients/{id}/rotate-secret": func(_ *testing.T, _ *App, w *tenants) []map[string]string { return one("id", w.client) },
}

func theirOrg(_ *testing.T, _ *App, w *tenants) []map[string]string { return one("id", w.theirs.ID) }

func theirAdmin(_ *testing.T, _ *App, w *tenants) []map[string]string {
	return one("id", w.theirs.Admin.ID)
}

// crossTenantBodies are valid bodies for the operations that take one, so
// that the request reaches the lookup; {placeholders} take the values of
// the ids tried.
var crossTenantBodies = map[string]string{
	"POST /api-keys/{id}/rotate":                     `{"grace_period":0}`,
	"PATCH /orgs/{id}":                               `{"name":"taken"}`,
	"POST /orgs/{id}/invitations":                    `{"email":"intruder@example.com","role":"admin"}`,
	"POST /orgs/{id}/clients":                        `{"name":"intruder","scopes":["users:read"]}`,
	"POST /orgs/{id}/transfer":                       `{"user_id":"{user}"}`,
	"PATCH /orgs/{id}/members/{user}":                `{"role":"admin"}`,
	"POST /orgs/{id}/clients/{client}/rotate-secret": `{"grace_period":0}`,
	"PATCH /admin/users/{id}":                        `{"role":"admin"}`,
	"POST /admin/oauth/clients/{id}/rotate-secret":   `{"grace_period":0}`,
}

// notAboutAnotherOrg are the operations without path parameters that
// write: none names an organization, so another's ids cannot be given to
// them. Each says why; what they make is in the lists the matrix reads.
var notAboutAnotherOrg = map[string]string{
	"POST /api-keys":                    "creates in the caller's organization",
	"POST /orgs":                        "makes a new organization",
	"POST /invitations/accept":          "the mailed token names the organization, for the invited address only (tests/orgs_test.go)",
	"POST /admin/oauth/clients":         "platform operators only, in their active organization",
	"POST /users/me/password":           "the caller's own account",
	"POST /users/me/mfa/totp":           "the caller's own account",
	"POST /users/me/mfa/totp/confirm":   "the caller's own account",
	"DELETE /users/me/mfa/totp":         "the caller's own account",
	"POST /users/me/mfa/recovery-codes": "the caller's own account",
}

func one(param, value string) []map[string]string { return []map[string]string{{param: value}} }

// tenants are two organizations: the callers' (mine) and the one whose ids
// they try (theirs), with one of each of its resources.
type tenants struct {
	mine, theirs                  *Team
	key, client, clientID, secret string
	invitation, session           string
	forbidden                     []string
	unchanged                     []func(t *testing.T)
}

// forbid adds what no answer to the callers may show.
func (w *tenants) forbid(fragments ...string) { w.forbidden = append(w.forbidden, fragments...) }

// afterwards adds a check, run after the matrix, that theirs is as it was.
func (w *tenants) afterwards(check func(t *testing.T)) { w.unchanged = append(w.unchanged, check) }

// inTheirsAndMine tries param's value (another organization's) under its
// own organization and under the caller's.
func (w *tenants) inTheirsAndMine(param, value string) []map[string]string {
	return []map[string]string{{"id": w.theirs.ID, param: value}, {"id": w.mine.ID, param: value}}
}

func (a *App) tenants(t *testing.T) *tenants {
	t.Helper()
	w := &tenants{mine: a.team(t, randomSlug()), theirs: a.team(t, randomSlug())}
	them := w.theirs
	_, w.key = a.makeKey(t, them.Admin, map[string]any{"name": "theirs", "scopes": []string{"users:read"}})
	r := a.do(t, Request{Method: "POST", URL: "/orgs/" + them.ID + "/clients", Headers: bearer(them.Admin), Body: map[string]any{"name": "theirs", "scopes": []string{"users:read"}}})
	mustf(t, r.Status == http.StatusCreated, "their client: %d %s", r.Status, r.Body)
	w.client, w.clientID, w.secret = field(t, r, "id"), field(t, r, "client_id"), field(t, r, "client_secret")
	w.invitation = a.invite(t, them.Admin.Access, them.ID, randomName("invited-")+"@example.com", "editor")
	var sessions []struct{ ID string }
	r = a.do(t, Request{Method: "GET", URL: "/users/me/sessions", Headers: bearer(them.Admin)})
	r.JSON(t, &sessions)
	mustf(t, r.Status == http.StatusOK && len(sessions) > 0, "their sessions: %d %s", r.Status, r.Body)
	w.session = sessions[0].ID
	w.forbid(them.ID, w.key, w.client, w.clientID, w.invitation, w.session)
	for _, u := range []*User{them.Owner, them.Admin, them.Editor, them.Viewer} {
		w.forbid(u.ID, u.Email)
	}
	return w
}

// callers are the four kinds of credential of the caller's organization,
// each holding everything an admin may hold, as request headers.
func (a *App) callers(t *testing.T, w *tenants) map[string]map[string]string {
	t.Helper()
	var scopes []string
	for _, s := range caller.Admin.Scopes() {
		scopes = append(scopes, string(s))
	}
	key, _ := a.makeKey(t, w.mine.Admin, map[string]any{"name": "all", "scopes": scopes})
	r := a.do(t, Request{Method: "POST", URL: "/orgs/" + w.mine.ID + "/clients", Headers: bearer(w.mine.Admin), Body: map[string]any{"name": "all", "scopes": scopes}})
	mustf(t, r.Status == http.StatusCreated, "our client: %d %s", r.Status, r.Body)
	ctoken := a.token(t, field(t, r, "client_id"), field(t, r, "client_secret"), "")
	return map[string]map[string]string{
		"member": bearer(w.mine.Editor), "admin": bearer(w.mine.Admin),
		"API key": keyHeader(key), "client token": {"Authorization": "Bearer " + ctoken},
	}
}

// operation is one method and path of the document.
type operation struct {
	Method, Path  string
	Secured, Body bool
	Credentials   bool // an API key or a client token may call it
}

func (o operation) String() string { return o.Method + " " + o.Path }

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func documentedOperations(t *testing.T, a *App) []operation {
	t.Helper()
	r := a.do(t, Request{Method: "GET", URL: "/openapi.json"})
	mustf(t, r.Status == http.StatusOK, "openapi.json: %d", r.Status)
	var doc struct {
		Paths map[string]map[string]struct {
			Security    *[]map[string][]string `json:"security"`
			RequestBody json.RawMessage        `json:"requestBody"`
		} `json:"paths"`
	}
	r.JSON(t, &doc)
	var ops []operation
	for path, item := range doc.Paths {
		for method, op := range item {
			if method == "parameters" {
				continue
			}
			o := operation{Method: strings.ToUpper(method), Path: path, Secured: op.Security != nil && len(*op.Security) > 0, Body: len(op.RequestBody) > 0}
			for _, req := range *op.Security {
				_, key := req["ApiKeyAuth"]
				_, client := req["OAuth2"]
				o.Credentials = o.Credentials || key || client
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].String() < ops[j].String() })
	return ops
}

func TestCrossTenantMatrix(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_TIERS", "free=100000/1m,paid=100000/1m,enterprise=100000/1m",
		"RATE_LIMIT_ORG_TIERS", "free=100000/1m,paid=100000/1m,enterprise=100000/1m")
	w := a.tenants(t)
	callers := a.callers(t, w)
	names := slices.Sorted(maps.Keys(callers))
	// The callers are live: each reads its own account (a key's and a
	// client's is their owner's, our admin).
	for _, name := range names {
		r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: callers[name]})
		mustf(t, r.Status == http.StatusOK, "%s reads its account: %d %s", name, r.Status, r.Body)
	}
	// Theirs, for every path that takes ids, made before anything is
	// tried, so the lists are read with all of it in place.
	ops := documentedOperations(t, a)
	theirs := map[string][]map[string]string{}
	for _, op := range ops {
		if ids, ok := crossTenantIDs[op.Path]; ok && theirs[op.Path] == nil {
			theirs[op.Path] = ids(t, a, w)
			for _, set := range theirs[op.Path] {
				for _, v := range set {
					if v != w.mine.ID {
						w.forbid(v)
					}
				}
			}
		}
	}
	forbidden := w.forbidden

	notFound := map[string]int{}
	tried, credentialLookups := 0, 0
	for _, op := range ops {
		if !op.Secured {
			continue // no caller, no organization
		}
		params := pathParam.FindAllStringSubmatch(op.Path, -1)
		if len(params) == 0 {
			if op.Method != http.MethodGet && op.Method != http.MethodHead {
				if _, ok := notAboutAnotherOrg[op.String()]; !ok {
					t.Errorf("%s writes without naming what it writes: say why another organization's ids cannot reach it (notAboutAnotherOrg)", op)
				}
				continue
			}
			// A list or a read of the caller's own: nothing of theirs in it.
			for _, name := range names {
				r := a.do(t, Request{Method: op.Method, URL: op.Path, Headers: callers[name]})
				tried++
				mustf(t, r.Status < 500, "%s as %s: %d %s", op, name, r.Status, r.Body)
				for _, f := range forbidden {
					mustf(t, !strings.Contains(r.Body, f), "%s as %s shows another organization's %q: %s", op, name, f, r.Body)
				}
			}
			continue
		}
		if op.Credentials && !strings.HasPrefix(op.Path, "/admin/") {
			credentialLookups++ // a lookup a key may reach (the platform's routes refuse it first)
		}
		sets, ok := theirs[op.Path]
		if !ok {
			t.Errorf("%s takes ids: say which of another organization's to try (crossTenantIDs)", op)
			continue
		}
		body, hasBody := crossTenantBodies[op.String()]
		if op.Body && !hasBody && op.Method != http.MethodDelete {
			t.Errorf("%s takes a body: give a valid one (crossTenantBodies), so the request reaches the lookup", op)
			continue
		}
		for _, their := range sets {
			madeUp := map[string]string{}
			for k := range their {
				madeUp[k] = uuid.NewString()
			}
			if their["id"] == w.mine.ID {
				madeUp["id"] = w.mine.ID // their resource under our org: made up only below it
			}
			for _, name := range names {
				send := func(vals map[string]string) *Response {
					req := Request{Method: op.Method, URL: fill(op.Path, vals), Headers: callers[name]}
					if hasBody {
						req.Body = fill(body, vals)
					}
					return a.do(t, req)
				}
				got, want := send(their), send(madeUp)
				tried++
				what := op.String() + " as " + name + " with " + fill(op.Path, their)
				mustf(t, got.Status != http.StatusUnauthorized && got.Status < 500, "%s: %d %s", what, got.Status, got.Body)
				mustf(t, got.Status >= 400, "%s reached another organization: %d %s", what, got.Status, got.Body)
				mustf(t, got.Status == want.Status && errorCode(got) == errorCode(want),
					"%s answers %d %s where a made-up id answers %d %s: an existence oracle", what, got.Status, errorCode(got), want.Status, errorCode(want))
				for _, f := range forbidden {
					mustf(t, !strings.Contains(got.Body, f), "%s shows another organization's %q: %s", what, f, got.Body)
				}
				if got.Status == http.StatusNotFound {
					notFound[name]++
				}
			}
		}
	}
	// Not a matrix of refusals only: every kind of caller got past its
	// checks to the lookup somewhere, and found nothing there.
	for _, name := range names {
		if (name == "API key" || name == "client token") && credentialLookups == 0 {
			continue // no route that takes ids takes a key (a fork without the example resource)
		}
		mustf(t, notFound[name] > 0, "%s never got a 404: every request was refused before the lookup", name)
	}
	t.Logf("%d cross-tenant requests (each beside one with a made-up id); 404s by caller: %v", tried, notFound)

	// And theirs is as it was.
	them := w.theirs
	check := func(u *User, url string, want ...string) {
		t.Helper()
		r := a.do(t, Request{Method: "GET", URL: url, Headers: bearer(u)})
		mustf(t, r.Status == http.StatusOK, "%s: %d %s", url, r.Status, r.Body)
		for _, frag := range want {
			mustf(t, strings.Contains(r.Body, frag), "%s lacks %q: %s", url, frag, r.Body)
		}
		mustf(t, !strings.Contains(r.Body, "taken") && !strings.Contains(r.Body, "intruder"), "%s was changed: %s", url, r.Body)
	}
	check(them.Owner, "/orgs/"+them.ID, `"name":"Team `)
	check(them.Owner, "/orgs/"+them.ID+"/members", `"user_id":"`+them.Viewer.ID+`","email":"`+them.Viewer.Email+`","role":"viewer"`,
		`"user_id":"`+them.Owner.ID+`"`)
	check(them.Owner, "/orgs/"+them.ID+"/invitations", `"id":"`+w.invitation+`"`, `"status":"pending"`)
	check(them.Admin, "/api-keys", `"id":"`+w.key+`"`)
	check(them.Admin, "/users/me/sessions", `"id":"`+w.session+`"`)
	check(them.Admin, "/orgs/"+them.ID+"/clients", `"id":"`+w.client+`"`)
	a.token(t, w.clientID, w.secret, "") // neither disabled nor rotated
	r := a.do(t, Request{Method: "GET", URL: "/api-keys", Headers: bearer(them.Admin)})
	mustf(t, !strings.Contains(r.Body, `"revoked_at"`), "their key was revoked: %s", r.Body)
	for _, check := range w.unchanged {
		check(t)
	}
}

// errorCode is an error answer's code ("" for none).
func errorCode(r *Response) string {
	var e struct{ Code string }
	_ = json.Unmarshal([]byte(r.Body), &e)
	return e.Code
}
