package services

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// Login checks a password (and a second factor when the account has one)
// and starts a session.
type Login struct {
	*accountDeps
	throttle *loginThrottle
	issuer   *sessionIssuer
	mfa      *MFA
}

// Login checks credentials and starts a new refresh-token family.
func (a *Login) Login(ctx context.Context, email, password string, client Client) (*Session, error) {
	u, err := a.users.byEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	account := throttleKey(email, u)
	target := Event{Action: "auth.login_failed", Outcome: Failure, TargetType: "account", TargetID: account}
	if u != nil {
		target.TargetType, target.TargetID = "user", u.ID.String()
	}
	refuse := func(reason string, err error) (*Session, error) {
		target.Reason = reason
		a.audit.RecordAlone(ctx, target)
		return nil, err
	}
	at, err := a.throttle.reserve(ctx, account, client)
	if err != nil && !errors.Is(err, errSpent) {
		return nil, err
	}
	if err != nil {
		// The same answer and the same work as a wrong password: a throttled
		// account is not told apart (a password reset still works).
		if _, err := a.hasher.Matches(ctx, a.throttle.dummyHash, password); err != nil {
			return nil, err
		}
		return refuse("throttled", ErrBadCredentials)
	}
	if u == nil {
		// Same work as a real check, so timing does not tell which emails exist.
		_, err := a.hasher.Matches(ctx, a.throttle.dummyHash, password)
		at.done(err != nil) // a guess, unless it was never checked
		if err != nil {
			return nil, err
		}
		return refuse("invalid_credentials", ErrBadCredentials)
	}
	ok, err := a.hasher.Matches(ctx, a.throttle.hashOf(u), password)
	if err != nil {
		at.done(true) // not checked: a fault is not a guess
		return nil, err
	}
	at.done(ok)
	if err := a.throttle.upgradeHash(ctx, u, password, ok); err != nil {
		return nil, err
	}
	if !ok {
		return refuse("invalid_credentials", ErrBadCredentials)
	}
	if !u.EmailVerified {
		return refuse("email_not_verified", errEmailNotVerified)
	}
	return a.begin(ctx, u, client, "", uuid.Nil)
}

// begin starts a session for u, whose first factor checked out (a
// password, or a provider's sign-in: reason names it), in org prefer when
// set (an SSO sign-in's): the mfa_token of a second step when u has a
// second factor, else a token pair. A member of an organization that
// enforces SSO gets only sso_required from anything but its SSO.
func (a *Login) begin(ctx context.Context, u *models.User, client Client, reason string, prefer uuid.UUID) (*Session, error) {
	if !strings.HasPrefix(reason, ssoProviderPrefix) {
		if err := enforcedSSO(a.db.WithContext(ctx), u); err != nil {
			a.audit.RecordAlone(ctx, Event{Action: "auth.login_failed", Outcome: Failure, Reason: "sso_required", TargetType: "user", TargetID: u.ID.String()})
			return nil, err
		}
	}
	if on, err := a.mfaEnabled(ctx, u); err != nil {
		return nil, err
	} else if on {
		token, err := a.challenge(ctx, u, client)
		if err != nil {
			return nil, err
		}
		return &Session{MFAToken: token, User: u}, nil
	}
	var s *Session
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if s, err = a.issuer.issue(tx, u, uuid.Nil, prefer, uuid.New(), uuid.New(), client); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "auth.login", Reason: reason, ActorType: "user", ActorID: u.ID.String(), TargetType: "user", TargetID: u.ID.String()})
	})
	return s, err
}

// VerifyMFA finishes a login: the mfa_token from the first step and a TOTP
// or recovery code give the token pair. A token allows mfaMaxAttempts
// attempts, each claimed atomically before its code is checked (of any
// number of concurrent guesses at most that many are checked), and each
// code counts against the account's attempt budget like a password.
func (a *Login) VerifyMFA(ctx context.Context, token, code string, client Client) (*Session, error) {
	var ch models.MFAChallenge
	err := a.db.WithContext(ctx).Where("token_hash = ?", hashToken(token)).Take(&ch).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errMFATokenDead
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load mfa challenge")
	}
	now := a.clock.Now()
	claim := a.db.WithContext(ctx).Model(&models.MFAChallenge{}).
		Where("id = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?", ch.ID, now, mfaMaxAttempts).
		Update("attempts", gorm.Expr("attempts + 1"))
	if claim.Error != nil {
		return nil, apperror.Wrap(claim.Error, "count mfa attempt")
	}
	if claim.RowsAffected == 0 {
		return nil, errMFATokenDead // used, expired, or out of attempts
	}
	u, err := a.users.Get(ctx, ch.UserID)
	if errors.Is(err, errUserNotFound) {
		return nil, errMFATokenDead // the account went meanwhile
	}
	if err != nil {
		return nil, err // a database fault: 503, not an invalid token
	}
	at, err := a.throttle.reserve(ctx, throttleKey(u.Email, u), client)
	if errors.Is(err, errSpent) {
		return nil, errMFACode
	}
	if err != nil {
		return nil, err
	}
	var s *Session
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ok, err := a.mfa.secondFactor(tx, u.ID, code)
		if err != nil {
			return err
		}
		if !ok {
			return errMFACode
		}
		res := tx.Model(&models.MFAChallenge{}).Where("id = ? AND used_at IS NULL", ch.ID).Update("used_at", now)
		if res.Error != nil {
			return apperror.Wrap(res.Error, "use mfa challenge")
		}
		if res.RowsAffected == 0 {
			return errMFATokenDead // a concurrent verify used it
		}
		if s, err = a.issuer.issue(tx, u, uuid.Nil, uuid.Nil, uuid.New(), uuid.New(), client); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "auth.login", Reason: "mfa", ActorType: "user", ActorID: u.ID.String(), TargetType: "user", TargetID: u.ID.String()})
	})
	at.done(!errors.Is(err, errMFACode))
	if errors.Is(err, errMFACode) {
		a.audit.RecordAlone(ctx, Event{Action: "auth.mfa_failed", Outcome: Failure, Reason: "invalid_mfa_code", TargetType: "user", TargetID: u.ID.String()})
	}
	return s, err
}

// mfaEnabled reports whether u must give a second factor.
func (a *Login) mfaEnabled(ctx context.Context, u *models.User) (bool, error) {
	var n int64
	if err := a.db.WithContext(ctx).Model(&models.MFATOTP{}).Where("user_id = ? AND confirmed_at IS NOT NULL", u.ID).Count(&n).Error; err != nil {
		return false, apperror.Wrap(err, "load mfa")
	}
	return n > 0, nil
}

// challenge records the first step of a login and returns its mfa_token.
func (a *Login) challenge(ctx context.Context, u *models.User, client Client) (string, error) {
	raw, err := newOpaqueToken(32)
	if err != nil {
		return "", apperror.Wrap(err, "make mfa token")
	}
	now := a.clock.Now()
	row := models.MFAChallenge{ID: uuid.New(), UserID: u.ID, TokenHash: hashToken(raw), ExpiresAt: now.Add(mfaTokenTTL),
		ClientIP: client.IP, UserAgent: CleanText(client.UserAgent, 512), CreatedAt: now}
	if err := a.db.WithContext(ctx).Create(&row).Error; err != nil {
		return "", apperror.Wrap(err, "store mfa challenge")
	}
	return raw, nil
}
