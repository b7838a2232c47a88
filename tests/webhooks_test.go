package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

func init() {
	crossTenantIDs["/admin/webhooks/{id}"] = theirAdmin
	crossTenantIDs["/admin/webhooks/{id}/rotate-secret"] = theirAdmin
	crossTenantIDs["/admin/webhooks/{id}/messages"] = theirAdmin
	crossTenantIDs["/admin/webhooks/{id}/messages/{msg}/retry"] = func(_ *testing.T, _ *App, w *tenants) []map[string]string {
		return []map[string]string{{"id": w.theirs.Admin.ID, "msg": "msg_x"}}
	}
	notAboutAnotherOrg["POST /admin/webhooks"] = "platform operators only; endpoints are the platform's, no organization's"
	crossTenantBodies["PATCH /admin/webhooks/{id}"] = `{"disabled":true}`
	crossTenantBodies["POST /admin/webhooks/{id}/rotate-secret"] = `{"grace_period":0}`
}

// receiver is an endpoint of the test's own: it keeps what arrives and
// answers status (200 unless set).
type receiver struct {
	mu     sync.Mutex
	got    []received
	status int
	srv    *httptest.Server
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: 200}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body})
		status := r.status
		r.mu.Unlock()
		if status == http.StatusFound {
			http.Redirect(w, req, "http://127.0.0.1:1/elsewhere", status)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) take() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func (r *receiver) answer(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

// verified checks m's signature with the Standard Webhooks library under
// secret and its timestamp against the app's clock, and decodes it.
func verified(t testing.TB, a *App, secret string, m received) map[string]any {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	mustf(t, err == nil, "secret %q: %v", secret, err)
	// The app's clock is the tests' (another year): the library's 5-minute
	// tolerance is checked against it below instead.
	mustf(t, wh.VerifyIgnoringTimestamp(m.body, m.header) == nil, "the signature does not verify: %v %s", m.header, m.body)
	ts, _ := strconv.ParseInt(m.header.Get("webhook-timestamp"), 10, 64)
	mustf(t, ts == a.Clock.Now().Unix(), "webhook-timestamp %d, want %d", ts, a.Clock.Now().Unix())
	mustf(t, strings.HasPrefix(m.header.Get("webhook-id"), "msg_"), "webhook-id %q", m.header.Get("webhook-id"))
	var out map[string]any
	mustf(t, json.Unmarshal(m.body, &out) == nil, "payload %s", m.body)
	return out
}

func deliver(t testing.TB, a *App) int {
	t.Helper()
	n, err := a.Server.Services.Webhooks.DeliverDue(context.Background())
	mustf(t, err == nil, "deliver: %v", err)
	return n
}

func createWebhook(t testing.TB, a *App, admin *User, url string, events ...string) (id, secret string) {
	t.Helper()
	r := a.do(t, Request{Method: "POST", URL: "/admin/webhooks", Headers: bearer(admin), Body: map[string]any{"url": url, "events": events}})
	mustf(t, r.Status == 201, "create webhook: %d %s", r.Status, r.Body)
	return field(t, r, "id"), field(t, r, "secret")
}

func TestWebhooksDeliverSignedAuthEvents(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
	admin := a.user(t, caller.Admin, caller.Free)
	rcv := newReceiver(t)
	id, secret := createWebhook(t, a, admin, rcv.srv.URL, "user.created", "session.created", "session.revoked", "api_key.created")
	mustf(t, strings.HasPrefix(secret, "whsec_"), "secret %q", secret)

	email := randomName("hook-") + "@example.com"
	mustf(t, register(t, a, email).Status == 202, "register")
	var user models.User
	a.DB.Where("email = ?", email).Take(&user)
	u := a.user(t, caller.Editor, caller.Free)                                 // a login: session.created
	mustf(t, refresh(t, a, u.Refresh).Status == 200, "refresh (not an event)") // nothing
	mustf(t, a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: bearer(u), Body: map[string]any{"name": "k", "scopes": []string{"users:read"}}}).Status == 201, "key")
	mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": u.Refresh}}).Status == 204, "logout")

	mustf(t, deliver(t, a) == 4, "want 4 messages due")
	var types []string
	for _, m := range rcv.take() {
		p := verified(t, a, secret, m)
		types = append(types, p["type"].(string))
		data := p["data"].(map[string]any)
		if p["type"] == "user.created" {
			mustf(t, data["target_id"] == user.ID.String() && data["target_type"] == "user", "user.created data %v", data)
		}
		mustf(t, !strings.Contains(string(m.body), testPassword) && !strings.Contains(string(m.body), u.Refresh), "a secret in the payload: %s", m.body)
	}
	mustf(t, strings.Join(types, ",") == "user.created,session.created,api_key.created,session.revoked", "types %v", types)
	mustf(t, deliver(t, a) == 0, "a delivered message went again")

	log := a.do(t, Request{Method: "GET", URL: "/admin/webhooks/" + id + "/messages", Headers: bearer(admin)})
	mustf(t, log.Status == 200 && strings.Count(log.Body, `"status":"delivered"`) == 4 && strings.Contains(log.Body, `"last_status":200`), "log: %s", log.Body)

	// Disabled: nothing new is queued for it.
	mustf(t, a.do(t, Request{Method: "PATCH", URL: "/admin/webhooks/" + id, Headers: bearer(admin), Body: map[string]any{"disabled": true}}).Status == 200, "disable")
	a.user(t, caller.Viewer, caller.Free)
	mustf(t, deliver(t, a) == 0, "a disabled endpoint got a message")
}

// A failing endpoint is retried with backoff, then the message is dead;
// a manual retry sends it again.
func TestWebhookRetriesAndDeadLetter(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true", "WEBHOOK_MAX_ATTEMPTS", "3")
	admin := a.user(t, caller.Admin, caller.Free)
	rcv := newReceiver(t)
	id, secret := createWebhook(t, a, admin, rcv.srv.URL, "*")
	rcv.answer(500)
	a.user(t, caller.Viewer, caller.Free) // session.created
	mustf(t, deliver(t, a) == 1 && len(rcv.take()) == 1, "first attempt")
	var m models.WebhookMessage
	a.DB.Where("endpoint_id = ?", id).Take(&m)
	mustf(t, m.Status == "pending" && m.Attempts == 1 && m.LastStatus == 500 && m.NextAttemptAt.Equal(a.Clock.Now().Add(10*time.Second)), "after a 500: %+v", m)
	mustf(t, deliver(t, a) == 0, "retried before its backoff")
	a.Clock.Advance(10 * time.Second)
	rcv.answer(http.StatusFound) // a redirect is not followed: a failure
	mustf(t, deliver(t, a) == 1 && len(rcv.take()) == 1, "second attempt")
	a.Clock.Advance(time.Minute)
	rcv.answer(503)
	mustf(t, deliver(t, a) == 1, "third attempt")
	a.DB.Where("endpoint_id = ?", id).Take(&m)
	mustf(t, m.Status == "dead" && m.Attempts == 3 && m.LastStatus == 503, "after the last attempt: %+v", m)
	a.Clock.Advance(24 * time.Hour)
	mustf(t, deliver(t, a) == 0, "a dead message went again")

	rcv.take()
	rcv.answer(200)
	a.login(t, admin) // a day on, its access token has expired
	r := a.do(t, Request{Method: "POST", URL: "/admin/webhooks/" + id + "/messages/" + m.ID + "/retry", Headers: bearer(admin)})
	mustf(t, r.Status == 202, "retry: %d %s", r.Status, r.Body)
	mustf(t, deliver(t, a) == 2, "the retried message (and the admin's new login)")
	var again *received
	for _, g := range rcv.take() {
		if g.header.Get("webhook-id") == m.ID {
			again = &g
		}
	}
	mustf(t, again != nil, "the retry does not carry the same webhook-id (receivers dedupe on it)")
	verified(t, a, secret, *again)
	r = a.do(t, Request{Method: "POST", URL: "/admin/webhooks/" + id + "/messages/" + m.ID + "/retry", Headers: bearer(admin)})
	mustf(t, r.Status == 404, "a delivered message retried: %d", r.Status)
}

// During a rotation's overlap a message carries both signatures.
func TestWebhookSecretRotation(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
	admin := a.user(t, caller.Admin, caller.Free)
	rcv := newReceiver(t)
	id, old := createWebhook(t, a, admin, rcv.srv.URL, "session.created")
	r := a.do(t, Request{Method: "POST", URL: "/admin/webhooks/" + id + "/rotate-secret", Headers: bearer(admin), Body: map[string]any{"grace_period": 3600}})
	mustf(t, r.Status == 200, "rotate: %d %s", r.Status, r.Body)
	fresh := field(t, r, "secret")
	mustf(t, fresh != old && strings.HasPrefix(fresh, "whsec_"), "new secret %q", fresh)
	a.user(t, caller.Viewer, caller.Free)
	deliver(t, a)
	got := rcv.take()
	mustf(t, len(got) == 1 && len(strings.Fields(got[0].header.Get("webhook-signature"))) == 2, "signatures %q", got[0].header.Get("webhook-signature"))
	verified(t, a, old, got[0])
	verified(t, a, fresh, got[0])
	a.Clock.Advance(time.Hour)
	a.user(t, caller.Viewer, caller.Free)
	deliver(t, a)
	got = rcv.take()
	mustf(t, len(got) == 1 && len(strings.Fields(got[0].header.Get("webhook-signature"))) == 1, "after the overlap: %q", got[0].header.Get("webhook-signature"))
	verified(t, a, fresh, got[0])
	wh, _ := standardwebhooks.NewWebhook(old)
	mustf(t, wh.VerifyIgnoringTimestamp(got[0].body, got[0].header) != nil, "the old secret still verifies after the overlap")
}

// Without WEBHOOK_ALLOW_PRIVATE_NETWORKS an endpoint on loopback is never
// reached (SSRF): the connection is refused before it is made.
func TestWebhookSSRFGuard(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	admin := a.user(t, caller.Admin, caller.Free)
	rcv := newReceiver(t)
	id, _ := createWebhook(t, a, admin, rcv.srv.URL, "session.created")
	a.user(t, caller.Viewer, caller.Free)
	mustf(t, deliver(t, a) == 1, "one attempt")
	mustf(t, len(rcv.take()) == 0, "the loopback endpoint was reached")
	var m models.WebhookMessage
	a.DB.Where("endpoint_id = ?", id).Take(&m)
	mustf(t, m.Status == "pending" && strings.Contains(m.LastError, "private") && m.LastStatus == 0, "message %+v", m)
}

func TestWebhooksAPI(t *testing.T) {
	parallelTest(t)
	op := map[string]string{"Authorization": "{admin}"}
	withHook := func(t testing.TB, a *App) map[string]string {
		v := withOperator(t, a)
		r := a.do(t, Request{Method: "POST", URL: "/admin/webhooks", Headers: map[string]string{"Authorization": v["admin"]},
			Body: map[string]any{"url": "https://hooks.example.com/in", "events": []string{"user.created"}}})
		mustf(t, r.Status == 201, "create: %d %s", r.Status, r.Body)
		v["hook"] = field(t, r, "id")
		return v
	}
	for _, s := range []Scenario{
		{Name: "register an endpoint", Method: "POST", URL: "/admin/webhooks", Headers: op, Setup: withOperator,
			Body:           map[string]any{"url": "https://hooks.example.com/in", "events": []string{"user.created", "mfa.enabled"}, "description": "CRM"},
			ExpectedStatus: 201, ExpectedContent: []string{`"secret":"whsec_`, `"events":["mfa.enabled","user.created"]`, `"disabled":false`},
			After: func(t testing.TB, a *App, r *Response) {
				list := a.do(t, Request{Method: "GET", URL: "/admin/webhooks", Headers: map[string]string{"Authorization": r.vals["admin"]}})
				mustf(t, list.Status == 200 && strings.Contains(list.Body, `"description":"CRM"`) && !strings.Contains(list.Body, "whsec_"), "the list shows a secret: %s", list.Body)
				var row models.WebhookEndpoint
				a.DB.Take(&row)
				mustf(t, !strings.Contains(row.Secret, "whsec_"), "the secret is stored in the clear")
			}},
		{Name: "an unknown event type", Method: "POST", URL: "/admin/webhooks", Headers: op, Setup: withOperator,
			Body: map[string]any{"url": "https://hooks.example.com/in", "events": []string{"user.exploded"}}, ExpectedStatus: 400, ExpectedContent: []string{`"events"`}},
		{Name: "not a URL", Method: "POST", URL: "/admin/webhooks", Headers: op, Setup: withOperator,
			Body: map[string]any{"url": "ftp://hooks.example.com", "events": []string{"*"}}, ExpectedStatus: 400, ExpectedContent: []string{`"url"`}},
		{Name: "credentials in the URL", Method: "POST", URL: "/admin/webhooks", Headers: op, Setup: withOperator,
			Body: map[string]any{"url": "https://user:pass@hooks.example.com", "events": []string{"*"}}, ExpectedStatus: 400, ExpectedContent: []string{`"url"`}},
		{Name: "a NUL in the description", Method: "POST", URL: "/admin/webhooks", Headers: op, Setup: withOperator,
			Body: `{"url":"https://hooks.example.com","events":["*"],"description":"a\u0000"}`, ExpectedStatus: 400, ExpectedContent: []string{"NUL"}},
		{Name: "a member may not", Method: "GET", URL: "/admin/webhooks", Headers: map[string]string{"Authorization": "{user}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				return map[string]string{"user": a.user(t, caller.Editor, caller.Free).Bearer()}
			},
			ExpectedStatus: 403},
		{Name: "the event types", Method: "GET", URL: "/admin/webhooks/events", Headers: op, Setup: withOperator,
			ExpectedStatus: 200, ExpectedContent: []string{`"refresh.reuse_detected"`, `"org.member_added"`, `"password.changed"`}},
		{Name: "change the events", Method: "PATCH", URL: "/admin/webhooks/{hook}", Headers: op, Setup: withHook,
			Body: map[string]any{"events": []string{"session.revoked"}}, ExpectedStatus: 200, ExpectedContent: []string{`"events":["session.revoked"]`}},
		{Name: "delete", Method: "DELETE", URL: "/admin/webhooks/{hook}", Headers: op, Setup: withHook, ExpectedStatus: 204},
		{Name: "an unknown endpoint", Method: "DELETE", URL: "/admin/webhooks/00000000-0000-4000-8000-000000000009", Headers: op, Setup: withOperator,
			ExpectedStatus: 404, ExpectedContent: []string{"webhook_not_found"}},
		{Name: "a grace period too long", Method: "POST", URL: "/admin/webhooks/{hook}/rotate-secret", Headers: op, Setup: withHook,
			Body: map[string]any{"grace_period": 30 * 24 * 3600}, ExpectedStatus: 400},
	} {
		s.Run(t)
	}
}

// A refused event that matters (reuse of a refresh token) is delivered;
// failed logins are not.
func TestWebhookReuseDetected(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
	admin := a.user(t, caller.Admin, caller.Free)
	rcv := newReceiver(t)
	_, secret := createWebhook(t, a, admin, rcv.srv.URL, "refresh.reuse_detected", "session.created")
	u := a.user(t, caller.Viewer, caller.Free)
	mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": "Wrong-Pass-1"}}).Status == 401, "a failed login")
	mustf(t, refresh(t, a, u.Refresh).Status == 200, "rotate")
	a.Clock.Advance(time.Minute)
	mustf(t, refresh(t, a, u.Refresh).Status == 401, "reuse")
	deliver(t, a)
	var types []string
	for _, m := range rcv.take() {
		p := verified(t, a, secret, m)
		types = append(types, p["type"].(string))
		if p["type"] == "refresh.reuse_detected" {
			mustf(t, p["data"].(map[string]any)["target_id"] == u.ID, "reuse data %v", p["data"])
		}
	}
	mustf(t, strings.Join(types, ",") == "session.created,refresh.reuse_detected", "types %v", types)
}
