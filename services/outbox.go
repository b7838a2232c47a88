package services

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/mail"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/models"
)

// Outbox states.
const (
	MailPending   = "pending"
	MailSent      = "sent"
	MailAbandoned = "abandoned"
	// MailWithheld marks a row written where nothing is sent (a reset link
	// for an unknown address): every branch of an anonymous request then
	// writes the same, so its timing tells nothing. Never delivered, kept
	// as long as sent mail, with no address.
	MailWithheld = "withheld"
)

// OutboxConfig holds the delivery rules.
type OutboxConfig struct {
	MaxAttempts int           // then abandoned
	Backoff     time.Duration // first retry after this, doubling each time
	MaxBackoff  time.Duration
	SendTimeout time.Duration // one delivery attempt, dial to QUIT
	Batch       int           // messages claimed per pass
	// Keys encrypt bodies at rest (the MFA key, for this purpose).
	Keys MFAKeys
	// KeepBodies keeps the bodies of sent mail (development: GET /dev/mail
	// shows what was sent); otherwise a body is dropped once the mail is
	// sent or abandoned.
	KeepBodies bool
}

// Outbox queues mail in the database, in the caller's transaction, and
// delivers it in the background: requests never wait for a mail relay, and
// a message is retried with backoff until sent or abandoned. Several
// instances may deliver at once: a message is claimed with a conditional
// update, so each attempt is made by one of them.
type Outbox struct {
	db      *gorm.DB
	clock   clock.Clock
	mailer  mail.Mailer
	log     *slog.Logger
	metrics *metrics.Metrics
	cfg     OutboxConfig
	wake    chan struct{}
}

// NewOutbox builds the outbox delivering through mailer.
func NewOutbox(db *gorm.DB, clk clock.Clock, mailer mail.Mailer, log *slog.Logger, m *metrics.Metrics, cfg OutboxConfig) *Outbox {
	return &Outbox{db: db, clock: clk, mailer: mailer, log: log, metrics: m, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Enqueue stores m for delivery, inside tx (the transaction of the change
// the mail is about: both happen, or neither).
func (o *Outbox) Enqueue(tx *gorm.DB, m mail.Message) error {
	now := o.clock.Now()
	row := models.OutboxMail{ID: uuid.New(), ToAddress: m.To, Subject: m.Subject, Status: MailPending,
		NextAttemptAt: now, CreatedAt: now, KeyVersion: o.cfg.Keys.Current}
	sealed, err := o.seal(row.ID, m.Body)
	if err != nil {
		return apperror.Wrap(err, "encrypt mail")
	}
	row.Body = sealed
	if err := tx.Create(&row).Error; err != nil {
		return apperror.Wrap(err, "queue mail")
	}
	return nil
}

// outboxPurpose separates the outbox's key from the TOTP secrets'.
const outboxPurpose = "outbox"

// seal encrypts body for the row id (its associated data: a body moved to
// another row does not open).
func (o *Outbox) seal(id uuid.UUID, body string) (string, error) {
	return o.cfg.Keys.sealFor(outboxPurpose, body, id[:])
}

// body is m's body in clear.
func (o *Outbox) body(m *models.OutboxMail) (string, error) {
	if m.KeyVersion == 0 || m.Body == "" {
		return m.Body, nil // from before encryption, or dropped
	}
	return o.cfg.Keys.openFor(outboxPurpose, m.Body, m.KeyVersion, m.ID[:])
}

// Withhold writes, inside tx, a row that is never delivered: the same
// write as Enqueue where there is nothing to send (see MailWithheld).
func (o *Outbox) Withhold(tx *gorm.DB, reason string) error {
	now := o.clock.Now()
	row := models.OutboxMail{ID: uuid.New(), Subject: reason, Status: MailWithheld, NextAttemptAt: now, CreatedAt: now}
	if err := tx.Create(&row).Error; err != nil {
		return apperror.Wrap(err, "queue mail")
	}
	return nil
}

// Notify wakes the delivery loop (after the enqueuing transaction commits).
func (o *Outbox) Notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// DeliverDue makes one delivery attempt for every message that is due, up
// to a batch, and reports how many it attempted.
func (o *Outbox) DeliverDue(ctx context.Context) (int, error) {
	now := o.clock.Now()
	var due []models.OutboxMail
	if err := o.db.WithContext(ctx).Where("status = ? AND next_attempt_at <= ?", MailPending, now).
		Order("next_attempt_at").Limit(o.cfg.Batch).Find(&due).Error; err != nil {
		return 0, apperror.Wrap(err, "find due mail")
	}
	attempted := 0
	for i := range due {
		m := &due[i]
		// Claim: push next_attempt_at past this attempt's deadline. If this
		// instance dies mid-send, another retries after the lease.
		lease := now.Add(2 * o.cfg.SendTimeout)
		res := o.db.WithContext(ctx).Model(&models.OutboxMail{}).
			Where("id = ? AND status = ? AND next_attempt_at = ?", m.ID, MailPending, m.NextAttemptAt).
			Updates(map[string]any{"next_attempt_at": lease, "attempts": m.Attempts + 1})
		if res.Error != nil {
			return attempted, apperror.Wrap(res.Error, "claim mail")
		}
		if res.RowsAffected == 0 {
			continue // another instance has it
		}
		attempted++
		m.Attempts++
		o.attempt(ctx, m)
	}
	return attempted, nil
}

func (o *Outbox) attempt(ctx context.Context, m *models.OutboxMail) {
	body, err := o.body(m)
	if err == nil {
		sendCtx, cancel := context.WithTimeout(ctx, o.cfg.SendTimeout)
		err = o.mailer.Send(sendCtx, mail.Message{To: m.ToAddress, Subject: m.Subject, Body: body})
		cancel()
	}
	now := o.clock.Now()
	update := map[string]any{}
	switch {
	case err == nil:
		update["status"], update["sent_at"], update["last_error"] = MailSent, now, ""
		if !o.cfg.KeepBodies {
			update["body"] = "" // what operators need stays: address, subject, status, attempts
		}
		o.metrics.MailDelivered.WithLabelValues(MailSent).Inc()
	case m.Attempts >= o.cfg.MaxAttempts:
		update["status"], update["last_error"] = MailAbandoned, truncate(err.Error(), 500)
		if !o.cfg.KeepBodies {
			update["body"] = ""
		}
		o.metrics.MailDelivered.WithLabelValues(MailAbandoned).Inc()
		o.log.Error("mail abandoned after its last attempt", "mail_id", m.ID, "attempts", m.Attempts, "error", err)
	default:
		backoff := o.cfg.Backoff << (m.Attempts - 1)
		if backoff > o.cfg.MaxBackoff || backoff <= 0 {
			backoff = o.cfg.MaxBackoff
		}
		update["next_attempt_at"], update["last_error"] = now.Add(backoff), truncate(err.Error(), 500)
		o.metrics.MailDelivered.WithLabelValues("retry").Inc()
		o.log.Warn("mail not delivered; will retry", "mail_id", m.ID, "attempt", m.Attempts, "retry_in", backoff, "error", err)
	}
	// The outcome is written even if ctx ended (shutdown): otherwise a sent
	// message would be sent again after the lease.
	if err := o.db.WithContext(context.WithoutCancel(ctx)).Model(&models.OutboxMail{}).Where("id = ?", m.ID).Updates(update).Error; err != nil {
		o.log.Error("recording a mail delivery failed", "mail_id", m.ID, "error", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return CleanText(s, n)
}

// Run delivers until ctx ends: whenever Notify is called, and every poll
// for retries that come due.
func (o *Outbox) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for {
			n, err := o.DeliverDue(ctx)
			if err != nil && ctx.Err() == nil {
				o.log.Warn("mail delivery pass failed", "error", err)
			}
			if n < o.cfg.Batch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-t.C:
		}
	}
}

// To returns the newest messages queued for address (the development-only
// GET /dev/mail).
func (o *Outbox) To(ctx context.Context, address string, limit int) ([]models.OutboxMail, error) {
	var out []models.OutboxMail
	if err := o.db.WithContext(ctx).Where("to_address = ?", address).Order("created_at DESC, id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, apperror.Wrap(err, "read mail")
	}
	for i := range out {
		body, err := o.body(&out[i])
		if err != nil {
			return nil, apperror.Wrap(err, "decrypt mail")
		}
		out[i].Body = body
	}
	return out, nil
}
