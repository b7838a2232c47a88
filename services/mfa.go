package services

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/tollgate/tollgate/product"

	"github.com/tollgate/tollgate/mail"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// MFA is two-factor authentication: TOTP enrolment, recovery codes,
// disabling and an admin's reset; Login asks it for the second step.
type MFA struct {
	*accountDeps
	throttle *loginThrottle
	issuer   *sessionIssuer
}

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

// Enrolment is what starting TOTP enrolment answers.
type Enrolment struct {
	URI    string // otpauth://totp/...
	QRCode string // data:image/png;base64,...
	Secret string // base32, for typing in by hand
}

// StartTOTP makes a new, unconfirmed TOTP secret for the user (replacing
// an unconfirmed one). It needs the current password: an access token
// alone must not be able to put a second factor of the holder's choosing
// on someone else's account.
func (a *MFA) StartTOTP(ctx context.Context, userID uuid.UUID, password string) (*Enrolment, error) {
	u, err := a.users.Current(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := a.throttle.checkPassword(ctx, u, password); err != nil {
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
func (a *MFA) checkCode(tx *gorm.DB, row *models.MFATOTP, code string) (bool, error) {
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
// codes, shown this once. The owner is told by mail.
func (a *MFA) ConfirmTOTP(ctx context.Context, userID uuid.UUID, code string) ([]string, error) {
	u, err := a.users.Current(ctx, userID)
	if err != nil {
		return nil, err
	}
	var codes []string
	err = a.throttle.codeAttempt(ctx, u, errMFACodeInvalid, func(tx *gorm.DB) error {
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
		if err := a.outbox.Enqueue(tx, mfaNotice(u.Email, "Two-factor authentication was turned on",
			"Two-factor authentication was just turned on for your account: logins now need a code from an authenticator app.")); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "mfa.enabled", TargetType: "user", TargetID: userID.String()})
	})
	if err == nil {
		a.outbox.Notify()
	}
	return codes, err
}

// mfaNotice tells the owner of a change to their second factor.
func mfaNotice(to, subject, what string) mail.Message {
	return mail.Message{To: to, Subject: subject, Body: what + "\n\n" +
		"If it was not you, reset your password at once (POST /auth/password/forgot) and ask an administrator to reset " +
		"two-factor authentication for your account.\n"}
}

// Recovery codes: 20 characters of a 32-letter alphabet (100 bits), in
// groups of 5 for reading aloud, stored as an HMAC-SHA256 keyed with
// MFA_KEY and salted with the user id (ASVS 2.6.2): a database reader can
// neither reverse nor precompute them.
const (
	recoveryCodeChars    = 20
	recoveryCodeAlphabet = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford's base32
)

func newRecoveryCode() (string, error) {
	raw := make([]byte, recoveryCodeChars)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, c := range raw {
		if i > 0 && i%5 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(recoveryCodeAlphabet[c%32]) // 256 = 8 x 32: uniform
	}
	return b.String(), nil
}

// recoveryHash is how a recovery code is stored under MFA key version
// (0: the unkeyed SHA-256 of codes made before keyed hashes, still
// accepted until they are used or replaced).
func (k MFAKeys) recoveryHash(userID uuid.UUID, code string, version int) (string, error) {
	if version == 0 {
		return hashToken(code), nil
	}
	secret, ok := k.Secrets[version]
	if !ok {
		return "", fmt.Errorf("no MFA key of version %d (MFA_PREVIOUS_KEYS)", version)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(product.CryptoContext + " recovery code\x00"))
	m.Write(userID[:])
	m.Write([]byte(code))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// normalRecoveryCode is how a typed code is compared: case, spaces and
// dashes do not matter.
func normalRecoveryCode(code string) string {
	code = strings.ToLower(strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, code))
	if len(code) == recoveryCodeChars {
		var b strings.Builder
		for i := 0; i < len(code); i += 5 {
			if i > 0 {
				b.WriteByte('-')
			}
			b.WriteString(code[i : i+5])
		}
		return b.String()
	}
	return code
}

// newRecoveryCodes replaces the user's recovery codes (in tx).
func (a *MFA) newRecoveryCodes(tx *gorm.DB, userID uuid.UUID) ([]string, error) {
	if err := tx.Where("user_id = ?", userID).Delete(&models.MFARecoveryCode{}).Error; err != nil {
		return nil, apperror.Wrap(err, "drop recovery codes")
	}
	codes := make([]string, recoveryCodeCount)
	now := a.clock.Now()
	version := a.cfg.MFAKeys.Current
	for i := range codes {
		c, err := newRecoveryCode()
		if err != nil {
			return nil, apperror.Wrap(err, "make recovery code")
		}
		h, err := a.cfg.MFAKeys.recoveryHash(userID, c, version)
		if err != nil {
			return nil, apperror.Wrap(err, "hash recovery code")
		}
		codes[i] = c
		row := models.MFARecoveryCode{ID: uuid.New(), UserID: userID, CodeHash: h, KeyVersion: version, CreatedAt: now}
		if err := tx.Create(&row).Error; err != nil {
			return nil, apperror.Wrap(err, "store recovery code")
		}
	}
	return codes, nil
}

// useRecoveryCode uses up one of userID's unused recovery codes equal to
// code, in tx.
func (a *MFA) useRecoveryCode(tx *gorm.DB, userID uuid.UUID, code string) (bool, error) {
	var rows []models.MFARecoveryCode
	if err := tx.Where("user_id = ? AND used_at IS NULL", userID).Find(&rows).Error; err != nil {
		return false, apperror.Wrap(err, "load recovery codes")
	}
	typed := normalRecoveryCode(code)
	legacy := strings.ToLower(strings.TrimSpace(code)) // as codes were compared before keyed hashes
	for _, r := range rows {
		c := typed
		if r.KeyVersion == 0 {
			c = legacy
		}
		h, err := a.cfg.MFAKeys.recoveryHash(userID, c, r.KeyVersion)
		if err != nil {
			return false, apperror.Wrap(err, "hash recovery code")
		}
		if !hmac.Equal([]byte(h), []byte(r.CodeHash)) {
			continue
		}
		// Conditional: of two concurrent uses of one code, one wins.
		res := tx.Model(&models.MFARecoveryCode{}).Where("id = ? AND used_at IS NULL", r.ID).Update("used_at", a.clock.Now())
		if res.Error != nil {
			return false, apperror.Wrap(res.Error, "use recovery code")
		}
		return res.RowsAffected == 1, nil
	}
	return false, nil
}

// secondFactor checks a TOTP code or, failing that, a recovery code (used
// up) for userID, in tx.
func (a *MFA) secondFactor(tx *gorm.DB, userID uuid.UUID, code string) (bool, error) {
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
	return a.useRecoveryCode(tx, userID, code)
}

// DisableTOTP turns TOTP off; it needs the password and a code, each
// checked against the account's attempt budget. The owner is told by mail.
func (a *MFA) DisableTOTP(ctx context.Context, userID uuid.UUID, password, code string) error {
	u, err := a.users.Current(ctx, userID)
	if err != nil {
		return err
	}
	if err := a.throttle.checkPassword(ctx, u, password); err != nil {
		return err
	}
	err = a.throttle.codeAttempt(ctx, u, errMFACodeInvalid, func(tx *gorm.DB) error {
		ok, err := a.secondFactor(tx, userID, code)
		if err != nil {
			return err
		}
		if !ok {
			return errMFACodeInvalid
		}
		if err := a.dropMFA(tx, userID); err != nil {
			return err
		}
		if err := a.outbox.Enqueue(tx, mfaNotice(u.Email, "Two-factor authentication was turned off",
			"Two-factor authentication was just turned off for your account: logins need only the password now.")); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "mfa.disabled", TargetType: "user", TargetID: userID.String()})
	})
	if err == nil {
		a.outbox.Notify()
	}
	return err
}

// dropMFA removes userID's second factor and pending logins, in tx.
func (a *MFA) dropMFA(tx *gorm.DB, userID uuid.UUID) error {
	for _, m := range []any{&models.MFATOTP{}, &models.MFARecoveryCode{}, &models.MFAChallenge{}} {
		if err := tx.Where("user_id = ?", userID).Delete(m).Error; err != nil {
			return apperror.Wrap(err, "disable mfa")
		}
	}
	return nil
}

// Reset is an administrator's way back in for a person who lost both
// the authenticator and the recovery codes: the second factor goes, every
// session of the account ends, the owner is told by mail, and the audit
// log records who did it. The person then logs in with the password (or
// resets it by mail first) and enrols again.
func (a *MFA) Reset(ctx context.Context, userID uuid.UUID) error {
	u, err := a.users.Get(ctx, userID)
	if err != nil {
		return err
	}
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&models.MFATOTP{}).Where("user_id = ? AND confirmed_at IS NOT NULL", userID).Count(&n).Error; err != nil {
			return apperror.Wrap(err, "load mfa")
		}
		if n == 0 {
			return errMFANotEnabled
		}
		if err := a.dropMFA(tx, userID); err != nil {
			return err
		}
		if _, err := a.issuer.endSessions(tx, userID, ""); err != nil {
			return err
		}
		if err := a.outbox.Enqueue(tx, mfaNotice(u.Email, "Two-factor authentication was reset",
			"An administrator has just reset two-factor authentication for your account and signed out every session. "+
				"Log in with your password and turn it on again.")); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "mfa.reset", TargetType: "user", TargetID: userID.String()})
	})
	if err == nil {
		a.cfg.Ended.EndUser(ctx, userID.String())
		a.outbox.Notify()
	}
	return err
}

// RegenerateRecoveryCodes replaces the recovery codes; it needs a code.
// The owner is told by mail.
func (a *MFA) RegenerateRecoveryCodes(ctx context.Context, userID uuid.UUID, code string) ([]string, error) {
	u, err := a.users.Current(ctx, userID)
	if err != nil {
		return nil, err
	}
	var codes []string
	err = a.throttle.codeAttempt(ctx, u, errMFACodeInvalid, func(tx *gorm.DB) error {
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
		if err := a.outbox.Enqueue(tx, mfaNotice(u.Email, "New recovery codes were made",
			"New two-factor recovery codes were just made for your account; the old ones no longer work.")); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "mfa.recovery_codes_regenerated", TargetType: "user", TargetID: userID.String()})
	})
	if err == nil {
		a.outbox.Notify()
	}
	return codes, err
}
