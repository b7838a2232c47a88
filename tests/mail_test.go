package tests

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/models"
)

// blackHole accepts SMTP connections and never says a word: the relay
// that once held POST /auth/register for minutes.
func blackHole(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustf(t, err == nil, "listen: %v", err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}

// relay is a minimal SMTP server that accepts every message and reports
// each DATA it receives.
func relay(t *testing.T) (string, <-chan string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustf(t, err == nil, "listen: %v", err)
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 relay.test ESMTP\r\n")
				var data strings.Builder
				inData := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if inData {
						if line == ".\r\n" {
							inData = false
							got <- data.String()
							fmt.Fprint(c, "250 queued\r\n")
							continue
						}
						data.WriteString(line)
						continue
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
						fmt.Fprint(c, "250 relay.test\r\n")
					case cmd == "DATA":
						inData = true
						fmt.Fprint(c, "354 go ahead\r\n")
					case cmd == "QUIT":
						fmt.Fprint(c, "221 bye\r\n")
						return
					default:
						fmt.Fprint(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	return l.Addr().String(), got
}

// Mail never blocks a request: with a relay that never answers, register
// and resend answer at once (the mail waits in the outbox), and delivery
// gives up on the attempt at MAIL_SEND_TIMEOUT.
func TestMailNeverBlocksARequest(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "SMTP_URL", "smtp://"+blackHole(t), "MAIL_SEND_TIMEOUT", "200ms")
	mustf(t, register(t, a, "new@example.com").Status == 202, "register")
	r := a.do(t, Request{Method: "POST", URL: "/auth/verify/resend", Body: map[string]string{"email": "new@example.com"}})
	// Not a speed target: had the requests waited for the relay, the request
	// deadline (REQUEST_TIMEOUT) would have answered 504.
	mustf(t, r.Status == 202, "resend: %d %s", r.Status, r.Body)
	n, err := a.Server.Services.Outbox.DeliverDue(context.Background())
	mustf(t, err == nil && n == 2, "two attempts: %d %v", n, err)
	var rows []models.OutboxMail
	a.DB.Order("created_at").Find(&rows)
	for _, m := range rows {
		mustf(t, m.Status == "pending" && m.Attempts == 1 && (strings.Contains(m.LastError, "deadline exceeded") || strings.Contains(m.LastError, "timeout")), "after a silent relay: %+v", m)
	}
}

// Retries with backoff, then abandoned; delivered mail is marked sent.
func TestMailRetriesThenAbandons(t *testing.T) {
	parallelTest(t)
	closed := func() string { // a port nobody listens on: connection refused
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().String()
	}()
	a := newApp(t, "SMTP_URL", "smtp://"+closed, "MAIL_MAX_ATTEMPTS", "3", "MAIL_RETRY_BACKOFF", "30s", "MAIL_SEND_TIMEOUT", "1s")
	register(t, a, "r@example.com")
	state := func() models.OutboxMail {
		var m models.OutboxMail
		a.DB.Where("to_address = ?", "r@example.com").First(&m)
		return m
	}
	deliver := func() int {
		n, err := a.Server.Services.Outbox.DeliverDue(context.Background())
		mustf(t, err == nil, "deliver: %v", err)
		return n
	}
	mustf(t, deliver() == 1, "first attempt")
	m := state()
	mustf(t, m.Status == "pending" && m.Attempts == 1 && m.NextAttemptAt.Equal(Start.Add(30*time.Second)) && m.LastError != "", "after one failure: %+v", m)
	mustf(t, deliver() == 0, "retried before its time")
	a.Clock.Advance(30 * time.Second)
	mustf(t, deliver() == 1, "second attempt")
	m = state()
	mustf(t, m.Attempts == 2 && m.NextAttemptAt.Equal(Start.Add(90*time.Second)), "backoff doubles: %+v", m)
	a.Clock.Advance(60 * time.Second)
	mustf(t, deliver() == 1, "third attempt")
	m = state()
	mustf(t, m.Status == "abandoned" && m.Attempts == 3, "abandoned after MAIL_MAX_ATTEMPTS: %+v", m)
	mustf(t, strings.Contains(a.Logs.String(), "mail abandoned"), "abandonment not logged")
	mustf(t, strings.Contains(a.scrape(t), `app_mail_delivery_attempts_total{result="abandoned"} 1`), "abandonment not counted")
	a.Clock.Advance(time.Hour)
	mustf(t, deliver() == 0, "an abandoned message was tried again")
}

// A working relay receives the message through the real SMTP client.
func TestMailIsDeliveredOverSMTP(t *testing.T) {
	parallelTest(t)
	addr, got := relay(t)
	a := newApp(t, "SMTP_URL", "smtp://"+addr)
	register(t, a, "ok@example.com")
	n, err := a.Server.Services.Outbox.DeliverDue(context.Background())
	mustf(t, err == nil && n == 1, "deliver: %d %v", n, err)
	select {
	case data := <-got:
		mustf(t, strings.Contains(data, "To: ok@example.com") && strings.Contains(data, "/auth/verify?token="), "message: %s", data)
	case <-time.After(5 * time.Second):
		t.Fatal("the relay got nothing")
	}
	var m models.OutboxMail
	a.DB.Where("to_address = ?", "ok@example.com").First(&m)
	mustf(t, m.Status == "sent" && m.SentAt != nil && m.SentAt.Equal(Start), "after delivery: %+v", m)
}

// Mail to one address is capped (3 per 15 minutes by default), whoever
// asks and from wherever, silently: before, 60 mails reached one inbox in
// seconds from 6 addresses.
func TestMailToOneAddressIsCapped(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	email := randomName("inbox-") + "@example.com"
	paths := []string{"/auth/register", "/auth/verify/resend", "/auth/password/forgot", "/auth/verify/resend", "/auth/register", "/auth/verify/resend"}
	for i, p := range paths {
		body := map[string]string{"email": email}
		if p == "/auth/register" {
			body["password"] = testPassword
		}
		r := a.do(t, Request{Method: "POST", URL: p, RemoteAddr: fmt.Sprintf("198.51.100.%d:1234", i+1), Body: body})
		mustf(t, r.Status == 202, "%s from address %d: %d %s", p, i, r.Status, r.Body)
	}
	n := 0
	for _, m := range a.sent(t) {
		if m.To == email {
			n++
		}
	}
	mustf(t, n == 3, "%d mails reached one inbox, want 3", n)
	a.Clock.Advance(16 * time.Minute)
	r := a.do(t, Request{Method: "POST", URL: "/auth/verify/resend", Body: map[string]string{"email": email}})
	mustf(t, r.Status == 202, "resend: %d", r.Status)
	mustf(t, len(a.sent(t)) == n+1, "the cap did not free after its window")
}

// Nothing in the database opens an account: a queued mail's body (with its
// reset or verification link) is encrypted at rest and dropped once sent;
// what operators need to debug stays.
func TestMailBodiesAreEncryptedAndDroppedOnceSent(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "DEV_ROUTES", "false")
	email := randomName("sealed-") + "@example.com"
	r := a.do(t, Request{Method: "POST", URL: "/auth/register", Body: map[string]string{"email": email, "password": testPassword}})
	mustf(t, r.Status == 202, "register: %d", r.Status)
	var row models.OutboxMail
	mustf(t, a.DB.Where("to_address = ?", email).Take(&row).Error == nil, "queued")
	mustf(t, row.Body != "" && !strings.Contains(row.Body, "verify") && !strings.Contains(row.Body, "token") && row.KeyVersion >= 1,
		"the queued body is readable: %q", row.Body)
	sent := a.sent(t)
	mustf(t, len(sent) == 1 && strings.Contains(sent[0].Body, "/auth/verify?token="), "delivered: %+v", sent)
	token := sent[0].Body[strings.Index(sent[0].Body, "token=")+len("token="):]
	token = token[:strings.IndexAny(token, "\n ")]
	mustf(t, a.DB.Where("to_address = ?", email).Take(&row).Error == nil, "row")
	mustf(t, row.Body == "" && row.Status == "sent" && row.Subject == "Verify your email address" && row.Attempts == 1,
		"after delivery: %+v", row)
	var dump []models.OutboxMail
	a.DB.Find(&dump)
	for _, m := range dump {
		mustf(t, !strings.Contains(m.Body, token), "the token is in the outbox")
	}
}
