package tests

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/product"
)

var apiKeyFormat = regexp.MustCompile(`^` + regexp.QuoteMeta(product.KeyPrefix) + `test_[0-9A-Za-z]{38}$`)

// withKey makes a user of role and a key with the given create body, and
// returns {token} (the user's), {user_id}, {key}, {key_id} and {key_start}.
func withKey(role caller.Role, body map[string]any) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		u := a.user(t, role, caller.Free)
		key, id := a.makeKey(t, u, body)
		return map[string]string{"token": u.Access, "user_id": u.ID, "key": key, "key_id": id, "key_start": key[:12]}
	}
}

func (a *App) makeKey(t testing.TB, u *User, body map[string]any) (key, id string) {
	t.Helper()
	r := a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: bearer(u), Body: body})
	mustf(t, r.Status == 201, "create key: %d %s", r.Status, r.Body)
	return field(t, r, "key"), field(t, r, "id")
}

var readKey = map[string]any{"name": "reader", "scopes": []string{"users:read"}}

func keyHeader(k string) map[string]string { return map[string]string{"X-API-Key": k} }

func TestAPIKeys(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		// Creating.
		{Name: "create shows the key once, with its prefix, checksum and scopes", Method: "POST", URL: "/api-keys", Headers: auth,
			Setup: asRole("admin"), Body: map[string]any{"name": "ci", "scopes": []string{"users:read", "analytics:read", "users:read"}},
			ExpectedStatus: 201, ExpectedContent: []string{`"key":"` + product.KeyPrefix + `test_`, `"scopes":["analytics:read","users:read"]`, `"name":"ci"`, `"expires_at":"2027-03-02T09:00:00Z"`},
			ExpectedHeaders: map[string]string{"Cache-Control": "no-store"},
			After: func(t testing.TB, a *App, r *Response) {
				key := field(t, r, "key")
				mustf(t, apiKeyFormat.MatchString(key), "key %q is not the prefix, test_, 32 random and 6 checksum base62", key)
				mustf(t, !strings.Contains(a.Logs.String(), key), "the key was logged")
				mustf(t, strings.Contains(a.Logs.String(), `"event":"api_key.created","actor_type":"user"`), "no security event: %s", a.Logs.String())
			}},
		{Name: "the list never shows secrets", Method: "GET", URL: "/api-keys", Headers: auth, Setup: withKey(caller.Viewer, readKey),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{key_id}"`, `"start":"{key_start}"`, `"last_used_at":null`},
			NotExpected: []string{"{key}", "secret_hash", `"key":`}},
		{Name: "a scope beyond the role is refused", Method: "POST", URL: "/api-keys", Headers: auth, Setup: asRole("viewer"),
			Body:           map[string]any{"name": "x", "scopes": []string{"analytics:read"}},
			ExpectedStatus: 400, ExpectedContent: []string{`"scopes":"may only hold scopes your role has: `, `users:read"`},
			NotExpected: []string{"analytics:read"}},
		{Name: "an unknown scope is refused", Method: "POST", URL: "/api-keys", Headers: auth, Setup: asRole("admin"),
			Body: map[string]any{"name": "x", "scopes": []string{"root"}}, ExpectedStatus: 400, ExpectedContent: []string{`unknown scope root`}},
		{Name: "no scopes, a past or too distant expiry, a bad range or a limit above the tier are refused", Method: "POST", URL: "/api-keys",
			Headers: auth, Setup: asRole("viewer"),
			Body:           map[string]any{"name": "x", "scopes": []string{}, "allowed_cidrs": []string{"10.0.0.0/33"}, "rate_limit": "61/1m"},
			ExpectedStatus: 400, ExpectedContent: []string{`"scopes":`, `"allowed_cidrs":`}},
		{Name: "an expiry past the maximum lifetime is refused", Method: "POST", URL: "/api-keys", Headers: auth, Setup: asRole("viewer"),
			Body:           map[string]any{"name": "x", "scopes": []string{"users:read"}, "expires_at": "2030-01-01T00:00:00Z", "rate_limit": "61/1m"},
			ExpectedStatus: 400, ExpectedContent: []string{`"expires_at":"must be at most 8760h0m0s away"`, `"rate_limit":"must allow no more than your tier's 60/1m0s"`}},
		{Name: "a key cannot make keys", Method: "POST", URL: "/api-keys", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: withKey(caller.Admin, map[string]any{"name": "all", "scopes": caller.AllScopes()}), Body: readKey,
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"user_token_required"`}},

		// Using.
		{Name: "accepted as X-API-Key", Method: "GET", URL: "/users/me", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: withKey(caller.Viewer, readKey), ExpectedStatus: 200},
		{Name: "accepted as a bearer token", Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer {key}"},
			Setup: withKey(caller.Viewer, readKey), ExpectedStatus: 200},
		{Name: "acts for its owner", Method: "GET", URL: "/users/me", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup:          withKey(caller.Editor, map[string]any{"name": "me", "scopes": []string{"users:read"}}),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{user_id}"`, `"role":"editor"`}},
		{Name: "a scope the key lacks is 403 insufficient_scope with the RFC 6750 challenge", Method: "GET", URL: "/analytics",
			Headers: map[string]string{"X-API-Key": "{key}"}, Setup: withKey(caller.Admin, readKey),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_scope"`},
			ExpectedHeaders: map[string]string{"WWW-Authenticate": `Bearer error="insufficient_scope", error_description="The credential lacks the scope this route needs", scope="analytics:read"`}},
		{Name: "a key with the scope writes as its owner", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: withKey(caller.Admin, map[string]any{"name": "w", "scopes": []string{"admin"}}), Body: map[string]string{"tier": "paid"},
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{user_id}"`, `"tier":"paid"`}},
		{Name: "a mistyped key fails its checksum: 401 invalid_api_key", Method: "GET", URL: "/users/me",
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withKey(caller.Viewer, readKey)(t, a)
				k := v["key"]
				swap := byte('a')
				if k[20] == 'a' {
					swap = 'b'
				}
				v["key"] = k[:20] + string(swap) + k[21:]
				return v
			},
			Headers: map[string]string{"X-API-Key": "{key}"}, ExpectedStatus: 401, ExpectedContent: []string{`"code":"invalid_api_key"`, `"error":"Invalid API key"`}},
		{Name: "a well-formed unknown key: the same 401", Method: "GET", URL: "/users/me", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withKey(caller.Viewer, readKey)(t, a)
				r := a.do(t, Request{Method: "DELETE", URL: "/api-keys/" + v["key_id"], Headers: map[string]string{"Authorization": "Bearer " + v["token"]}})
				mustf(t, r.Status == 204, "revoke: %d %s", r.Status, r.Body)
				return v
			},
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"invalid_api_key"`, `"error":"Invalid API key"`}},
		{Name: "a key from another environment: the same 401", Method: "GET", URL: "/users/me",
			Headers: map[string]string{"X-API-Key": product.KeyPrefix + "live_0123456789abcdefghijABCDEFGHIJ01abcdef"}, ExpectedStatus: 401,
			ExpectedContent: []string{`"code":"invalid_api_key"`}},
		{Name: "used from outside its allowed ranges: the same 401", Method: "GET", URL: "/users/me", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup:          withKey(caller.Viewer, map[string]any{"name": "x", "scopes": []string{"users:read"}, "allowed_cidrs": []string{"10.0.0.0/8", "2001:db8::1"}}),
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"invalid_api_key"`}},
		{Name: "used from inside its allowed ranges", Method: "GET", URL: "/users/me", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup:          withKey(caller.Viewer, map[string]any{"name": "x", "scopes": []string{"users:read"}, "allowed_cidrs": []string{"192.0.2.0/24"}}),
			ExpectedStatus: 200},
		{Name: "expired by the clock: the same 401", Method: "GET", URL: "/users/me", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withKey(caller.Viewer, map[string]any{"name": "x", "scopes": []string{"users:read"}, "expires_at": Start.Add(time.Hour)})(t, a)
				r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(v["key"])})
				mustf(t, r.Status == 200, "before expiry: %d", r.Status)
				a.Clock.Advance(time.Hour)
				return v
			},
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"invalid_api_key"`}},
		{Name: "an owner's demotion takes the scope from their keys", Method: "GET", URL: "/analytics", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withKey(caller.Admin, map[string]any{"name": "w", "scopes": []string{"analytics:read", "users:read"}})(t, a)
				admin := a.user(t, caller.Admin, caller.Free)
				r := a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + v["user_id"], Headers: bearer(admin), Body: map[string]string{"role": "viewer"}})
				mustf(t, r.Status == 200, "demote: %d %s", r.Status, r.Body)
				r = a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(v["key"])})
				mustf(t, r.Status == 200, "reading still allowed: %d", r.Status)
				return v
			},
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_scope"`}},

		// Revoking and rotating.
		{Name: "someone else's key is not found", Method: "DELETE", URL: "/api-keys/{key_id}", Headers: map[string]string{"Authorization": "Bearer {other}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withKey(caller.Viewer, readKey)(t, a)
				v["other"] = a.user(t, caller.Editor, caller.Free).Access
				return v
			},
			ExpectedStatus: 404, ExpectedContent: []string{`"code":"api_key_not_found"`}},
		{Name: "an admin lists and revokes anyone's key", Method: "DELETE", URL: "/admin/api-keys/{key_id}", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withKey(caller.Viewer, readKey)(t, a)
				admin := a.user(t, caller.Admin, caller.Free)
				v["admin"] = admin.Access
				r := a.do(t, Request{Method: "GET", URL: "/admin/api-keys?user_id=" + v["user_id"], Headers: bearer(admin)})
				mustf(t, r.Status == 200 && strings.Contains(r.Body, v["key_id"]) && strings.Count(r.Body, `"id":`) == 1, "admin list: %d %s", r.Status, r.Body)
				return v
			},
			ExpectedStatus: 204,
			After: func(t testing.TB, a *App, _ *Response) {
				mustf(t, strings.Contains(a.Logs.String(), `"event":"api_key.revoked","actor_type":"user"`), "no revocation event: %s", a.Logs.String())
			}},
		{Name: "other users may not list every key", Method: "GET", URL: "/admin/api-keys", Headers: auth, Setup: asRole("editor"),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
		{Name: "a revoked key cannot be rotated", Method: "POST", URL: "/api-keys/{key_id}/rotate", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withKey(caller.Viewer, readKey)(t, a)
				a.do(t, Request{Method: "DELETE", URL: "/api-keys/" + v["key_id"], Headers: map[string]string{"Authorization": "Bearer " + v["token"]}})
				return v
			},
			ExpectedStatus: 409, ExpectedContent: []string{`"code":"api_key_inactive"`}},
		{Name: "rotation: both secrets work during the grace period, then only the new one", Method: "POST", URL: "/api-keys/{key_id}/rotate",
			Headers: auth, Setup: withKey(caller.Viewer, readKey), Body: map[string]int{"grace_period": 3600},
			ExpectedStatus: 200, ExpectedContent: []string{`"key":"` + product.KeyPrefix + `test_`, `"id":"{key_id}"`, `"previous_secret_expires_at":"2026-03-02T10:00:00Z"`},
			ExpectedHeaders: map[string]string{"Cache-Control": "no-store"},
			After: func(t testing.TB, a *App, r *Response) {
				old, fresh := "", field(t, r, "key")
				for _, l := range strings.Split(a.Logs.String(), "\n") {
					mustf(t, !strings.Contains(l, fresh), "the new key was logged")
				}
				_ = old
				keyList := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(fresh)})
				mustf(t, keyList.Status == 200, "new secret: %d", keyList.Status)
				a.Clock.Advance(time.Hour)
				keyList = a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(fresh)})
				mustf(t, keyList.Status == 200, "new secret after the grace: %d", keyList.Status)
			}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// The old secret of a rotated key: works until the grace period ends.
func TestAPIKeyRotationOverlap(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	old, id := a.makeKey(t, u, readKey)
	r := a.do(t, Request{Method: "POST", URL: "/api-keys/" + id + "/rotate", Headers: bearer(u)})
	mustf(t, r.Status == 200, "rotate with the default grace: %d %s", r.Status, r.Body)
	fresh := field(t, r, "key")
	mustf(t, fresh != old && strings.Contains(r.Body, `"previous_secret_expires_at":"2026-03-03T09:00:00Z"`), "rotation: %s", r.Body)
	for _, k := range []string{old, fresh} {
		got := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(k)})
		mustf(t, got.Status == 200, "during the overlap: %d", got.Status)
	}
	a.Clock.Advance(24 * time.Hour)
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(old)}).Status == 401, "old secret after the grace")
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(fresh)}).Status == 200, "new secret after the grace")
	// Revoking ends both at once.
	a.login(t, u) // the day-old access token has expired
	r = a.do(t, Request{Method: "POST", URL: "/api-keys/" + id + "/rotate", Headers: bearer(u), Body: map[string]int{"grace_period": 3600}})
	third := field(t, r, "key")
	r = a.do(t, Request{Method: "DELETE", URL: "/api-keys/" + id, Headers: bearer(u)})
	mustf(t, r.Status == 204, "revoke: %d %s", r.Status, r.Body)
	for _, k := range []string{fresh, third} {
		mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(k)}).Status == 401, "a revoked key's secrets")
	}
}

// Last use is shown in the list, though requests do not write it.
func TestAPIKeyLastUsed(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	key, _ := a.makeKey(t, u, readKey)
	a.Clock.Advance(time.Minute)
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(key)}).Status == 200, "use")
	r := a.do(t, Request{Method: "GET", URL: "/api-keys", Headers: bearer(u)})
	mustf(t, strings.Contains(r.Body, `"last_used_at":"2026-03-02T09:01:00Z"`), "last use: %s", r.Body)
}

// A key has its own bucket at its owner's tier, or its own lower limit,
// and every request of it counts in its owner's budget too: however many
// keys a user makes, the requests of all of them and of the user's own
// tokens together stay within the tier.
func TestAPIKeyRateLimits(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_TIERS", "free=5/1m")
	u := a.user(t, caller.Viewer, caller.Free)
	key, _ := a.makeKey(t, u, map[string]any{"name": "slow", "scopes": []string{"users:read"}, "rate_limit": "2/1m"})
	other, _ := a.makeKey(t, u, readKey)
	statuses := func(h map[string]string, n int) []int {
		var out []int
		for range n {
			out = append(out, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: h}).Status)
		}
		return out
	}
	got := statuses(keyHeader(key), 3)
	mustf(t, got[0] == 200 && got[1] == 200 && got[2] == 429, "the key's own 2/1m: %v", got)
	// The owner's five: two key creations and the slow key's two; the
	// other key gets the one left, not a bucket of five of its own.
	got = statuses(keyHeader(other), 3)
	mustf(t, got[0] == 200 && got[1] == 429 && got[2] == 429, "the other key within the owner's 5/1m: %v", got)
	got = statuses(bearer(u), 1)
	mustf(t, got[0] == 429, "the owner's own token past the budget its keys spent: %v", got)
	// A refusal by the owner's budget did not use the key's own bucket.
	a.Clock.Advance(2 * time.Minute)
	got = statuses(keyHeader(key), 3)
	mustf(t, got[0] == 200 && got[1] == 200 && got[2] == 429, "the slow key after the window: %v", got)
}

// Five keys once gave a free user five budgets (355 requests a minute of
// its 60): now all of them together get the tier's.
func TestManyKeysDoNotMultiplyTheBudget(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_TIERS", "free=20/1m")
	u := a.user(t, caller.Viewer, caller.Free)
	var keys []string
	for range 5 {
		k, _ := a.makeKey(t, u, readKey)
		keys = append(keys, k)
	}
	ok := 0
	for i := range 60 {
		if a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(keys[i%5])}).Status == 200 {
			ok++
		}
	}
	mustf(t, ok == 15, "five keys got %d requests in a minute, want the 15 the key creations left of 20", ok)
}

// On Redis, a key's limit holds across instances.
func TestAPIKeyLimitAcrossInstances(t *testing.T) {
	parallelTest(t)
	url := sharedRedis(t)
	prefix := randomName("test:") + ":"
	first := newApp(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix, "RATE_LIMIT_REDIS_TIMEOUT", "5s")
	u := first.user(t, caller.Viewer, caller.Free)
	key, _ := first.makeKey(t, u, map[string]any{"name": "shared", "scopes": []string{"users:read"}, "rate_limit": "10/1m"})
	var servers []*httptest.Server
	for i := range 3 {
		a := first
		if i > 0 {
			a = first.sibling(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix, "RATE_LIMIT_REDIS_TIMEOUT", "5s")
		}
		srv := httptest.NewServer(a.Handler)
		t.Cleanup(srv.Close)
		servers = append(servers, srv)
	}
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", servers[g%3].URL+"/users/me", nil)
			req.Header.Set("X-API-Key", key)
			resp, err := http.DefaultClient.Do(req)
			status := 0
			if err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	mustf(t, counts[200] == 10 && counts[429] == 20, "across three instances: %v", counts)
}

// Rotating the pepper: keys made with the old one keep working and move
// to the new one on use.
func TestAPIKeyPepperRotation(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	key, id := a.makeKey(t, u, readKey)
	next := a.sibling(t, "API_KEY_PEPPER", testPepper+"-next", "API_KEY_PEPPER_VERSION", "2", "API_KEY_PREVIOUS_PEPPERS", "1:"+testPepper)
	mustf(t, next.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(key)}).Status == 200, "old-pepper key on the new pepper")
	var version int
	mustf(t, next.Rows(t).Raw("SELECT pepper_version FROM api_keys WHERE id = ?", id).Scan(&version).Error == nil && version == 2, "moved to pepper 2: %d", version)
	// Without the old pepper it would no longer be found; with only the new
	// one it is, because it moved.
	only := a.sibling(t, "API_KEY_PEPPER", testPepper+"-next", "API_KEY_PEPPER_VERSION", "2")
	mustf(t, only.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(key)}).Status == 200, "after the move, the old pepper can go")
}

// Configured so, a key counts in its owner's bucket.
func TestAPIKeySharedUserLimit(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_TIERS", "free=4/1m", "API_KEY_SHARES_USER_LIMIT", "true")
	u := a.user(t, caller.Viewer, caller.Free)
	key, _ := a.makeKey(t, u, readKey) // the owner's first request
	var got []int
	for _, h := range []map[string]string{keyHeader(key), bearer(u), keyHeader(key), bearer(u)} {
		got = append(got, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: h}).Status)
	}
	mustf(t, got[2] == 200 && got[3] == 429, "one bucket for the owner and the key: %v", got)
}

// Keys are not unlimited: past API_KEY_MAX_PER_USER live ones a user gets
// 409 (before, five keys multiplied a free user's budget by five), even
// when asking for many at once; a revoked key frees its place.
func TestLiveKeysPerUserAreCapped(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "API_KEY_MAX_PER_USER", "3")
	u := a.user(t, caller.Editor, caller.Free)
	statuses := parallel(8, func(int) *Response {
		return a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: bearer(u), Body: readKey})
	})
	mustf(t, statuses[201] == 3 && statuses[409] == 5, "8 at once under a cap of 3: %v", statuses)
	r := a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: bearer(u), Body: readKey})
	mustf(t, r.Status == 409 && strings.Contains(r.Body, `"code":"api_key_limit"`), "the fourth: %d %s", r.Status, r.Body)
	var id string
	a.Rows(t).Model(&models.APIKey{}).Where("user_id = ?", u.ID).Limit(1).Pluck("id", &id)
	mustf(t, a.do(t, Request{Method: "DELETE", URL: "/api-keys/" + id, Headers: bearer(u)}).Status == 204, "revoke")
	r = a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: bearer(u), Body: readKey})
	mustf(t, r.Status == 201, "after a revocation: %d %s", r.Status, r.Body)
}

// An owner demoted in an organization (not removed): their keys there keep
// only what the new role allows, at the next use.
func TestAPIKeyNarrowsWithItsOwnersRole(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	tm := a.team(t, randomSlug())
	key, _ := a.makeKey(t, tm.Admin, map[string]any{"name": "reports", "scopes": []string{"analytics:read", "users:read"}})
	report := func() *Response { return a.do(t, Request{Method: "GET", URL: "/analytics", Headers: keyHeader(key)}) }
	r := report()
	mustf(t, r.Status == 200, "before: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "PATCH", URL: "/orgs/" + tm.ID + "/members/" + tm.Admin.ID, Headers: bearer(tm.Owner), Body: map[string]string{"role": "viewer"}})
	mustf(t, r.Status == 200, "demote: %d %s", r.Status, r.Body)
	r = report()
	mustf(t, r.Status == 403 && strings.Contains(r.Body, `"code":"insufficient_scope"`), "a viewer's key read the report: %d %s", r.Status, r.Body)
	r = a.do(t, Request{Method: "GET", URL: "/users/me", Headers: keyHeader(key)})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"org_id":"`+tm.ID+`"`) && strings.Contains(r.Body, `"role":"viewer"`), "a viewer's key reads the account: %d %s", r.Status, r.Body)
}
