package services

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

// WebhookEvents are the event types an endpoint can subscribe to, each
// from the audit action that records it.
var WebhookEvents = map[string][]string{
	"user.created":           {"auth.register:new", "auth.registered"},
	"user.verified":          {"auth.email_verified"},
	"user.deleted":           {"user.deleted"},
	"session.created":        {"auth.login"},
	"session.revoked":        {"session.revoked", "session.revoked_all", "auth.logout"},
	"password.changed":       {"password.changed", "password.reset"},
	"mfa.enabled":            {"mfa.enabled"},
	"mfa.disabled":           {"mfa.disabled", "mfa.reset"},
	"api_key.created":        {"api_key.created"},
	"api_key.revoked":        {"api_key.revoked"},
	"refresh.reuse_detected": {"auth.refresh_reuse"},
	"org.member_added":       {"org.member_added"},
}

// webhookEventOf is the event type an audit event is delivered as ("":
// none). An action:reason entry matches that reason only.
func webhookEventOf(e *models.AuditEvent) string {
	refused := e.Outcome != Success
	for typ, actions := range WebhookEvents {
		for _, a := range actions {
			action, reason, withReason := strings.Cut(a, ":")
			if action == e.Action && (!withReason || reason == e.Reason) && (!refused || typ == "refresh.reuse_detected") {
				return typ
			}
		}
	}
	return ""
}

// Message statuses.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookDead      = "dead"
)

// WebhooksConfig configures delivery.
type WebhooksConfig struct {
	MFAKeys MFAKeys
	// AllowPrivate lets endpoints be on loopback and private addresses
	// (development; WEBHOOK_ALLOW_PRIVATE_NETWORKS).
	AllowPrivate bool
	RequireHTTPS bool // production: endpoints must be https
	Timeout      time.Duration
	MaxAttempts  int
}

// Webhooks keep the endpoints, write an event's messages in the
// transaction of its change, and deliver them.
type Webhooks struct {
	db     *gorm.DB
	clock  clock.Clock
	audit  *Audit
	log    *slog.Logger
	cfg    WebhooksConfig
	client *http.Client
	wake   chan struct{}
}

// NewWebhooks builds the webhooks and hooks them to audit's events.
func NewWebhooks(db *gorm.DB, clk clock.Clock, audit *Audit, log *slog.Logger, cfg WebhooksConfig) *Webhooks {
	c := guardedClient(cfg.AllowPrivate, cfg.Timeout)
	// A redirect is a failed delivery: following it would send the signed
	// payload somewhere the operator did not register.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	w := &Webhooks{db: db, clock: clk, audit: audit, log: log, cfg: cfg, client: c, wake: make(chan struct{}, 1)}
	audit.onRecord = w.enqueue
	return w
}

const secretPurposeWebhook = "webhook-secret"

var (
	errWebhookUnknown  = apperror.Define(apperror.NotFound, "webhook_not_found", "No such webhook endpoint")
	errMessageUnknown  = apperror.Define(apperror.NotFound, "webhook_message_not_found", "No such webhook message")
	errWebhookURL      = "must be an absolute http(s) URL (https in production), without credentials or fragment"
	errWebhookNoEvents = "must name at least one event type, or \"*\""
)

// NewWebhook is what an operator registers.
type NewWebhook struct {
	URL, Description string
	Events           []string
}

// WebhookChange is a PATCH: nil fields stay.
type WebhookChange struct {
	URL, Description *string
	Events           []string
	Disabled         *bool
}

func (w *Webhooks) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || (u.Scheme != "https" && (u.Scheme != "http" || w.cfg.RequireHTTPS)) {
		return apperror.Validation(map[string]string{"url": errWebhookURL})
	}
	return nil
}

func checkEvents(events []string) (string, error) {
	if len(events) == 0 {
		return "", apperror.Validation(map[string]string{"events": errWebhookNoEvents})
	}
	if len(events) == 1 && events[0] == "*" {
		return "*", nil
	}
	for _, e := range events {
		if _, ok := WebhookEvents[e]; !ok {
			return "", apperror.Validation(map[string]string{"events": fmt.Sprintf("%q is not an event type (GET /admin/webhooks/events lists them)", e)})
		}
	}
	sorted := slices.Clone(events)
	slices.Sort(sorted)
	return strings.Join(slices.Compact(sorted), ","), nil
}

// newSecret gives ep a new Standard Webhooks secret (whsec_ and 32 random
// bytes), sealed under the current MFA key, and answers it.
func (w *Webhooks) newSecret(ep *models.WebhookEndpoint) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", apperror.Wrap(err, "generate webhook secret")
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(b)
	sealed, err := w.cfg.MFAKeys.sealFor(secretPurposeWebhook, secret, ep.ID[:])
	if err != nil {
		return "", apperror.Wrap(err, "seal webhook secret")
	}
	ep.Secret, ep.KeyVersion = sealed, w.cfg.MFAKeys.Current
	return secret, nil
}

// Create registers an endpoint and answers it with its secret, shown once.
func (w *Webhooks) Create(ctx context.Context, who *caller.Caller, in NewWebhook) (*models.WebhookEndpoint, string, error) {
	if err := w.checkURL(in.URL); err != nil {
		return nil, "", err
	}
	events, err := checkEvents(in.Events)
	if err != nil {
		return nil, "", err
	}
	now := w.clock.Now()
	ep := models.WebhookEndpoint{ID: uuid.New(), URL: in.URL, Description: CleanText(in.Description, 200), Events: events,
		CreatedAt: now, UpdatedAt: now}
	secret, err := w.newSecret(&ep)
	if err != nil {
		return nil, "", err
	}
	if who != nil && who.Kind == caller.User {
		ep.CreatedBy = &who.ID
	}
	err = w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&ep).Error; err != nil {
			return apperror.Wrap(err, "store webhook endpoint")
		}
		return w.audit.Record(ctx, tx, Event{Action: "webhook.created", TargetType: "webhook", TargetID: ep.ID.String()})
	})
	if err != nil {
		return nil, "", err
	}
	return &ep, secret, nil
}

// List is every endpoint, oldest first.
func (w *Webhooks) List(ctx context.Context) ([]models.WebhookEndpoint, error) {
	var eps []models.WebhookEndpoint
	if err := w.db.WithContext(ctx).Order("created_at, id").Find(&eps).Error; err != nil {
		return nil, apperror.Wrap(err, "list webhook endpoints")
	}
	return eps, nil
}

// Get is one endpoint.
func (w *Webhooks) Get(ctx context.Context, id uuid.UUID) (*models.WebhookEndpoint, error) {
	var ep models.WebhookEndpoint
	err := w.db.WithContext(ctx).Where("id = ?", id).Take(&ep).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errWebhookUnknown
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load webhook endpoint")
	}
	return &ep, nil
}

// Update changes an endpoint: its URL, events, description, or whether it
// is disabled (a disabled endpoint gets no new messages).
func (w *Webhooks) Update(ctx context.Context, id uuid.UUID, in WebhookChange) (*models.WebhookEndpoint, error) {
	ep, err := w.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if in.URL != nil {
		if err := w.checkURL(*in.URL); err != nil {
			return nil, err
		}
		ep.URL = *in.URL
	}
	if in.Events != nil {
		if ep.Events, err = checkEvents(in.Events); err != nil {
			return nil, err
		}
	}
	if in.Description != nil {
		ep.Description = CleanText(*in.Description, 200)
	}
	now := w.clock.Now()
	if in.Disabled != nil {
		ep.DisabledAt = nil
		if *in.Disabled {
			ep.DisabledAt = &now
		}
	}
	ep.UpdatedAt = now
	err = w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Save(ep).Error; err != nil {
			return apperror.Wrap(err, "update webhook endpoint")
		}
		return w.audit.Record(ctx, tx, Event{Action: "webhook.updated", TargetType: "webhook", TargetID: ep.ID.String()})
	})
	return ep, err
}

// Rotate gives an endpoint a new secret; the old one keeps signing beside
// it for grace (nil: a day), so the receiver can switch without a gap.
func (w *Webhooks) Rotate(ctx context.Context, id uuid.UUID, grace *time.Duration) (*models.WebhookEndpoint, string, error) {
	g, err := rotationGrace(grace, 24*time.Hour)
	if err != nil {
		return nil, "", err
	}
	ep, err := w.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	now := w.clock.Now()
	old, oldVersion := ep.Secret, ep.KeyVersion
	secret, err := w.newSecret(ep)
	if err != nil {
		return nil, "", err
	}
	ep.UpdatedAt = now
	ep.PreviousSecret, ep.PreviousKeyVersion, ep.PreviousExpiresAt = nil, nil, nil
	if g > 0 {
		until := now.Add(g)
		ep.PreviousSecret, ep.PreviousKeyVersion, ep.PreviousExpiresAt = &old, &oldVersion, &until
	}
	err = w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Save(ep).Error; err != nil {
			return apperror.Wrap(err, "rotate webhook secret")
		}
		return w.audit.Record(ctx, tx, Event{Action: "webhook.secret_rotated", TargetType: "webhook", TargetID: ep.ID.String()})
	})
	if err != nil {
		return nil, "", err
	}
	return ep, secret, nil
}

// Delete removes an endpoint and its messages.
func (w *Webhooks) Delete(ctx context.Context, id uuid.UUID) error {
	return w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&models.WebhookEndpoint{})
		if res.Error != nil {
			return apperror.Wrap(res.Error, "delete webhook endpoint")
		}
		if res.RowsAffected == 0 {
			return errWebhookUnknown
		}
		if err := tx.Where("endpoint_id = ?", id).Delete(&models.WebhookMessage{}).Error; err != nil {
			return apperror.Wrap(err, "delete webhook messages")
		}
		return w.audit.Record(ctx, tx, Event{Action: "webhook.deleted", TargetType: "webhook", TargetID: id.String()})
	})
}

// Messages is an endpoint's delivery log, newest first (at most limit).
func (w *Webhooks) Messages(ctx context.Context, id uuid.UUID, limit int) ([]models.WebhookMessage, error) {
	if _, err := w.Get(ctx, id); err != nil {
		return nil, err
	}
	var out []models.WebhookMessage
	err := w.db.WithContext(ctx).Where("endpoint_id = ?", id).Order("created_at DESC, id DESC").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, apperror.Wrap(err, "list webhook messages")
	}
	return out, nil
}

// Retry sends a message again now (a dead one too), with a fresh count.
func (w *Webhooks) Retry(ctx context.Context, endpoint uuid.UUID, msg string) error {
	res := w.db.WithContext(ctx).Model(&models.WebhookMessage{}).Where("id = ? AND endpoint_id = ? AND status <> ?", msg, endpoint, WebhookDelivered).
		Updates(map[string]any{"status": WebhookPending, "attempts": 0, "next_attempt_at": w.clock.Now()})
	if res.Error != nil {
		return apperror.Wrap(res.Error, "retry webhook message")
	}
	if res.RowsAffected == 0 {
		return errMessageUnknown
	}
	w.Notify()
	return nil
}

// WebhookPayload is what every message's body holds (the Standard Webhooks
// shape: type, timestamp, data).
type WebhookPayload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      WebhookData `json:"data"`
}

// WebhookData names what happened, by ids (never a secret), as the audit
// log recorded it.
type WebhookData struct {
	TargetType string `json:"target_type"`
	TargetID   string `json:"target_id"`
	ActorType  string `json:"actor_type"`
	ActorID    string `json:"actor_id,omitempty"`
	OrgID      string `json:"org_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
	AuditSeq   int64  `json:"audit_seq"`
	IP         string `json:"ip,omitempty"`
}

// enqueue writes e's messages in tx, the transaction of the change it
// records: one per enabled endpoint subscribed to its type.
func (w *Webhooks) enqueue(tx *gorm.DB, e *models.AuditEvent) error {
	typ := webhookEventOf(e)
	if typ == "" {
		return nil
	}
	var eps []models.WebhookEndpoint
	if err := tx.Select("id", "events").Where("disabled_at IS NULL").Find(&eps).Error; err != nil {
		return apperror.Wrap(err, "load webhook endpoints")
	}
	var body []byte
	for _, ep := range eps {
		if ep.Events != "*" && !slices.Contains(strings.Split(ep.Events, ","), typ) {
			continue
		}
		if body == nil {
			var err error
			body, err = json.Marshal(WebhookPayload{Type: typ, Timestamp: e.OccurredAt, Data: WebhookData{TargetType: e.TargetType, TargetID: e.TargetID,
				ActorType: e.ActorType, ActorID: e.ActorID, OrgID: e.OrgID, Reason: e.Reason, AuditSeq: e.Seq, IP: e.IP}})
			if err != nil {
				return apperror.Wrap(err, "encode webhook payload")
			}
		}
		id, err := randomBase62(24)
		if err != nil {
			return apperror.Wrap(err, "webhook message id")
		}
		m := models.WebhookMessage{ID: "msg_" + id, EndpointID: ep.ID, EventType: typ, Payload: string(body), Status: WebhookPending,
			NextAttemptAt: e.OccurredAt, CreatedAt: e.OccurredAt}
		if err := tx.Create(&m).Error; err != nil {
			return apperror.Wrap(err, "queue webhook message")
		}
		// Woken now, the worker finds the message once this transaction
		// has committed, or at its next poll.
		defer w.Notify()
	}
	return nil
}

// Notify wakes the worker (a message is due now).
func (w *Webhooks) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// webhookBackoff is the wait before each retry; past the last, the
// message is dead (kept for the log and a manual retry).
var webhookBackoff = []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour}

// Run delivers due messages every interval (and when woken) until ctx ends.
func (w *Webhooks) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := w.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("webhook delivery round failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// DeliverDue sends every message that is due, once each, and answers how
// many it tried. Instances may run it at once: each message is claimed
// (its next attempt moved a lease ahead) before it is sent.
func (w *Webhooks) DeliverDue(ctx context.Context) (int, error) {
	db := w.db.WithContext(ctx)
	now := w.clock.Now()
	var due []models.WebhookMessage
	if err := db.Where("status = ? AND next_attempt_at <= ?", WebhookPending, now).Order("next_attempt_at").Limit(50).Find(&due).Error; err != nil {
		return 0, apperror.Wrap(err, "load due webhook messages")
	}
	tried := 0
	for i := range due {
		m := &due[i]
		lease := now.Add(w.cfg.Timeout + time.Minute)
		res := db.Model(&models.WebhookMessage{}).Where("id = ? AND status = ? AND next_attempt_at = ?", m.ID, WebhookPending, m.NextAttemptAt).
			Updates(map[string]any{"next_attempt_at": lease, "attempts": m.Attempts + 1})
		if res.Error != nil || res.RowsAffected == 0 {
			continue // another instance has it
		}
		m.Attempts++
		tried++
		status, err := w.send(ctx, m)
		upd := map[string]any{"last_status": status, "last_error": ""}
		switch {
		case err == nil:
			upd["status"], upd["delivered_at"] = WebhookDelivered, w.clock.Now()
		case m.Attempts > len(webhookBackoff) || m.Attempts >= w.cfg.MaxAttempts:
			upd["status"], upd["last_error"] = WebhookDead, CleanText(err.Error(), 500)
			w.log.Warn("webhook message dead after its last attempt", "message", m.ID, "endpoint", m.EndpointID, "attempts", m.Attempts, "error", err)
		default:
			upd["last_error"], upd["next_attempt_at"] = CleanText(err.Error(), 500), w.clock.Now().Add(webhookBackoff[m.Attempts-1])
		}
		if err := db.Model(&models.WebhookMessage{}).Where("id = ?", m.ID).Updates(upd).Error; err != nil {
			w.log.Warn("webhook message state not saved", "message", m.ID, "error", err)
		}
	}
	return tried, nil
}

// send POSTs m to its endpoint, signed; a 2xx answer delivers it.
func (w *Webhooks) send(ctx context.Context, m *models.WebhookMessage) (int, error) {
	ep, err := w.Get(ctx, m.EndpointID)
	if err != nil {
		return 0, err
	}
	now := w.clock.Now()
	sig, err := w.signature(ep, m, now)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader([]byte(m.Payload)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tollgate-webhooks")
	req.Header.Set(standardwebhooks.HeaderWebhookID, m.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	res, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, fmt.Errorf("the endpoint answered %d", res.StatusCode)
	}
	return res.StatusCode, nil
}

// signature is the webhook-signature header: v1 under the current secret
// and, during a rotation's overlap, under the previous one too.
func (w *Webhooks) signature(ep *models.WebhookEndpoint, m *models.WebhookMessage, at time.Time) (string, error) {
	secrets := []struct {
		sealed  string
		version int
	}{{ep.Secret, ep.KeyVersion}}
	if ep.PreviousSecret != nil && ep.PreviousKeyVersion != nil && ep.PreviousExpiresAt != nil && at.Before(*ep.PreviousExpiresAt) {
		secrets = append(secrets, struct {
			sealed  string
			version int
		}{*ep.PreviousSecret, *ep.PreviousKeyVersion})
	}
	var sigs []string
	for _, s := range secrets {
		secret, err := w.cfg.MFAKeys.openFor(secretPurposeWebhook, s.sealed, s.version, ep.ID[:])
		if err != nil {
			return "", fmt.Errorf("open webhook secret: %w", err)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return "", err
		}
		sig, err := wh.Sign(m.ID, at, []byte(m.Payload))
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}
