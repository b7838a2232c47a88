package services

import (
	"context"
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/mail"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

// Registration makes accounts and verifies their addresses.
type Registration struct {
	*accountDeps
	throttle *loginThrottle
}

// Register answers the same whatever the address, so it reveals no
// account: a new address gets an unverified viewer on the free tier and a
// verification link; an unverified one gets the new password (squatting an
// address with the squatter's password no longer works: the owner's
// registration replaces it) and a new link that voids the older ones; a
// verified one gets a mail saying there already is an account. Every branch
// costs the same: the password is hashed first, then one transaction writes
// one outbox row. It returns once that transaction has committed, so the
// 202 that follows means the account and its mail exist. Role, tier and
// verification are never taken from input.
func (a *Registration) Register(ctx context.Context, email, password string) error {
	email = NormalizeEmail(email)
	details := map[string]string{}
	if msg := CheckEmail(email); msg != "" {
		details["email"] = msg
	}
	if msg := CheckPassword(password); msg != "" {
		details["password"] = msg
	}
	if len(details) > 0 {
		return apperror.Validation(details)
	}
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	// From here the write completes even if the client hangs up: a
	// registration half-made on a cancelled context is the lost write this
	// order exists to prevent.
	ctx, cancel := durable(ctx)
	defer cancel()
	mailOK := a.throttle.mailAllowed(ctx, email)
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var u models.User
		err := tx.Where("email = ?", email).Take(&u).Error
		now := a.clock.Now()
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			u = models.User{ID: uuid.New(), Email: email, PasswordHash: string(hash), Tier: caller.Free,
				CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&u).Error; err != nil {
				return apperror.Wrap(err, "insert user")
			}
			// ORG_SIGNUP: the default organization as viewer, one of its
			// own as owner, or none (invitations only).
			if err := a.orgs.joinOnSignup(ctx, tx, &u); err != nil {
				return err
			}
			if err := a.audit.Record(ctx, tx, registered(&u, "new")); err != nil {
				return err
			}
			if !mailOK {
				return a.outbox.Withhold(tx, "verification link: address limit")
			}
			return a.queueVerification(tx, &u)
		case err != nil:
			return apperror.Wrap(err, "load user by email")
		case !u.EmailVerified:
			if err := tx.Model(&u).Updates(map[string]any{"password_hash": string(hash), "updated_at": now}).Error; err != nil {
				return apperror.Wrap(err, "replace password")
			}
			if err := a.audit.Record(ctx, tx, registered(&u, "unverified_replaced")); err != nil {
				return err
			}
			if !mailOK {
				return a.outbox.Withhold(tx, "verification link: address limit")
			}
			return a.queueVerification(tx, &u)
		}
		// A verified account: its owner is told (unless the address's mail
		// cap is reached).
		if err := a.audit.Record(ctx, tx, registered(&u, "already_verified")); err != nil {
			return err
		}
		switch {
		case !mailOK:
			return a.outbox.Withhold(tx, "account notice: address limit")
		default:
			return a.outbox.Enqueue(tx, mail.Message{To: u.Email, Subject: "You already have an account",
				Body: "Someone, perhaps you, tried to register with this address, but it already has an account. Log in as usual.\n\n" +
					"Forgot your password? Ask for a reset link: POST " + a.cfg.BaseURL + "/auth/password/forgot with this address.\n\n" +
					"If it was not you, nothing has changed and you can ignore this message.\n"})
		}
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		// A concurrent registration of the same new address won: same
		// answer (that one wrote the account and its link).
		return nil
	}
	if err == nil {
		a.outbox.Notify()
	}
	return err
}

// registered is the audit event of a registration for u; outcome says
// which branch it took (the answer does not, the audit log does).
func registered(u *models.User, outcome string) Event {
	return Event{Action: "auth.register", Reason: outcome, TargetType: "user", TargetID: u.ID.String()}
}

// ResendVerification queues a new link when email belongs to an unverified
// account, voiding the older ones. It answers the same whatever the case,
// at the same cost: one transaction with one outbox row (withheld when
// there is nothing to send). It returns once that has committed.
func (a *Registration) ResendVerification(ctx context.Context, email string) error {
	ctx, cancel := durable(ctx) // see Register
	defer cancel()
	u, err := a.users.byEmail(ctx, email)
	if err != nil {
		return err
	}
	mailOK := a.throttle.mailAllowed(ctx, email)
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if u == nil || u.EmailVerified {
			return a.outbox.Withhold(tx, "verification link: no unverified account")
		}
		if !mailOK {
			return a.outbox.Withhold(tx, "verification link: address limit")
		}
		return a.queueVerification(tx, u)
	})
	if err == nil {
		a.outbox.Notify()
	}
	return err
}

// queueVerification voids u's unused links and queues a new one, in tx.
func (a *Registration) queueVerification(tx *gorm.DB, u *models.User) error {
	raw, err := newOpaqueToken(verificationTokenBytes)
	if err != nil {
		return apperror.Wrap(err, "generate verification token")
	}
	if err := tx.Where("user_id = ? AND used_at IS NULL", u.ID).Delete(&models.EmailVerificationToken{}).Error; err != nil {
		return apperror.Wrap(err, "void older verification tokens")
	}
	now := a.clock.Now()
	tok := models.EmailVerificationToken{
		ID: uuid.New(), UserID: u.ID, TokenHash: hashToken(raw), ExpiresAt: now.Add(a.cfg.VerificationTTL), CreatedAt: now,
	}
	if err := tx.Create(&tok).Error; err != nil {
		return apperror.Wrap(err, "store verification token")
	}
	link := a.cfg.link(a.cfg.VerifyURL, "/auth/verify", raw)
	return a.outbox.Enqueue(tx, mail.Message{
		To:      u.Email,
		Subject: "Verify your email address",
		Body: fmt.Sprintf("Welcome!\n\nConfirm your email address by opening this link within %s:\n\n%s\n\nIf you did not sign up, ignore this message.\n",
			a.cfg.VerificationTTL, link),
	})
}

// VerifyEmail uses up a verification token and marks its account verified.
func (a *Registration) VerifyEmail(ctx context.Context, raw string) error {
	var tok models.EmailVerificationToken
	err := a.db.WithContext(ctx).Where("token_hash = ?", hashToken(raw)).First(&tok).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errVerificationInvalid
	}
	if err != nil {
		return apperror.Wrap(err, "load verification token")
	}
	now := a.clock.Now()
	switch {
	case tok.UsedAt != nil:
		return errVerificationUsed
	case !now.Before(tok.ExpiresAt):
		return errVerificationExpired
	}
	return a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Conditional update: of two concurrent uses, one wins.
		res := tx.Model(&models.EmailVerificationToken{}).Where("id = ? AND used_at IS NULL", tok.ID).Update("used_at", now)
		if res.Error != nil {
			return apperror.Wrap(res.Error, "use verification token")
		}
		if res.RowsAffected == 0 {
			return errVerificationUsed
		}
		if err := tx.Model(&models.User{}).Where("id = ?", tok.UserID).
			Updates(map[string]any{"email_verified": true, "updated_at": now}).Error; err != nil {
			return apperror.Wrap(err, "mark email verified")
		}
		return a.audit.Record(ctx, tx, Event{Action: "auth.email_verified", ActorType: "user", ActorID: tok.UserID.String(),
			TargetType: "user", TargetID: tok.UserID.String()})
	})
}
