package services

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/tollgate/tollgate/mail"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/ratelimit"
)

// Token sizes: refresh tokens are 64 random bytes (seed 001), verification
// tokens 32.
const (
	refreshTokenBytes      = 64
	verificationTokenBytes = 32
)

var (
	// ErrBadCredentials: wrong password, unknown email, or a malformed one.
	ErrBadCredentials      = apperror.Define(apperror.Unauthenticated, "invalid_credentials", "Invalid email or password")
	errEmailNotVerified    = apperror.Define(apperror.Forbidden, "email_not_verified", "Email not verified")
	errVerificationInvalid = apperror.Define(apperror.Invalid, "verification_token_invalid", "Verification token is invalid")
	errVerificationUsed    = apperror.Define(apperror.Invalid, "verification_token_used", "Verification token has already been used")
	errVerificationExpired = apperror.Define(apperror.Invalid, "verification_token_expired", "Verification token has expired; ask for a new one")
	errRefreshInvalid      = apperror.Define(apperror.Unauthenticated, "invalid_refresh_token", "Invalid refresh token")
	errRefreshExpired      = apperror.Define(apperror.Unauthenticated, "refresh_token_expired", "Refresh token expired")
	errRefreshReused       = apperror.Define(apperror.Unauthenticated, "refresh_token_reused", "Refresh token was already used; every session of this login has been revoked")
	errRefreshRotated      = apperror.Define(apperror.Conflict, "refresh_token_rotated", "This refresh token was rotated moments ago (another tab or a retried request); use the newest refresh token")
)

// AuthConfig holds the auth rules that come from configuration.
type AuthConfig struct {
	BaseURL         string
	RefreshTTL      time.Duration
	VerificationTTL time.Duration
	// ReuseGrace: a rotated refresh token presented again this soon is a
	// retry (409, family kept); later it is theft (family revoked).
	ReuseGrace time.Duration
	ResetTTL   time.Duration // how long a password reset link works
	// Per-account limits, in the rate-limit store (nil: none): failed
	// logins per account under each policy, and reset requests.
	AccountStore  ratelimit.Store
	LoginAccount  []ratelimit.Policy
	ForgotAccount ratelimit.Policy
	MailAddress   ratelimit.Policy // mail to one address, from register, resend and forgot
	// Issuer names the service in authenticator apps; MFAKeys encrypt TOTP
	// secrets at rest.
	Issuer  string
	MFAKeys MFAKeys
	// Ended voids the access tokens of sessions as they end.
	Ended *EndedSessions
}

// Auth runs registration, verification, login and refresh-token rotation.
type Auth struct {
	db        *gorm.DB
	clock     clock.Clock
	users     *Users
	tokens    *Tokens
	hasher    *Hasher
	outbox    *Outbox
	audit     *Audit
	log       *slog.Logger
	metrics   *metrics.Metrics
	cfg       AuthConfig
	dummyHash []byte
	throttle  accountThrottle
}

// NewAuth builds the auth service. It hashes a random password once so that
// a login for an unknown email costs as much as one with a wrong password.
func NewAuth(db *gorm.DB, clk clock.Clock, users *Users, tokens *Tokens, hasher *Hasher, outbox *Outbox, audit *Audit, log *slog.Logger,
	m *metrics.Metrics, cfg AuthConfig) (*Auth, error) {
	dummy, err := dummyHash(hasher.Cost())
	if err != nil {
		return nil, err
	}
	return &Auth{db: db, clock: clk, users: users, tokens: tokens, hasher: hasher, outbox: outbox, audit: audit, log: log, metrics: m,
		cfg: cfg, dummyHash: dummy, throttle: accountThrottle{store: cfg.AccountStore, logins: cfg.LoginAccount, forgot: cfg.ForgotAccount, mail: cfg.MailAddress,
			wait: hasher.MaxWait(), inflight: newInflight()}}, nil
}

// dummyHashes holds one hash of a random password per bcrypt cost, made
// once per process: every Auth of that cost (tests build hundreds) compares
// unknown accounts against it.
var dummyHashes sync.Map

func dummyHash(cost int) ([]byte, error) {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte), nil
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	h, err := bcrypt.GenerateFromPassword(secret, cost)
	if err != nil {
		return nil, err
	}
	actual, _ := dummyHashes.LoadOrStore(cost, h)
	return actual.([]byte), nil
}

// Client identifies where a request came from; stored with refresh tokens.
type Client struct {
	IP        string
	UserAgent string
}

// Session is what login and refresh hand back.
type Session struct {
	AccessToken      string
	AccessExpiresIn  time.Duration
	RefreshToken     string
	RefreshExpiresIn time.Duration
	User             *models.User
	// MFAToken, when set, is all a login gives: the account needs a second
	// factor at POST /auth/mfa/verify before any token.
	MFAToken string
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
func (a *Auth) Register(ctx context.Context, email, password string) error {
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
	mailOK := a.mailAllowed(ctx, email)
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var u models.User
		err := tx.Where("email = ?", email).Take(&u).Error
		now := a.clock.Now()
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			u = models.User{ID: uuid.New(), Email: email, PasswordHash: string(hash), Role: caller.Viewer, Tier: caller.Free,
				CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&u).Error; err != nil {
				return apperror.Wrap(err, "insert user")
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

// durableTimeout bounds a durable write whose request had no deadline.
const durableTimeout = 30 * time.Second

// durable is ctx without its cancellation (a client hanging up cannot undo
// a write it will be told about) but with its deadline, so a frozen
// database still ends the request (504).
func durable(ctx context.Context) (context.Context, context.CancelFunc) {
	detached := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, deadline)
	}
	return context.WithTimeout(detached, durableTimeout)
}

// ResendVerification queues a new link when email belongs to an unverified
// account, voiding the older ones. It answers the same whatever the case,
// at the same cost: one transaction with one outbox row (withheld when
// there is nothing to send). It returns once that has committed.
func (a *Auth) ResendVerification(ctx context.Context, email string) error {
	ctx, cancel := durable(ctx) // see Register
	defer cancel()
	u, err := a.users.byEmail(ctx, email)
	if err != nil {
		return err
	}
	mailOK := a.mailAllowed(ctx, email)
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
func (a *Auth) queueVerification(tx *gorm.DB, u *models.User) error {
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
	link := a.cfg.BaseURL + "/auth/verify?token=" + url.QueryEscape(raw)
	return a.outbox.Enqueue(tx, mail.Message{
		To:      u.Email,
		Subject: "Verify your email address",
		Body: fmt.Sprintf("Welcome!\n\nConfirm your email address by opening this link within %s:\n\n%s\n\nIf you did not sign up, ignore this message.\n",
			a.cfg.VerificationTTL, link),
	})
}

// VerifyEmail uses up a verification token and marks its account verified.
func (a *Auth) VerifyEmail(ctx context.Context, raw string) error {
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

// Login checks credentials and starts a new refresh-token family.
func (a *Auth) Login(ctx context.Context, email, password string, client Client) (*Session, error) {
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
	at, err := a.reserve(ctx, account, client)
	if err != nil && !errors.Is(err, errSpent) {
		return nil, err
	}
	if err != nil {
		// The same answer and the same work as a wrong password: a throttled
		// account is not told apart (a password reset still works).
		if _, err := a.hasher.Matches(ctx, a.dummyHash, password); err != nil {
			return nil, err
		}
		return refuse("throttled", ErrBadCredentials)
	}
	if u == nil {
		// Same work as a real check, so timing does not tell which emails exist.
		_, err := a.hasher.Matches(ctx, a.dummyHash, password)
		at.done(err != nil) // a guess, unless it was never checked
		if err != nil {
			return nil, err
		}
		return refuse("invalid_credentials", ErrBadCredentials)
	}
	ok, err := a.hasher.Matches(ctx, []byte(u.PasswordHash), password)
	if err != nil {
		at.done(true) // not checked: a fault is not a guess
		return nil, err
	}
	at.done(ok)
	if err := a.upgradeHash(ctx, u, password, ok); err != nil {
		return nil, err
	}
	if !ok {
		return refuse("invalid_credentials", ErrBadCredentials)
	}
	if !u.EmailVerified {
		return refuse("email_not_verified", errEmailNotVerified)
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
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if s, err = a.issue(tx, u, uuid.New(), uuid.New(), client); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "auth.login", ActorType: "user", ActorID: u.ID.String(), TargetType: "user", TargetID: u.ID.String()})
	})
	return s, err
}

// upgradeHash rehashes u's password at the current BCRYPT_COST after a
// right password (right is the check's outcome), when it was hashed at a
// lower one. A wrong password for such an account costs the same: a
// comparison at the current cost. Either way it answers as slowly as an
// up-to-date account (8 ms against 245 ms once told such accounts apart).
func (a *Auth) upgradeHash(ctx context.Context, u *models.User, password string, right bool) error {
	if !a.hasher.Stale([]byte(u.PasswordHash)) {
		return nil
	}
	if !right {
		_, err := a.hasher.Matches(ctx, a.dummyHash, password)
		return err
	}
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	// Only if unchanged meanwhile: a concurrent password change wins.
	if err := a.db.WithContext(ctx).Model(&models.User{}).Where("id = ? AND password_hash = ?", u.ID, u.PasswordHash).
		Update("password_hash", string(hash)).Error; err != nil {
		return apperror.Wrap(err, "rehash password")
	}
	u.PasswordHash = string(hash)
	return nil
}

// issue stores a refresh token with id in family and signs an access token.
func (a *Auth) issue(tx *gorm.DB, u *models.User, id, family uuid.UUID, client Client) (*Session, error) {
	raw, err := newOpaqueToken(refreshTokenBytes)
	if err != nil {
		return nil, apperror.Wrap(err, "generate refresh token")
	}
	now := a.clock.Now()
	rt := models.RefreshToken{
		ID: id, UserID: u.ID, FamilyID: family, TokenHash: hashToken(raw),
		ExpiresAt: now.Add(a.cfg.RefreshTTL), CreatedAt: now,
		ClientIP: client.IP, UserAgent: CleanText(client.UserAgent, 512),
	}
	if err := tx.Create(&rt).Error; err != nil {
		return nil, apperror.Wrap(err, "store refresh token")
	}
	access, err := a.tokens.IssueSession(u, family.String())
	if err != nil {
		return nil, apperror.Wrap(err, "sign access token")
	}
	return &Session{
		AccessToken: access, AccessExpiresIn: a.tokens.TTL(),
		RefreshToken: raw, RefreshExpiresIn: a.cfg.RefreshTTL, User: u,
	}, nil
}

// Refresh rotates a refresh token: the presented one is revoked and points to
// its replacement. Presenting a token that was already rotated or revoked is
// treated as theft: the whole family is revoked.
func (a *Auth) Refresh(ctx context.Context, raw string, client Client) (*Session, error) {
	db := a.db.WithContext(ctx)
	var old models.RefreshToken
	err := db.Where("token_hash = ?", hashToken(raw)).First(&old).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errRefreshInvalid
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load refresh token")
	}
	now := a.clock.Now()
	if old.RevokedAt != nil {
		if old.ReplacedBy == nil {
			// Revoked, never rotated: its session was ended (logout, reset,
			// an admin). A client that missed it, not a thief.
			return nil, errRefreshInvalid
		}
		if now.Sub(*old.RevokedAt) < a.cfg.ReuseGrace {
			return nil, a.retried(&old, client)
		}
		return nil, a.reuseDetected(ctx, &old, client)
	}
	if !now.Before(old.ExpiresAt) {
		return nil, errRefreshExpired
	}
	// Re-read the user so role and tier changes (and deletions) apply now.
	u, err := a.users.Get(ctx, old.UserID)
	if err != nil {
		var ae *apperror.Error
		if errors.As(err, &ae) && ae.Kind == apperror.NotFound {
			_ = a.revokeFamily(ctx, old.FamilyID)
			return nil, errRefreshInvalid
		}
		return nil, err
	}
	var s *Session
	lostRace := false
	err = db.Transaction(func(tx *gorm.DB) error {
		next := uuid.New()
		// Only one of several concurrent refreshes of this token can flip
		// revoked_at from NULL; the others see zero rows and count as reuse.
		res := tx.Model(&models.RefreshToken{}).Where("id = ? AND revoked_at IS NULL", old.ID).
			Updates(map[string]any{"revoked_at": now, "replaced_by": next})
		if res.Error != nil {
			return apperror.Wrap(res.Error, "revoke refresh token")
		}
		if res.RowsAffected == 0 {
			lostRace = true
			return errRefreshReused
		}
		var ierr error
		s, ierr = a.issue(tx, u, next, old.FamilyID, client)
		return ierr
	})
	if lostRace {
		// A concurrent refresh of the same token won just now.
		if a.cfg.ReuseGrace > 0 {
			return nil, a.retried(&old, client)
		}
		return nil, a.reuseDetected(ctx, &old, client)
	}
	return s, err
}

// retried answers a rotated token presented again within the grace
// period: the client lost the race or the answer, not the token.
func (a *Auth) retried(rt *models.RefreshToken, client Client) error {
	a.metrics.RefreshRetries.Inc()
	a.log.Info("refresh token presented again within the grace period", "user_id", rt.UserID, "family_id", rt.FamilyID, "ip", client.IP)
	return errRefreshRotated
}

func (a *Auth) reuseDetected(ctx context.Context, rt *models.RefreshToken, client Client) error {
	a.metrics.RefreshReuse.Inc()
	a.log.Warn("security: refresh token reuse, revoking family",
		"event", "refresh_token_reuse", "user_id", rt.UserID, "family_id", rt.FamilyID, "ip", client.IP)
	if err := a.revokeFamily(ctx, rt.FamilyID); err != nil {
		return err
	}
	a.audit.RecordAlone(ctx, Event{Action: "auth.refresh_reuse", Outcome: Failure, Reason: "refresh_token_reused",
		TargetType: "user", TargetID: rt.UserID.String()})
	return errRefreshReused
}

// revokeFamily ends one session: its refresh tokens and, at once, its
// access tokens.
func (a *Auth) revokeFamily(ctx context.Context, family uuid.UUID) error {
	err := a.db.WithContext(ctx).Model(&models.RefreshToken{}).
		Where("family_id = ? AND revoked_at IS NULL", family).Update("revoked_at", a.clock.Now()).Error
	if err != nil {
		return apperror.Wrap(err, "revoke token family")
	}
	a.cfg.Ended.End(ctx, family.String())
	return nil
}
