package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/product"
	"github.com/tollgate/tollgate/services"
)

// audited makes a few audited things happen: logins (one failed), a role
// change, an API key and a password change. {token} is an admin's.
func audited(t testing.TB, a *App) map[string]string {
	admin := a.user(t, caller.Admin, caller.Free)
	u := a.user(t, caller.Viewer, caller.Free)
	a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": "Wrong-Pass-123"}})
	r := a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + u.ID, Headers: bearer(admin), Body: map[string]string{"role": "editor"}})
	mustf(t, r.Status == 200, "role change: %d", r.Status)
	a.login(t, u) // the role change voided u's tokens
	a.makeKey(t, u, readKey)
	r = a.do(t, Request{Method: "POST", URL: "/users/me/password", Headers: bearer(u),
		Body: map[string]string{"current_password": testPassword, "new_password": "Brand-New-Pass-7"}})
	mustf(t, r.Status == 200, "password change: %d %s", r.Status, r.Body)
	return map[string]string{"token": admin.Access, "user_id": u.ID, "admin_id": admin.ID, "access": u.Access}
}

func TestAuditLog(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "admins read what happened, newest first, without secrets", Method: "GET", URL: "/admin/audit", Headers: auth, Setup: audited,
			ExpectedStatus: 200,
			ExpectedContent: []string{`"action":"password.changed"`, `"action":"api_key.created"`, `"action":"user.role_changed","outcome":"success","reason":"viewer-\u003eeditor"`,
				`"action":"auth.login_failed","outcome":"failure","reason":"invalid_credentials","target_type":"user","target_id":"{user_id}"`,
				`"action":"auth.login","outcome":"success"`, `"ip":"192.0.2.1"`, `"actor_type":"user","actor_id":"{admin_id}"`, `"request_id":"`},
			NotExpected: []string{testPassword, "Brand-New-Pass-7", "Wrong-Pass-123", "{access}", product.KeyPrefix + "test_"},
			After: func(t testing.TB, a *App, r *Response) {
				var page struct{ Data []struct{ Seq int64 } }
				r.JSON(t, &page)
				for i := 1; i < len(page.Data); i++ {
					mustf(t, page.Data[i].Seq < page.Data[i-1].Seq, "not newest first")
				}
			}},
		{Name: "filtered by action", Method: "GET", URL: "/admin/audit?action=auth.login_failed", Headers: auth, Setup: audited,
			ExpectedStatus: 200, ExpectedContent: []string{`"action":"auth.login_failed"`}, NotExpected: []string{`"action":"auth.login"`}},
		{Name: "filtered by actor", Method: "GET", URL: "/admin/audit?actor_id={user_id}", Headers: auth, Setup: audited,
			ExpectedStatus: 200, ExpectedContent: []string{`"action":"password.changed"`}, NotExpected: []string{`"action":"user.role_changed"`}},
		{Name: "filtered by time: nothing before it all", Method: "GET", URL: "/admin/audit?until=2026-03-02T08:00:00Z", Headers: auth, Setup: audited,
			ExpectedStatus: 200, ExpectedContent: []string{`"data":[]`}},
		{Name: "paged with a cursor", Method: "GET", URL: "/admin/audit?per_page=2", Headers: auth, Setup: audited,
			ExpectedStatus: 200, ExpectedContent: []string{`"has_more":true`, `"next_cursor":"`},
			After: func(t testing.TB, a *App, r *Response) {
				next := a.do(t, Request{Method: "GET", URL: "/admin/audit?per_page=2&cursor=" + field(t, r, "next_cursor"), Headers: map[string]string{"Authorization": "Bearer " + r.vals["token"]}})
				mustf(t, next.Status == 200 && strings.Count(next.Body, `"seq":`) == 2, "second page: %s", next.Body)
			}},
		{Name: "bad filters are named", Method: "GET", URL: "/admin/audit?since=yesterday&per_page=1000&cursor=x", Headers: auth, Setup: asRole("admin"),
			ExpectedStatus: 400, ExpectedContent: []string{`"since":`, `"per_page":`, `"cursor":`}},
		{Name: "an NDJSON export", Method: "GET", URL: "/admin/audit?format=ndjson", Headers: auth, Setup: audited,
			ExpectedStatus: 200, ExpectedHeaders: map[string]string{"Content-Type": "application/x-ndjson"},
			After: func(t testing.TB, a *App, r *Response) {
				lines := strings.Split(strings.TrimSpace(r.Body), "\n")
				mustf(t, len(lines) == 7, "%d lines, want 7 events", len(lines))
				for _, l := range lines {
					var e map[string]any
					mustf(t, json.Unmarshal([]byte(l), &e) == nil && e["action"] != nil, "line %q", l)
				}
			}},
		{Name: "the chain verifies", Method: "GET", URL: "/admin/audit/verify", Headers: auth, Setup: audited,
			ExpectedStatus: 200, ExpectedContent: []string{`"valid":true`}},
		{Name: "an edited row is found", Method: "GET", URL: "/admin/audit/verify", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := audited(t, a)
				a.DB.Exec("UPDATE audit_events SET outcome = 'success' WHERE action = 'auth.login_failed'")
				var e models.AuditEvent
				a.DB.Where("action = ?", "auth.login_failed").First(&e)
				v["bad"] = itoa(e.Seq)
				return v
			},
			ExpectedStatus: 200, ExpectedContent: []string{`"valid":false`, `"first_bad":{bad}`, `"problem":"content does not match its hash"`}},
		{Name: "a removed row is found", Method: "GET", URL: "/admin/audit/verify", Headers: auth,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := audited(t, a)
				a.DB.Exec("DELETE FROM audit_events WHERE seq = 3")
				return v
			},
			ExpectedStatus: 200, ExpectedContent: []string{`"valid":false`, `"first_bad":3`, `"problem":"missing row"`}},
		{Name: "others may not read it", Method: "GET", URL: "/admin/audit", Headers: auth, Setup: asRole("editor"),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
		{Name: "nor may an admin's key", Method: "GET", URL: "/admin/audit", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup:          withKey(caller.Admin, map[string]any{"name": "all", "scopes": caller.AllScopes()}),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"user_token_required"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// The retention purge removes old events and moves the chain's anchor,
// so what remains still verifies.
func TestAuditRetentionKeepsTheChainVerifiable(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	v := audited(t, a)
	var before int64
	a.DB.Model(&models.AuditEvent{}).Count(&before)
	a.Clock.Advance(91 * 24 * time.Hour)
	admin := &User{Email: "", Password: testPassword}
	a.DB.Model(&models.User{}).Where("id = ?", v["admin_id"]).Pluck("email", &admin.Email)
	a.login(t, admin) // a new event after the old ones
	audit := services.NewAudit(a.DB.DB, a.Clock, []byte(a.Config.AuditKey), slog.New(slog.NewTextHandler(io.Discard, nil)))
	purge := services.NewPurge(a.DB.DB, a.Clock, slog.New(slog.DiscardHandler), metrics.New(), a.Config.EmailVerificationTTL).
		WithAudit(audit, a.Config.AuditRetention)
	n, err := purge.Run(context.Background())
	mustf(t, err == nil && n.AuditEvents == before, "purged %d of %d: %v", n.AuditEvents, before, err)
	r := a.do(t, Request{Method: "GET", URL: "/admin/audit/verify", Headers: bearer(admin)})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"valid":true`) && strings.Contains(r.Body, `"anchor_seq":`+itoa(before)), "after the purge: %s", r.Body)
	var left []models.AuditEvent
	a.DB.Order("seq").Find(&left)
	mustf(t, len(left) == 2 && left[1].Action == "audit.purged" && left[1].ActorType == "system", "events left: %+v", left)
}

// A client's X-Request-Id is kept only in a safe shape (bounded length and
// characters); otherwise a new one is made. The audit log says which.
func TestClientRequestIDsAreBoundedAndMarked(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	login := func(id string) *Response {
		return a.do(t, Request{Method: "POST", URL: "/auth/login", Headers: map[string]string{"X-Request-Id": id},
			Body: map[string]string{"email": u.Email, "password": u.Password}})
	}
	r := login("trace-4bf92f3577b34da6")
	mustf(t, r.Header.Get("X-Request-Id") == "trace-4bf92f3577b34da6", "a safe id was not kept: %q", r.Header.Get("X-Request-Id"))
	for _, bad := range []string{strings.Repeat("a", 65), "id with spaces", "x\u00e9", "<script>", "a\"b"} {
		r := login(bad)
		got := r.Header.Get("X-Request-Id")
		mustf(t, got != bad && len(got) == 32, "%q was echoed as %q", bad, got)
	}
	var ids []string
	a.DB.Model(&models.AuditEvent{}).Where("action = ?", "auth.login").Order("seq").Pluck("request_id", &ids)
	mustf(t, len(ids) == 7 && ids[1] == "client:trace-4bf92f3577b34da6", "audited ids: %q", ids)
	for _, id := range append(ids[:1], ids[2:]...) {
		mustf(t, !strings.HasPrefix(id, "client:") && len(id) == 32, "a server-made id audited as %q", id)
	}
}

// What the audit log missed is in it now: registration (with the branch it
// took), verification, forgot-password requests, logout, lockouts (once
// per window) and OAuth token issuance.
func TestTheAuditLogRecordsAccountLifecycleEvents(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_LOGIN_ACCOUNT", "2/15m")
	email := randomName("life-") + "@example.com"
	mustf(t, register(t, a, email).Status == 202, "register")
	mustf(t, register(t, a, email).Status == 202, "register again")
	r := a.do(t, Request{Method: "GET", URL: "/auth/verify?token=" + a.lastToken(t, email)})
	mustf(t, r.Status == 200, "verify: %d %s", r.Status, r.Body)
	mustf(t, register(t, a, email).Status == 202, "register a verified address")
	a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": email}})
	a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": "nobody@example.com"}})
	for i := range 5 {
		a.do(t, Request{Method: "POST", URL: "/auth/login", RemoteAddr: fmt.Sprintf("198.51.100.%d:1", i+1),
			Body: map[string]string{"email": email, "password": "Wrong-Pass-123"}})
	}
	admin := a.user(t, caller.Admin, caller.Free)
	id, secret, _ := a.client(t, admin, readClient)
	a.token(t, id, secret, "")
	a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": admin.Refresh}})
	for action, reasons := range map[string][]string{
		"auth.register":            {"new", "unverified_replaced", "already_verified"},
		"auth.email_verified":      {""},
		"password.reset_requested": {"reset link: address limit", "reset link: no account"}, // three mails reached it already
		"auth.account_locked":      {"login_account_1"},
		"oauth.token_issued":       {"analytics:read users:read"},
		"auth.logout":              {"local"},
	} {
		var got []string
		a.DB.Model(&models.AuditEvent{}).Where("action = ?", action).Order("seq").Pluck("reason", &got)
		mustf(t, strings.Join(got, "|") == strings.Join(reasons, "|"), "%s: reasons %q, want %q", action, got, reasons)
	}
	a.login(t, admin) // the logout ended the admin's session
	r = a.do(t, Request{Method: "GET", URL: "/admin/audit/verify", Headers: bearer(admin)})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"valid":true`), "the chain: %d %s", r.Status, r.Body)
}

// What a database writer removes from either end of the chain is found:
// the newest rows against a signed checkpoint kept outside the database
// (the log, a file), the oldest because only a purge moves the anchor and
// the chain records how far each purge went.
func TestAuditCheckpointsCatchTruncation(t *testing.T) {
	parallelTest(t)
	file := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	a := newApp(t, "AUDIT_CHECKPOINT_FILE", file)
	v := audited(t, a)
	admin := map[string]string{"Authorization": "Bearer " + v["token"]}
	// Another instance (or this one, on its interval) signs a checkpoint.
	signer := services.NewAudit(a.DB.DB, a.Clock, []byte(a.Config.AuditKey), slog.New(slog.DiscardHandler)).WithCheckpointFile(file)
	cp, err := signer.Checkpoint(context.Background())
	mustf(t, err == nil && cp.Seq > 3, "checkpoint: %+v %v", cp, err)
	r := a.do(t, Request{Method: "GET", URL: "/admin/audit/verify", Headers: admin})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"valid":true`) && strings.Contains(r.Body, `"checkpoint":"`+cp.String()+`"`), "before: %s", r.Body)

	// The newest two rows go, and the recorded head is moved back to match.
	var prev models.AuditEvent
	a.DB.Where("seq = ?", cp.Seq-2).Take(&prev)
	a.DB.Exec("DELETE FROM audit_events WHERE seq > ?", cp.Seq-2)
	a.DB.Exec("UPDATE audit_chain SET last_seq = ?, last_hash = ? WHERE id = 1", prev.Seq, prev.Hash)
	r = a.do(t, Request{Method: "GET", URL: "/admin/audit/verify", Headers: admin})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"valid":false`) && strings.Contains(r.Body, "newer rows were removed"), "truncated at the end: %s", r.Body)
	// The same with the checkpoint given, as copied from the log.
	r = a.do(t, Request{Method: "GET", URL: "/admin/audit/verify?checkpoint=" + cp.String(), Headers: admin})
	mustf(t, strings.Contains(r.Body, `"valid":false`), "with the checkpoint given: %s", r.Body)
	// A forged checkpoint is refused.
	forged := cp
	forged.Seq = 1
	r = a.do(t, Request{Method: "GET", URL: "/admin/audit/verify?checkpoint=" + forged.String(), Headers: admin})
	mustf(t, r.Status == 400 && strings.Contains(r.Body, "invalid_checkpoint"), "forged: %d %s", r.Status, r.Body)
}

func TestAuditAnchorMovedWithoutAPurgeIsFound(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	v := audited(t, a)
	var third models.AuditEvent
	a.DB.Where("seq = ?", 3).Take(&third)
	a.DB.Exec("DELETE FROM audit_events WHERE seq <= 3")
	a.DB.Exec("UPDATE audit_chain SET anchor_seq = ?, anchor_hash = ? WHERE id = 1", third.Seq, third.Hash)
	r := a.do(t, Request{Method: "GET", URL: "/admin/audit/verify", Headers: map[string]string{"Authorization": "Bearer " + v["token"]}})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"valid":false`) && strings.Contains(r.Body, "the last purge recorded deleting through seq 0"),
		"the oldest rows removed: %s", r.Body)
}
