package services

import (
	"context"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/models"
)

// deadFamilyRetention keeps the tokens of a fully revoked family (logout,
// reuse) a day after their revocation, for whoever investigates.
const deadFamilyRetention = 24 * time.Hour

// Purge deletes what no request will ever need again.
type Purge struct {
	db              *gorm.DB
	clock           clock.Clock
	log             *slog.Logger
	metrics         *metrics.Metrics
	verificationTTL time.Duration
	audit           *Audit
	auditRetention  time.Duration
}

// NewPurge builds the purge service.
func NewPurge(db *gorm.DB, clk clock.Clock, log *slog.Logger, m *metrics.Metrics, verificationTTL time.Duration) *Purge {
	return &Purge{db: db, clock: clk, log: log, metrics: m, verificationTTL: verificationTTL}
}

// WithAudit also purges audit events older than retention (0: never),
// keeping the rest verifiable.
func (p *Purge) WithAudit(a *Audit, retention time.Duration) *Purge {
	p.audit, p.auditRetention = a, retention
	return p
}

// Purged counts the rows one run deleted, by table.
type Purged struct {
	RefreshTokens      int64
	VerificationTokens int64
	UnverifiedUsers    int64
	Mail               int64
	AuditEvents        int64
	ResetTokens        int64
	MFAChallenges      int64
	APIKeys            int64
	SignIns            int64 // provider sign-ins and their one-time codes
	WebhookMessages    int64 // delivered or dead, 30 days on
}

// Retentions: what is kept, and how long, after it can no longer be used.
const (
	// mailRetention: delivered, abandoned and withheld mail, for support
	// questions ("did the link go out?").
	mailRetention = 30 * 24 * time.Hour
	// spentRetention: used or expired reset tokens and MFA challenges, so
	// a second use still answers "used" (not "invalid") for a day.
	spentRetention = 24 * time.Hour
	// revokedKeyRetention: API keys revoked or expired this long ago; their
	// history stays in the audit log.
	revokedKeyRetention = 30 * 24 * time.Hour
	// successorRetention: a rotated refresh token's sealed successor.
	successorRetention = time.Hour
)

// Run deletes, in this order:
//   - refresh tokens past their expiry, revoked or not (a rotated token is
//     kept until then, so presenting it again is still caught as reuse);
//   - tokens of families with no live token left, a day after revocation;
//   - verification tokens used or past their expiry;
//   - unverified accounts older than a verification link's lifetime that
//     hold no live link (their email can be registered again);
//   - mail delivered, abandoned or withheld more than 30 days ago;
//   - password reset tokens and MFA challenges used or expired more than a
//     day ago;
//   - API keys revoked or expired more than 30 days ago;
//   - provider sign-ins and one-time codes expired more than a day ago;
//   - webhook messages delivered or dead more than 30 days ago;
//   - with WithAudit, audit events past their retention;
//
// and clears the sealed successors of tokens rotated over an hour ago.
//
// Every statement is idempotent, so instances may run it at the same time.
func (p *Purge) Run(ctx context.Context) (Purged, error) {
	db := p.db.WithContext(ctx)
	now := p.clock.Now()
	spent, oldKey := now.Add(-spentRetention), now.Add(-revokedKeyRetention)
	var out Purged
	for _, step := range []struct {
		table string // the purged_rows_total label
		into  *int64
		model any
		where string
		args  []any
	}{
		{"refresh_tokens", &out.RefreshTokens, &models.RefreshToken{}, "expires_at <= ?", []any{now}},
		{"refresh_tokens", &out.RefreshTokens, &models.RefreshToken{},
			"revoked_at <= ? AND NOT EXISTS (SELECT 1 FROM refresh_tokens live WHERE live.family_id = refresh_tokens.family_id AND live.revoked_at IS NULL)",
			[]any{now.Add(-deadFamilyRetention)}},
		{"email_verification_tokens", &out.VerificationTokens, &models.EmailVerificationToken{}, "used_at IS NOT NULL OR expires_at <= ?", []any{now}},
		{"users", &out.UnverifiedUsers, &models.User{},
			"email_verified = ? AND created_at <= ? AND NOT EXISTS (SELECT 1 FROM email_verification_tokens t WHERE t.user_id = users.id AND t.used_at IS NULL AND t.expires_at > ?)",
			[]any{false, now.Add(-p.verificationTTL), now}},
		{"mail_outbox", &out.Mail, &models.OutboxMail{}, "status <> ? AND created_at <= ?", []any{MailPending, now.Add(-mailRetention)}},
		{"password_reset_tokens", &out.ResetTokens, &models.PasswordResetToken{}, "(used_at IS NOT NULL AND used_at <= ?) OR expires_at <= ?", []any{spent, spent}},
		{"mfa_challenges", &out.MFAChallenges, &models.MFAChallenge{}, "(used_at IS NOT NULL AND used_at <= ?) OR expires_at <= ?", []any{spent, spent}},
		{"api_keys", &out.APIKeys, &models.APIKey{}, "revoked_at <= ? OR expires_at <= ?", []any{oldKey, oldKey}},
		{"oauth_flows", &out.SignIns, &models.OAuthFlow{}, "expires_at <= ?", []any{spent}},
		{"oauth_codes", &out.SignIns, &models.OAuthCode{}, "expires_at <= ?", []any{spent}},
		// A used assertion ID matters until the assertion itself expires.
		{"saml_assertions", &out.SignIns, &models.SAMLAssertion{}, "expires_at <= ?", []any{now}},
		// Webhook messages stay in the delivery log as long as mail does.
		{"webhook_messages", &out.WebhookMessages, &models.WebhookMessage{}, "status <> ? AND created_at <= ?", []any{WebhookPending, now.Add(-mailRetention)}},
	} {
		var n int64
		// Purging spans every organization (api_keys is one of theirs).
		err := acrossOrgs(ctx, db, func(tx *gorm.DB) error {
			res := tx.Where(step.where, step.args...).Delete(step.model)
			n = res.RowsAffected
			return res.Error
		})
		if err != nil {
			return out, apperror.Wrap(err, "purge "+step.table)
		}
		*step.into += n
		p.metrics.PurgedRows.WithLabelValues(step.table).Add(float64(n))
	}
	// A kept successor serves retries within REFRESH_REUSE_GRACE (at most
	// a minute); an hour on, nothing reads it.
	err := db.Model(&models.RefreshToken{}).Where("successor_secret IS NOT NULL AND revoked_at <= ?", now.Add(-successorRetention)).
		Updates(map[string]any{"successor_secret": nil, "successor_key_version": nil}).Error
	if err != nil {
		return out, apperror.Wrap(err, "purge refresh successors")
	}
	if p.audit != nil && p.auditRetention > 0 {
		n, err := p.audit.Purge(ctx, p.auditRetention)
		if err != nil {
			return out, err
		}
		out.AuditEvents = n
		p.metrics.PurgedRows.WithLabelValues("audit_events").Add(float64(n))
	}
	return out, nil
}

// Every runs Run every interval until ctx ends, logging what it deleted.
func (p *Purge) Every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		out, err := p.Run(ctx)
		if err != nil {
			p.log.Warn("purge failed; next try in one interval", "error", err)
			continue
		}
		if out != (Purged{}) {
			p.log.Info("purged", "refresh_tokens", out.RefreshTokens, "verification_tokens", out.VerificationTokens,
				"unverified_users", out.UnverifiedUsers, "mail", out.Mail, "audit_events", out.AuditEvents,
				"reset_tokens", out.ResetTokens, "mfa_challenges", out.MFAChallenges, "api_keys", out.APIKeys)
		}
	}
}
