package services

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate/tollgate/mail"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// Passwords are the forgotten-password reset and the password change.
type Passwords struct {
	*accountDeps
	throttle *loginThrottle
	issuer   *sessionIssuer
}

// Forgot queues a reset link when email has an account and the
// account's own limit allows. It answers the same in every case, at the
// same cost (one transaction with one outbox row, withheld when there is
// nothing to send), and returns once that has committed.
func (a *Passwords) Forgot(ctx context.Context, email string) error {
	ctx, cancel := durable(ctx) // see Register
	defer cancel()
	u, err := a.users.byEmail(ctx, email)
	if err != nil {
		return err
	}
	withhold := ""
	if u == nil {
		withhold = "reset link: no account"
	}
	if a.throttle.store != nil {
		r, err := a.throttle.store.Take(ctx, accountKey(email)+":forgot", a.throttle.forgot)
		if err == nil && !r.Allowed {
			a.log.Warn("security event", "event", "password.reset_limited", "account", accountKey(email))
			withhold = "reset link: account limit"
		}
	}
	if withhold == "" && !a.throttle.mailAllowed(ctx, email) {
		withhold = "reset link: address limit"
	}
	raw, err := newOpaqueToken(resetTokenBytes)
	if err != nil {
		return apperror.Wrap(err, "generate reset token")
	}
	now := a.clock.Now()
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Audited in every branch alike (one write more each): which branch
		// is for the audit log to say, not the answer.
		event := Event{Action: "password.reset_requested", Reason: "sent", TargetType: "account", TargetID: accountKey(email)}
		if u != nil {
			event.TargetType, event.TargetID = "user", u.ID.String()
		}
		if withhold != "" {
			event.Reason = withhold
		}
		if err := a.audit.Record(ctx, tx, event); err != nil {
			return err
		}
		if withhold != "" {
			return a.outbox.Withhold(tx, withhold)
		}
		if err := tx.Where("user_id = ? AND used_at IS NULL", u.ID).Delete(&models.PasswordResetToken{}).Error; err != nil {
			return apperror.Wrap(err, "void older reset tokens")
		}
		tok := models.PasswordResetToken{ID: uuid.New(), UserID: u.ID, TokenHash: hashToken(raw), ExpiresAt: now.Add(a.cfg.ResetTTL), CreatedAt: now}
		if err := tx.Create(&tok).Error; err != nil {
			return apperror.Wrap(err, "store reset token")
		}
		return a.outbox.Enqueue(tx, mail.Message{To: u.Email, Subject: "Reset your password", Body: fmt.Sprintf(
			"Someone, perhaps you, asked to reset the password of this account.\n\n"+
				"Within %s, choose a new password here:\n\n%s\n\n"+
				"An app can do it with this token (POST %s/auth/password/reset, {\"token\", \"password\"}):\n\n%s\n\n"+
				"If it was not you, ignore this message: your password has not changed.\n",
			a.cfg.ResetTTL, a.cfg.link(a.cfg.ResetURL, "/auth/password/reset", raw), a.cfg.BaseURL, raw)})
	})
	if err == nil && withhold == "" {
		a.outbox.Notify()
	}
	return err
}

// CheckReset says whether raw is a reset token that still works, and
// until when, without using it (the reset page asks before showing its
// form).
func (a *Passwords) CheckReset(ctx context.Context, raw string) (time.Time, error) {
	tok, err := a.resetToken(ctx, raw)
	if err != nil {
		return time.Time{}, err
	}
	return tok.ExpiresAt, nil
}

func (a *Passwords) resetToken(ctx context.Context, raw string) (*models.PasswordResetToken, error) {
	var tok models.PasswordResetToken
	err := a.db.WithContext(ctx).Where("token_hash = ?", hashToken(raw)).Take(&tok).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errResetInvalid
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load reset token")
	}
	switch {
	case tok.UsedAt != nil:
		return nil, errResetUsed
	case !a.clock.Now().Before(tok.ExpiresAt):
		return nil, errResetExpired
	}
	return &tok, nil
}

// Reset uses up a reset token: the account gets the new password,
// every session of it ends, its address counts as verified (the link
// proved it), and its owner is told by mail.
//
// The API keys and OAuth clients made since the password was last set end
// too (revokeAll: every one of them): a reset is how an account is taken
// back, and whoever knew the old password may have made them. The notice
// lists what ended and what is still live, with how to revoke it.
func (a *Passwords) Reset(ctx context.Context, raw, password string, revokeAll bool) error {
	if msg := CheckPassword(password); msg != "" {
		return apperror.Validation(map[string]string{"password": msg})
	}
	tok, err := a.resetToken(ctx, raw)
	if err != nil {
		return err
	}
	now := a.clock.Now()
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	var u models.User
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.PasswordResetToken{}).Where("id = ? AND used_at IS NULL", tok.ID).Update("used_at", now)
		if res.Error != nil {
			return apperror.Wrap(res.Error, "use reset token")
		}
		if res.RowsAffected == 0 {
			return errResetUsed
		}
		if err := tx.Where("id = ?", tok.UserID).Take(&u).Error; err != nil {
			return apperror.Wrap(err, "load user")
		}
		since := u.CreatedAt
		if u.PasswordChangedAt != nil {
			since = *u.PasswordChangedAt
		}
		if revokeAll {
			since = time.Time{}
		}
		if err := tx.Model(&u).Updates(map[string]any{"password_hash": string(hash), "email_verified": true, "updated_at": now,
			"password_changed_at": now}).Error; err != nil {
			return apperror.Wrap(err, "set password")
		}
		if _, err := a.issuer.endSessions(tx, u.ID, ""); err != nil {
			return err
		}
		creds, err := a.endCredentials(ctx, tx, u.ID, &since)
		if err != nil {
			return err
		}
		if err := a.audit.Record(ctx, tx, Event{Action: "password.reset", ActorType: "user", ActorID: u.ID.String(),
			TargetType: "user", TargetID: u.ID.String()}); err != nil {
			return err
		}
		return a.outbox.Enqueue(tx, passwordChangedNotice(u.Email, "every session was signed out", creds, a.cfg.BaseURL))
	})
	if err != nil {
		return err
	}
	a.cfg.Ended.EndUser(ctx, u.ID.String())
	a.outbox.Notify()
	a.log.Info("security event", "event", "password.reset", "actor_type", "user", "actor_id", u.ID)
	return nil
}

// Change sets a new password for a signed-in user who knows the
// current one, and ends every other session (keepSession stays).
func (a *Passwords) Change(ctx context.Context, userID uuid.UUID, current, password, keepSession string) error {
	u, err := a.users.Current(ctx, userID)
	if err != nil {
		return err
	}
	// Wrong current passwords count like failed logins: a stolen access
	// token cannot be used to guess the password.
	if err := a.throttle.checkPassword(ctx, u, current); err != nil {
		return err
	}
	if msg := CheckPassword(password); msg != "" {
		return apperror.Validation(map[string]string{"new_password": msg})
	}
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	var ended []string
	var creds credentials
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := a.clock.Now()
		if err := tx.Model(u).Updates(map[string]any{"password_hash": string(hash), "updated_at": now, "password_changed_at": now}).Error; err != nil {
			return apperror.Wrap(err, "set password")
		}
		var err error
		if ended, err = a.issuer.endSessions(tx, u.ID, keepSession); err != nil {
			return err
		}
		// Whoever changes it knows the current password: nothing more
		// ends, but the notice lists every live credential.
		if creds, err = a.endCredentials(ctx, tx, u.ID, nil); err != nil {
			return err
		}
		if err := a.audit.Record(ctx, tx, Event{Action: "password.changed", TargetType: "user", TargetID: u.ID.String()}); err != nil {
			return err
		}
		return a.outbox.Enqueue(tx, passwordChangedNotice(u.Email, "every other session was signed out", creds, a.cfg.BaseURL))
	})
	if err != nil {
		return err
	}
	a.cfg.Ended.End(ctx, ended...)
	a.outbox.Notify()
	a.log.Info("security event", "event", "password.changed", "actor_type", "user", "actor_id", u.ID)
	return nil
}

// credentials are a user's API keys and OAuth clients, as a password
// notice lists them.
type credentials struct {
	ended, live []string // "API key NAME (ID)"
}

// endCredentials revokes, in tx, userID's API keys and disables its OAuth
// clients created at or after since (nil: none), and returns what ended and
// what is still live.
func (a *Passwords) endCredentials(ctx context.Context, tx *gorm.DB, userID uuid.UUID, since *time.Time) (credentials, error) {
	var out credentials
	// A person's keys and clients live in every organization they joined.
	if err := enterAllOrgs(tx); err != nil {
		return out, err
	}
	now := a.clock.Now()
	var keys []models.APIKey
	if err := tx.Where("user_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", userID, now).
		Order("created_at").Find(&keys).Error; err != nil {
		return out, apperror.Wrap(err, "list api keys")
	}
	var clients []models.OAuthClient
	if err := tx.Where("owner_id = ? AND disabled_at IS NULL", userID).Order("created_at").Find(&clients).Error; err != nil {
		return out, apperror.Wrap(err, "list oauth clients")
	}
	var endKeys, endClients []uuid.UUID
	// file puts one credential on the list of those that end, or that live
	// on (with how to revoke it).
	file := func(ends *[]uuid.UUID, id uuid.UUID, name string, made time.Time, revoke string) {
		name = fmt.Sprintf("%s (made %s)", name, made.UTC().Format(time.RFC3339))
		if since != nil && !made.Before(*since) {
			*ends = append(*ends, id)
			out.ended = append(out.ended, name)
		} else {
			out.live = append(out.live, name+": "+revoke)
		}
	}
	for _, k := range keys {
		file(&endKeys, k.ID, fmt.Sprintf("API key %q (%s)", k.Name, k.ID), k.CreatedAt, "DELETE /api-keys/"+k.ID.String())
	}
	for _, c := range clients {
		file(&endClients, c.ID, fmt.Sprintf("OAuth client %q (%s)", c.Name, c.ClientID), c.CreatedAt, "DELETE /admin/oauth/clients/"+c.ID.String())
	}
	if len(endKeys) > 0 {
		if err := tx.Model(&models.APIKey{}).Where("id IN ?", endKeys).Update("revoked_at", now).Error; err != nil {
			return out, apperror.Wrap(err, "revoke api keys")
		}
	}
	if len(endClients) > 0 {
		if err := tx.Model(&models.OAuthClient{}).Where("id IN ?", endClients).Update("disabled_at", now).Error; err != nil {
			return out, apperror.Wrap(err, "disable oauth clients")
		}
	}
	if len(out.ended) > 0 {
		return out, a.audit.Record(ctx, tx, Event{Action: "credentials.revoked",
			Reason: fmt.Sprintf("password reset: %d api keys, %d oauth clients", len(endKeys), len(endClients)), TargetType: "user", TargetID: userID.String()})
	}
	return out, nil
}

func passwordChangedNotice(to, sessions string, creds credentials, baseURL string) mail.Message {
	var b strings.Builder
	b.WriteString("The password of your account was just changed, and " + sessions + ".\n\n")
	if len(creds.ended) > 0 {
		b.WriteString("These were made since the password was last set, so they were revoked with it:\n")
		for _, c := range creds.ended {
			b.WriteString("- " + c + "\n")
		}
		b.WriteString("\n")
	}
	if len(creds.live) > 0 {
		b.WriteString("These still work. If you do not know one of them, revoke it (" + baseURL + "):\n")
		for _, c := range creds.live {
			b.WriteString("- " + c + "\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("If it was not you, reset your password at once (POST /auth/password/forgot with \"revoke_api_keys\": true in the reset) and tell us.\n")
	return mail.Message{To: to, Subject: "Your password was changed", Body: b.String()}
}
