package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// hangUp sends one request over a real socket and closes the connection as
// soon as the status line arrives, as curl does once it has its answer,
// and returns that status line (token: sent as a bearer token). What the
// answer promises must be durable
// by then: the caller checks the database right after, without waiting.
func hangUp(t *testing.T, addr, method, path string, body any, token ...string) string {
	t.Helper()
	raw, err := json.Marshal(body)
	mustf(t, err == nil, "%v", err)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	mustf(t, err == nil, "dial: %v", err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	auth := ""
	if len(token) > 0 {
		auth = "Authorization: Bearer " + token[0] + "\r\n"
	}
	_, err = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: tollgate.test\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		method, path, auth, len(raw), raw)
	mustf(t, err == nil, "write: %v", err)
	line, err := bufio.NewReader(conn).ReadString('\n')
	mustf(t, err == nil, "read status line: %v", err)
	return strings.TrimSpace(line)
}

// mailTo counts the outbox rows addressed to email (delivered or not).
func mailTo(t *testing.T, a *App, email string) int64 {
	t.Helper()
	var n int64
	mustf(t, a.DB.Model(&models.OutboxMail{}).Where("to_address = ?", email).Count(&n).Error == nil, "count mail")
	return n
}

// A 202 means it happened: register, resend and forgot answer only once
// the account and its mail are stored, so a client that hangs up as soon
// as it has the status line loses nothing (on SQLite, and on PostgreSQL
// when TEST_DATABASE_URL is set). Before, the work ran after the answer on
// the request's context, and a hang-up cancelled it.
func TestAnswerAfterTheWriteSurvivesHangUp(t *testing.T) {
	const rounds = 5
	t.Run("register", func(t *testing.T) {
		parallelTest(t)
		a := newApp(t)
		srv := httptest.NewServer(a.Handler)
		defer srv.Close()
		addr := strings.TrimPrefix(srv.URL, "http://")
		for i := range rounds {
			email := fmt.Sprintf("hangup-%d-%s@example.com", i, randomName(""))
			line := hangUp(t, addr, "POST", "/auth/register", map[string]string{"email": email, "password": testPassword})
			mustf(t, strings.HasPrefix(line, "HTTP/1.1 202"), "status line %q", line)
			var u models.User
			mustf(t, a.DB.Where("email = ?", email).Take(&u).Error == nil, "round %d: account lost after the 202", i)
			mustf(t, mailTo(t, a, email) == 1, "round %d: verification mail lost after the 202", i)
			// The account exists: its password matches and it is unverified.
			r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": email, "password": testPassword}})
			mustf(t, r.Status == 403 && strings.Contains(r.Body, "email_not_verified"), "login right after: %d %s", r.Status, r.Body)
		}
	})
	t.Run("resend", func(t *testing.T) {
		parallelTest(t)
		a := newApp(t, "RATE_LIMIT_MAIL_ADDRESS", "100/15m") // one address, many mails: not what is tested
		email := randomName("unverified-") + "@example.com"
		mustf(t, register(t, a, email).Status == 202, "register")
		srv := httptest.NewServer(a.Handler)
		defer srv.Close()
		addr := strings.TrimPrefix(srv.URL, "http://")
		for i := range rounds {
			before := mailTo(t, a, email)
			line := hangUp(t, addr, "POST", "/auth/verify/resend", map[string]string{"email": email})
			mustf(t, strings.HasPrefix(line, "HTTP/1.1 202"), "status line %q", line)
			mustf(t, mailTo(t, a, email) == before+1, "round %d: new link lost after the 202", i)
		}
	})
	t.Run("forgot", func(t *testing.T) {
		parallelTest(t)
		a := newApp(t, "RATE_LIMIT_FORGOT_ACCOUNT", "100/1h", "RATE_LIMIT_MAIL_ADDRESS", "100/15m")
		u := a.user(t, caller.Viewer, caller.Free)
		srv := httptest.NewServer(a.Handler)
		defer srv.Close()
		addr := strings.TrimPrefix(srv.URL, "http://")
		for i := range rounds {
			before := mailTo(t, a, u.Email)
			line := hangUp(t, addr, "POST", "/auth/password/forgot", map[string]string{"email": u.Email})
			mustf(t, strings.HasPrefix(line, "HTTP/1.1 202"), "status line %q", line)
			mustf(t, mailTo(t, a, u.Email) == before+1, "round %d: reset mail lost after the 202", i)
			var live int64
			mustf(t, a.DB.Model(&models.PasswordResetToken{}).Where("user_id = ? AND used_at IS NULL", u.ID).Count(&live).Error == nil, "count")
			mustf(t, live == 1, "round %d: %d live reset tokens, want 1", i, live)
		}
	})
	// An organization's writes: made, invited and joined once the answer
	// is out, whoever hangs up.
	t.Run("organizations", func(t *testing.T) {
		parallelTest(t)
		a := newApp(t)
		srv := httptest.NewServer(a.Handler)
		defer srv.Close()
		addr := strings.TrimPrefix(srv.URL, "http://")
		for i := range rounds {
			owner, invited := a.user(t, caller.Viewer, caller.Free), a.user(t, caller.Viewer, caller.Free)
			slug := randomSlug()
			line := hangUp(t, addr, "POST", "/orgs", map[string]string{"name": "Hung up", "slug": slug}, owner.Access)
			mustf(t, strings.HasPrefix(line, "HTTP/1.1 201"), "create: status line %q", line)
			var org models.Organization
			mustf(t, a.DB.Where("slug = ?", slug).Take(&org).Error == nil, "round %d: organization lost after the 201", i)
			var owners int64
			mustf(t, a.DB.Model(&models.Membership{}).Where("org_id = ? AND user_id = ? AND role = ?", org.ID, owner.ID, caller.Owner).Count(&owners).Error == nil && owners == 1,
				"round %d: its owner lost after the 201", i)

			line = hangUp(t, addr, "POST", "/orgs/"+org.ID.String()+"/invitations", map[string]string{"email": invited.Email, "role": "editor"}, owner.Access)
			mustf(t, strings.HasPrefix(line, "HTTP/1.1 201"), "invite: status line %q", line)
			var pending int64
			mustf(t, a.Rows(t).Model(&models.Invitation{}).Where("org_id = ? AND email = ?", org.ID, invited.Email).Count(&pending).Error == nil && pending == 1,
				"round %d: invitation lost after the 201", i)
			mustf(t, mailTo(t, a, invited.Email) == 1, "round %d: invitation mail lost after the 201", i)

			line = hangUp(t, addr, "POST", "/invitations/accept", map[string]string{"token": invitationToken(t, a, invited.Email)}, invited.Access)
			mustf(t, strings.HasPrefix(line, "HTTP/1.1 200"), "accept: status line %q", line)
			var joined int64
			mustf(t, a.DB.Model(&models.Membership{}).Where("org_id = ? AND user_id = ? AND role = ?", org.ID, invited.ID, caller.Editor).Count(&joined).Error == nil && joined == 1,
				"round %d: membership lost after the 200", i)
		}
	})
}

// Every branch of an anonymous request writes the same: one transaction
// with one outbox row, withheld (never delivered, no address kept) when
// there is nothing to send, so its timing tells nothing.
func TestAnonymousRequestsWriteTheSameInEveryCase(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	verified := a.user(t, caller.Viewer, caller.Free)
	count := func(status string) int64 {
		var n int64
		mustf(t, a.DB.Model(&models.OutboxMail{}).Where("status = ?", status).Count(&n).Error == nil, "count")
		return n
	}
	for _, c := range []struct {
		name, url, email  string
		pending, withheld int64
	}{
		{"resend for an unknown address", "/auth/verify/resend", "nobody@example.com", 0, 1},
		{"resend for a verified account", "/auth/verify/resend", verified.Email, 0, 1},
		{"forgot for an unknown address", "/auth/password/forgot", "nobody@example.com", 0, 1},
		{"forgot for an account", "/auth/password/forgot", verified.Email, 1, 0},
	} {
		pending, withheld := count(services.MailPending), count(services.MailWithheld)
		r := a.do(t, Request{Method: "POST", URL: c.url, Body: map[string]string{"email": c.email}})
		mustf(t, r.Status == 202, "%s: %d %s", c.name, r.Status, r.Body)
		mustf(t, count(services.MailPending)-pending == c.pending && count(services.MailWithheld)-withheld == c.withheld,
			"%s: %d pending and %d withheld rows written", c.name, count(services.MailPending)-pending, count(services.MailWithheld)-withheld)
	}
	var leaked int64
	mustf(t, a.DB.Model(&models.OutboxMail{}).Where("status = ? AND to_address <> ''", services.MailWithheld).Count(&leaked).Error == nil, "count")
	mustf(t, leaked == 0, "withheld rows keep the address")
	for _, m := range a.sent(t) {
		mustf(t, m.To != "nobody@example.com" && m.To != "", "a withheld row was delivered: %+v", m)
	}
}

// A database failure during registration answers 503, never a 202 for a
// write that did not happen.
func TestRegisterOnAFailedDatabaseIs503(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	a.DB.Close()
	for _, c := range []struct{ url, body string }{
		{"/auth/register", `{"email":"down@example.com","password":"Correct-Horse-9"}`},
		{"/auth/verify/resend", `{"email":"down@example.com"}`},
		{"/auth/password/forgot", `{"email":"down@example.com"}`},
	} {
		r := a.do(t, Request{Method: "POST", URL: c.url, Body: c.body})
		mustf(t, r.Status == 503 && strings.Contains(r.Body, "service_unavailable"), "%s: %d %s", c.url, r.Status, r.Body)
	}
}
