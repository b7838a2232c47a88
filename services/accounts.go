package services

import (
	"context"
	"log/slog"
	"net/url"
	"time"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/ratelimit"
)

// The account flows (registration, login, sessions, passwords and MFA)
// each have a type of their own; what they share are the dependencies
// below, the login throttle (every password and code check) and the
// session issuer (every token pair and every session ended).

// AccountDeps are what the account flows are built from.
type AccountDeps struct {
	DB      *gorm.DB
	Clock   clock.Clock
	Users   *Users
	Orgs    *Orgs
	Tokens  *Tokens
	Hasher  *Hasher
	Outbox  *Outbox
	Audit   *Audit
	Log     *slog.Logger
	Metrics *metrics.Metrics
	Config  AuthConfig
	// Federation: the OpenID Connect providers people may sign in with.
	Federation FederationConfig
}

// accountDeps is AccountDeps as the flows read it.
type accountDeps struct {
	db      *gorm.DB
	clock   clock.Clock
	users   *Users
	orgs    *Orgs
	tokens  *Tokens
	hasher  *Hasher
	outbox  *Outbox
	audit   *Audit
	log     *slog.Logger
	metrics *metrics.Metrics
	cfg     AuthConfig
}

// Accounts are the account flows, built together because they share the
// throttle and the issuer.
type Accounts struct {
	Registration *Registration
	Login        *Login
	Sessions     *Sessions
	Passwords    *Passwords
	MFA          *MFA
	Federation   *Federation
}

// NewAccounts builds the account flows. It hashes a random password once
// so that a login for an unknown email costs as much as one with a wrong
// password.
func NewAccounts(d AccountDeps) (*Accounts, error) {
	dummy, err := dummyHash(d.Hasher.Cost())
	if err != nil {
		return nil, err
	}
	deps := &accountDeps{db: d.DB, clock: d.Clock, users: d.Users, orgs: d.Orgs, tokens: d.Tokens, hasher: d.Hasher, outbox: d.Outbox,
		audit: d.Audit, log: d.Log, metrics: d.Metrics, cfg: d.Config}
	cfg := d.Config
	throttle := &loginThrottle{accountDeps: deps, dummyHash: dummy, accountThrottle: accountThrottle{store: cfg.AccountStore,
		logins: cfg.LoginAccount, forgot: cfg.ForgotAccount, mail: cfg.MailAddress, wait: d.Hasher.MaxWait(), inflight: newInflight()}}
	issuer := &sessionIssuer{deps}
	mfa := &MFA{accountDeps: deps, throttle: throttle, issuer: issuer}
	login := &Login{accountDeps: deps, throttle: throttle, issuer: issuer, mfa: mfa}
	return &Accounts{
		Registration: &Registration{accountDeps: deps, throttle: throttle},
		Login:        login,
		Federation:   &Federation{accountDeps: deps, login: login, cfg: d.Federation},
		Sessions:     &Sessions{accountDeps: deps, issuer: issuer},
		Passwords:    &Passwords{accountDeps: deps, throttle: throttle, issuer: issuer},
		MFA:          mfa,
	}, nil
}

// Token sizes: refresh tokens are 64 random bytes, verification
// tokens 32.
const (
	refreshTokenBytes      = 64
	verificationTokenBytes = 32
)

// Reset tokens are 32 random bytes, like verification tokens.
const resetTokenBytes = 32

var (
	// ErrBadCredentials: wrong password, unknown email, or a malformed one.
	ErrBadCredentials      = apperror.Define(apperror.Unauthenticated, "invalid_credentials", "Invalid email or password")
	errEmailNotVerified    = apperror.Define(apperror.Forbidden, "email_not_verified", "Email not verified")
	errVerificationInvalid = apperror.Define(apperror.Invalid, "verification_token_invalid", "Verification token is invalid")
	errVerificationUsed    = apperror.Define(apperror.Invalid, "verification_token_used", "Verification token has already been used")
	errVerificationExpired = apperror.Define(apperror.Invalid, "verification_token_expired", "Verification token has expired; ask for a new one")
	// ErrRefreshInvalid: no such refresh token, or its session ended.
	ErrRefreshInvalid = apperror.Define(apperror.Unauthenticated, "invalid_refresh_token", "Invalid refresh token")
	errRefreshExpired = apperror.Define(apperror.Unauthenticated, "refresh_token_expired", "Refresh token expired")
	errRefreshReused  = apperror.Define(apperror.Unauthenticated, "refresh_token_reused", "Refresh token was already used; every session of this login has been revoked")
	errRefreshRotated = apperror.Define(apperror.Conflict, "refresh_token_rotated", "This refresh token was rotated moments ago (another tab or a retried request); use the newest refresh token")
)

var (
	errResetInvalid   = apperror.Define(apperror.Invalid, "reset_token_invalid", "Password reset token is invalid")
	errResetUsed      = apperror.Define(apperror.Invalid, "reset_token_used", "Password reset token has already been used")
	errResetExpired   = apperror.Define(apperror.Invalid, "reset_token_expired", "Password reset token has expired; ask for a new one")
	errWrongPassword  = apperror.Define(apperror.Invalid, "current_password_incorrect", "The current password is not correct")
	errSessionUnknown = apperror.Define(apperror.NotFound, "session_not_found", "Session not found")
)

// AuthConfig holds the auth rules that come from configuration.
type AuthConfig struct {
	BaseURL string
	// VerifyURL and ResetURL: the front end's pages the mails link to
	// (the token in the fragment); "": the API's own pages.
	VerifyURL, ResetURL string
	RefreshTTL          time.Duration
	VerificationTTL     time.Duration
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

// link is where a mail sends a person with token: the front end's page
// (the token in the fragment, which no server sees or logs), or without
// one the API's own page at path.
func (c AuthConfig) link(frontEnd, path, token string) string {
	if frontEnd != "" {
		return frontEnd + "#token=" + url.QueryEscape(token)
	}
	return c.BaseURL + path + "?token=" + url.QueryEscape(token)
}
