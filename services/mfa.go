package services

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// TOTP parameters (RFC 6238 defaults, what every authenticator app reads).
const (
	totpPeriod        = 30 * time.Second
	totpSkew          = 1 // steps either side accepted, for clock drift
	recoveryCodeCount = 10
	mfaTokenTTL       = 5 * time.Minute
	mfaMaxAttempts    = 5
)

var (
	errMFAEnabled     = apperror.Define(apperror.Conflict, "mfa_already_enabled", "Two-factor authentication is already on; disable it first")
	errMFANotStarted  = apperror.Define(apperror.Conflict, "mfa_not_started", "Start the enrolment first (POST /users/me/mfa/totp)")
	errMFANotEnabled  = apperror.Define(apperror.Conflict, "mfa_not_enabled", "Two-factor authentication is not on")
	errMFACode        = apperror.Define(apperror.Unauthenticated, "invalid_mfa_code", "Invalid or already used code")
	errMFATokenDead   = apperror.Define(apperror.Unauthenticated, "invalid_mfa_token", "The login step expired or is invalid; log in again")
	errMFACodeInvalid = apperror.Define(apperror.Invalid, "incorrect_mfa_code", "The code is not correct, or was already used")
)

// MFAKeys encrypt TOTP secrets at rest: AES-256-GCM with a key derived from
// MFA_KEY (SHA-256 of it), by version like the API key peppers.
type MFAKeys = Peppers

func (k MFAKeys) aead(version int) (cipher.AEAD, error) {
	secret, ok := k.Secrets[version]
	if !ok {
		return nil, fmt.Errorf("no MFA key of version %d (MFA_PREVIOUS_KEYS)", version)
	}
	sum := sha256.Sum256(secret)
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (k MFAKeys) seal(plain string, userID uuid.UUID) (string, error) {
	g, err := k.aead(k.Current)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	// The user id is authenticated data: a secret moved to another row
	// does not decrypt.
	return base64.StdEncoding.EncodeToString(g.Seal(nonce, nonce, []byte(plain), userID[:])), nil
}

func (k MFAKeys) open(sealed string, version int, userID uuid.UUID) (string, error) {
	g, err := k.aead(version)
	if err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < g.NonceSize() {
		return "", errors.New("malformed MFA secret")
	}
	plain, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], userID[:])
	return string(plain), err
}

// Enrolment is what starting TOTP enrolment answers.
type Enrolment struct {
	URI    string // otpauth://totp/...
	QRCode string // data:image/png;base64,...
	Secret string // base32, for typing in by hand
}

// StartTOTP makes a new, unconfirmed TOTP secret for the user (replacing
// an unconfirmed one).
func (a *Auth) StartTOTP(ctx context.Context, userID uuid.UUID) (*Enrolment, error) {
	u, err := a.users.Current(ctx, userID)
	if err != nil {
		return nil, err
	}
	var cur models.MFATOTP
	err = a.db.WithContext(ctx).Where("user_id = ?", userID).Take(&cur).Error
	if err == nil && cur.ConfirmedAt != nil {
		return nil, errMFAEnabled
	}
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, apperror.Wrap(err, "load mfa")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: a.cfg.Issuer, AccountName: u.Email, Period: uint(totpPeriod / time.Second)})
	if err != nil {
		return nil, apperror.Wrap(err, "generate totp secret")
	}
	sealed, err := a.cfg.MFAKeys.seal(key.Secret(), userID)
	if err != nil {
		return nil, apperror.Wrap(err, "encrypt totp secret")
	}
	row := models.MFATOTP{UserID: userID, Secret: sealed, KeyVersion: a.cfg.MFAKeys.Current, CreatedAt: a.clock.Now()}
	if err := a.db.WithContext(ctx).Save(&row).Error; err != nil {
		return nil, apperror.Wrap(err, "store totp secret")
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return nil, apperror.Wrap(err, "draw qr code")
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, apperror.Wrap(err, "encode qr code")
	}
	return &Enrolment{URI: key.URL(), QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), Secret: key.Secret()}, nil
}

// checkCode accepts code for the enrolment if it matches a time step after
// the last accepted one, and records that step (in tx). A replayed code
// fails.
func (a *Auth) checkCode(tx *gorm.DB, row *models.MFATOTP, code string) (bool, error) {
	secret, err := a.cfg.MFAKeys.open(row.Secret, row.KeyVersion, row.UserID)
	if err != nil {
		return false, apperror.Wrap(err, "decrypt totp secret")
	}
	code = strings.TrimSpace(code)
	now := a.clock.Now()
	cur := now.Unix() / int64(totpPeriod/time.Second)
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*int64(totpPeriod/time.Second), 0),
			totp.ValidateOpts{Period: uint(totpPeriod / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return false, apperror.Wrap(err, "totp code")
		}
		if !hmac.Equal([]byte(want), []byte(code)) {
			continue
		}
		if step <= row.LastStep {
			return false, nil // replay
		}
		res := tx.Model(&models.MFATOTP{}).Where("user_id = ? AND last_step < ?", row.UserID, step).Update("last_step", step)
		if res.Error != nil {
			return false, apperror.Wrap(res.Error, "record totp step")
		}
		if res.RowsAffected == 0 {
			return false, nil // a concurrent use of the same code won
		}
		if row.KeyVersion != a.cfg.MFAKeys.Current {
			// Re-sealed under the current key as it is used. A failed write
			// fails the check: on PostgreSQL it aborts the transaction anyway.
			sealed, err := a.cfg.MFAKeys.seal(secret, row.UserID)
			if err != nil {
				return false, apperror.Wrap(err, "encrypt totp secret")
			}
			if err := tx.Model(&models.MFATOTP{}).Where("user_id = ?", row.UserID).
				Updates(map[string]any{"secret": sealed, "key_version": a.cfg.MFAKeys.Current}).Error; err != nil {
				return false, apperror.Wrap(err, "re-seal totp secret")
			}
		}
		row.LastStep = step
		return true, nil
	}
	return false, nil
}

// ConfirmTOTP turns TOTP on with a first code and returns the recovery
// codes, shown this once.
func (a *Auth) ConfirmTOTP(ctx context.Context, userID uuid.UUID, code string) ([]string, error) {
	var codes []string
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row models.MFATOTP
		if err := tx.Where("user_id = ?", userID).Take(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return errMFANotStarted
			}
			return apperror.Wrap(err, "load mfa")
		}
		if row.ConfirmedAt != nil {
			return errMFAEnabled
		}
		ok, err := a.checkCode(tx, &row, code)
		if err != nil {
			return err
		}
		if !ok {
			return errMFACodeInvalid
		}
		if err := tx.Model(&models.MFATOTP{}).Where("user_id = ?", userID).Update("confirmed_at", a.clock.Now()).Error; err != nil {
			return apperror.Wrap(err, "confirm mfa")
		}
		if codes, err = a.newRecoveryCodes(tx, userID); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "mfa.enabled", TargetType: "user", TargetID: userID.String()})
	})
	return codes, err
}

// newRecoveryCodes replaces the user's recovery codes (in tx).
func (a *Auth) newRecoveryCodes(tx *gorm.DB, userID uuid.UUID) ([]string, error) {
	if err := tx.Where("user_id = ?", userID).Delete(&models.MFARecoveryCode{}).Error; err != nil {
		return nil, apperror.Wrap(err, "drop recovery codes")
	}
	codes := make([]string, recoveryCodeCount)
	now := a.clock.Now()
	for i := range codes {
		raw, err := randomBase62(10)
		if err != nil {
			return nil, apperror.Wrap(err, "make recovery code")
		}
		codes[i] = strings.ToLower(raw[:5] + "-" + raw[5:])
		row := models.MFARecoveryCode{ID: uuid.New(), UserID: userID, CodeHash: hashToken(codes[i]), CreatedAt: now}
		if err := tx.Create(&row).Error; err != nil {
			return nil, apperror.Wrap(err, "store recovery code")
		}
	}
	return codes, nil
}

// secondFactor checks a TOTP code or, failing that, a recovery code (used
// up) for userID, in tx.
func (a *Auth) secondFactor(tx *gorm.DB, userID uuid.UUID, code string) (bool, error) {
	var row models.MFATOTP
	if err := tx.Where("user_id = ? AND confirmed_at IS NOT NULL", userID).Take(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return false, errMFANotEnabled
		}
		return false, apperror.Wrap(err, "load mfa")
	}
	if len(strings.TrimSpace(code)) == 6 {
		return a.checkCode(tx, &row, code)
	}
	res := tx.Model(&models.MFARecoveryCode{}).Where("user_id = ? AND code_hash = ? AND used_at IS NULL", userID,
		hashToken(strings.ToLower(strings.TrimSpace(code)))).Update("used_at", a.clock.Now())
	if res.Error != nil {
		return false, apperror.Wrap(res.Error, "use recovery code")
	}
	return res.RowsAffected == 1, nil
}

// DisableTOTP turns TOTP off; it needs the password and a code.
func (a *Auth) DisableTOTP(ctx context.Context, userID uuid.UUID, password, code string) error {
	u, err := a.users.Current(ctx, userID)
	if err != nil {
		return err
	}
	if ok, err := a.hasher.Matches(ctx, []byte(u.PasswordHash), password); err != nil {
		return err
	} else if !ok {
		return errWrongPassword
	}
	return a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ok, err := a.secondFactor(tx, userID, code)
		if err != nil {
			return err
		}
		if !ok {
			return errMFACodeInvalid
		}
		for _, m := range []any{&models.MFATOTP{}, &models.MFARecoveryCode{}} {
			if err := tx.Where("user_id = ?", userID).Delete(m).Error; err != nil {
				return apperror.Wrap(err, "disable mfa")
			}
		}
		return a.audit.Record(ctx, tx, Event{Action: "mfa.disabled", TargetType: "user", TargetID: userID.String()})
	})
}

// RegenerateRecoveryCodes replaces the recovery codes; it needs a code.
func (a *Auth) RegenerateRecoveryCodes(ctx context.Context, userID uuid.UUID, code string) ([]string, error) {
	var codes []string
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ok, err := a.secondFactor(tx, userID, code)
		if err != nil {
			return err
		}
		if !ok {
			return errMFACodeInvalid
		}
		if codes, err = a.newRecoveryCodes(tx, userID); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "mfa.recovery_codes_regenerated", TargetType: "user", TargetID: userID.String()})
	})
	return codes, err
}

// mfaEnabled reports whether u must give a second factor.
func (a *Auth) mfaEnabled(ctx context.Context, u *models.User) (bool, error) {
	var n int64
	if err := a.db.WithContext(ctx).Model(&models.MFATOTP{}).Where("user_id = ? AND confirmed_at IS NOT NULL", u.ID).Count(&n).Error; err != nil {
		return false, apperror.Wrap(err, "load mfa")
	}
	return n > 0, nil
}

// challenge records the first step of a login and returns its mfa_token.
func (a *Auth) challenge(ctx context.Context, u *models.User, client Client) (string, error) {
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

// VerifyMFA finishes a login: the mfa_token from the first step and a TOTP
// or recovery code give the token pair. A token allows a few attempts, and
// wrong codes count against the account like wrong passwords.
func (a *Auth) VerifyMFA(ctx context.Context, token, code string, client Client) (*Session, error) {
	var ch models.MFAChallenge
	err := a.db.WithContext(ctx).Where("token_hash = ?", hashToken(token)).Take(&ch).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errMFATokenDead
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load mfa challenge")
	}
	now := a.clock.Now()
	if ch.UsedAt != nil || !now.Before(ch.ExpiresAt) || ch.Attempts >= mfaMaxAttempts {
		return nil, errMFATokenDead
	}
	u, err := a.users.Get(ctx, ch.UserID)
	if errors.Is(err, errUserNotFound) {
		return nil, errMFATokenDead // the account went meanwhile
	}
	if err != nil {
		return nil, err // a database fault: 503, not an invalid token
	}
	account := throttleKey(u.Email, u)
	if a.throttled(ctx, account, client) {
		return nil, errMFACode
	}
	var s *Session
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&models.MFAChallenge{}).Where("id = ?", ch.ID).Update("attempts", gorm.Expr("attempts + 1")).Error; err != nil {
			return apperror.Wrap(err, "count mfa attempt")
		}
		ok, err := a.secondFactor(tx, u.ID, code)
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
		if s, err = a.issue(tx, u, uuid.New(), uuid.New(), client); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "auth.login", Reason: "mfa", ActorType: "user", ActorID: u.ID.String(), TargetType: "user", TargetID: u.ID.String()})
	})
	if errors.Is(err, errMFACode) {
		// The attempt still counts (outside the rolled-back transaction).
		if cerr := a.db.WithContext(ctx).Model(&models.MFAChallenge{}).Where("id = ?", ch.ID).Update("attempts", gorm.Expr("attempts + 1")).Error; cerr != nil {
			return nil, apperror.Wrap(cerr, "count mfa attempt")
		}
		a.failed(ctx, account)
		a.audit.RecordAlone(ctx, Event{Action: "auth.mfa_failed", Outcome: Failure, Reason: "invalid_mfa_code", TargetType: "user", TargetID: u.ID.String()})
	}
	return s, err
}
