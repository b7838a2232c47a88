// Package mail holds the transports outgoing mail can take: an SMTP relay,
// the log (development) and memory (tests). What is sent, and when, is
// the services' business (services.Outbox); how it leaves is this one's.
package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
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

// SMTP sends through an SMTP relay given as smtp://user:pass@host:port.
// net/smtp upgrades to STARTTLS whenever the server offers it.
type SMTP struct {
	addr string
	host string
	auth smtp.Auth
	from string
}

// NewSMTP parses rawURL (already checked by settings) and the From address.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	if _, err := netmail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("MAIL_FROM: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = "587"
	}
	m := &SMTP{addr: net.JoinHostPort(u.Hostname(), port), host: u.Hostname(), from: from}
	if u.User != nil {
		pass, _ := u.User.Password()
		m.auth = smtp.PlainAuth("", u.User.Username(), pass, u.Hostname())
	}
	return m, nil
}

// Destination names the relay, without credentials.
func (m *SMTP) Destination() string { return "smtp " + m.addr }

// Send delivers msg within ctx's deadline: the dial, TLS and every SMTP
// exchange share it, so a relay that accepts the connection and then says
// nothing cannot hold the outbox worker.
func (m *SMTP) Send(ctx context.Context, msg Message) (err error) {
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (MAIL_SEND_TIMEOUT): %w", ctx.Err(), err)
		}
	}()
	from, _ := netmail.ParseAddress(m.from)
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		m.from, msg.To, msg.Subject, time.Now().UTC().Format(time.RFC1123Z), strings.ReplaceAll(msg.Body, "\n", "\r\n"))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", m.addr, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return err
		}
	}
	// Closing the connection when ctx ends unblocks any exchange at once.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if m.auth != nil {
		if err := c.Auth(m.auth); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(msg.To); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(b.String())); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Log writes mail to the log instead of sending it. In development it
// logs the body (the README's walkthrough reads the verification link from
// there); otherwise only the recipient and subject, since bodies hold tokens.
type Log struct {
	Log         *slog.Logger
	IncludeBody bool
}

// Destination says mail goes to the log.
func (m *Log) Destination() string {
	if m.IncludeBody {
		return "log (development: message bodies are logged; set SMTP_URL to send)"
	}
	return "nowhere (SMTP_URL is unset: mail is dropped, only recipients are logged)"
}

// Send logs msg.
func (m *Log) Send(_ context.Context, msg Message) error {
	if m.IncludeBody {
		m.Log.Info("mail", "to", msg.To, "subject", msg.Subject, "body", msg.Body)
	} else {
		m.Log.Warn("mail dropped: SMTP_URL is unset", "to", msg.To, "subject", msg.Subject)
	}
	return nil
}

// Memory keeps messages in memory, for tests.
type Memory struct {
	mu   sync.Mutex
	sent []Message
}

// Destination says mail stays in memory.
func (m *Memory) Destination() string { return "memory" }

// Send records msg.
func (m *Memory) Send(_ context.Context, msg Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// Sent returns a copy of every message sent so far.
func (m *Memory) Sent() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Message(nil), m.sent...)
}
