package services

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Message is one outgoing plain-text email.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Mailer sends email. SMTP in production, the log in development, memory in tests.
type Mailer interface {
	Send(ctx context.Context, m Message) error
	// Destination says where mail goes, for the start-up log.
	Destination() string
}

// SMTPMailer sends through an SMTP relay given as smtp://user:pass@host:port.
// net/smtp upgrades to STARTTLS whenever the server offers it.
type SMTPMailer struct {
	addr string
	host string
	auth smtp.Auth
	from string
}

// NewSMTPMailer parses rawURL (already checked by settings) and the From address.
func NewSMTPMailer(rawURL, from string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("MAIL_FROM: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = "587"
	}
	m := &SMTPMailer{addr: net.JoinHostPort(u.Hostname(), port), host: u.Hostname(), from: from}
	if u.User != nil {
		pass, _ := u.User.Password()
		m.auth = smtp.PlainAuth("", u.User.Username(), pass, u.Hostname())
	}
	return m, nil
}

// Destination names the relay, without credentials.
func (m *SMTPMailer) Destination() string { return "smtp " + m.addr }

// Send delivers msg.
func (m *SMTPMailer) Send(_ context.Context, msg Message) error {
	from, _ := mail.ParseAddress(m.from)
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		m.from, msg.To, msg.Subject, time.Now().UTC().Format(time.RFC1123Z), strings.ReplaceAll(msg.Body, "\n", "\r\n"))
	return smtp.SendMail(m.addr, m.auth, from.Address, []string{msg.To}, []byte(b.String()))
}

// LogMailer writes mail to the log instead of sending it. In development it
// logs the body (the README's walkthrough reads the verification link from
// there); otherwise only the recipient and subject, since bodies hold tokens.
type LogMailer struct {
	Log         *slog.Logger
	IncludeBody bool
}

// Destination says mail goes to the log.
func (m *LogMailer) Destination() string {
	if m.IncludeBody {
		return "log (development: message bodies are logged; set SMTP_URL to send)"
	}
	return "nowhere (SMTP_URL is unset: mail is dropped, only recipients are logged)"
}

// Send logs msg.
func (m *LogMailer) Send(_ context.Context, msg Message) error {
	if m.IncludeBody {
		m.Log.Info("mail", "to", msg.To, "subject", msg.Subject, "body", msg.Body)
	} else {
		m.Log.Warn("mail dropped: SMTP_URL is unset", "to", msg.To, "subject", msg.Subject)
	}
	return nil
}

// MemoryMailer keeps messages in memory, for tests.
type MemoryMailer struct {
	mu   sync.Mutex
	sent []Message
}

// Destination says mail stays in memory.
func (m *MemoryMailer) Destination() string { return "memory" }

// Send records msg.
func (m *MemoryMailer) Send(_ context.Context, msg Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// Sent returns a copy of every message sent so far.
func (m *MemoryMailer) Sent() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Message(nil), m.sent...)
}

// Inbox passes mail on and keeps the last few messages for GET /dev/mail
// (development only), so a script can follow a verification link without
// reading the log or a mail catcher.
type Inbox struct {
	Mailer
	mu   sync.Mutex
	keep int
	last []Message
}

// NewInbox wraps next, keeping the last keep messages.
func NewInbox(next Mailer, keep int) *Inbox { return &Inbox{Mailer: next, keep: keep} }

// Send records msg, then sends it on.
func (m *Inbox) Send(ctx context.Context, msg Message) error {
	m.mu.Lock()
	m.last = append(m.last, msg)
	if len(m.last) > m.keep {
		m.last = append(m.last[:0:0], m.last[len(m.last)-m.keep:]...)
	}
	m.mu.Unlock()
	return m.Mailer.Send(ctx, msg)
}

// To returns the kept messages sent to address, newest first.
func (m *Inbox) To(address string) []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Message
	for i := len(m.last) - 1; i >= 0; i-- {
		if strings.EqualFold(m.last[i].To, address) {
			out = append(out, m.last[i])
		}
	}
	return out
}
