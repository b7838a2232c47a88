package services

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// Peppers are the server-side secrets API key and client secret HMACs are
// made with, by version; Current makes new ones, older ones still verify.
// What follows is the one way a credential's secret (models.Secret) is
// made, checked, rotated and moved to the current pepper, for API keys and
// OAuth clients alike.
type Peppers struct {
	Current int
	Secrets map[int][]byte
}

func (p Peppers) hash(version int, secret string) string {
	m := hmac.New(sha256.New, p.Secrets[version])
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

// versions lists the pepper versions, the current one first.
func (p Peppers) versions() []int {
	out := []int{p.Current}
	for v := range p.Secrets {
		if v != p.Current {
			out = append(out, v)
		}
	}
	slices.Sort(out[1:])
	slices.Reverse(out[1:])
	return out
}

// secret keeps raw under the current pepper.
func (p Peppers) secret(raw string) models.Secret {
	return models.Secret{SecretHash: p.hash(p.Current, raw), PepperVersion: p.Current}
}

// check reports whether raw is sec's current secret, or the one a rotation
// replaced while its grace lasts at now.
func (p Peppers) check(sec models.Secret, raw string, now time.Time) (current, previous bool) {
	current = hmac.Equal([]byte(p.hash(sec.PepperVersion, raw)), []byte(sec.SecretHash))
	previous = !current && sec.PreviousHash != nil && sec.PreviousPepper != nil && sec.PreviousExpiresAt != nil &&
		now.Before(*sec.PreviousExpiresAt) &&
		hmac.Equal([]byte(p.hash(*sec.PreviousPepper, raw)), []byte(*sec.PreviousHash))
	return current, previous
}

// moveToCurrent re-hashes the current secret of the row of model with id
// under the current pepper, so an old pepper can be retired once no
// credential uses it.
func (p Peppers) moveToCurrent(ctx context.Context, db *gorm.DB, model any, org, id uuid.UUID, raw string) error {
	return inOrg(ctx, db, org, func(tx *gorm.DB) error {
		return tx.Model(model).Where("id = ?", id).
			Updates(map[string]any{"secret_hash": p.hash(p.Current, raw), "pepper_version": p.Current}).Error
	})
}

// MaxRotationGrace bounds the grace a rotation may ask for.
const MaxRotationGrace = 7 * 24 * time.Hour

// rotationGrace is the grace a rotation asked for, or def.
func rotationGrace(requested *time.Duration, def time.Duration) (time.Duration, error) {
	g := def
	if requested != nil {
		g = *requested
	}
	if g < 0 || g > MaxRotationGrace {
		return 0, apperror.Validation(map[string]string{"grace_period": fmt.Sprintf("must be between 0s and %s", MaxRotationGrace)})
	}
	return g, nil
}

// secretColumns are the columns a rotation writes.
var secretColumns = []string{"previous_hash", "previous_pepper", "previous_expires_at", "secret_hash", "pepper_version"}

// rotateSecret makes raw the current secret of row (whose models.Secret is
// sec), keeps the one it replaces valid until ends, and writes both with
// the columns in also and the audit event e, in one transaction.
func rotateSecret(ctx context.Context, db *gorm.DB, audit *Audit, p Peppers, org uuid.UUID, row any, sec *models.Secret, raw string, ends time.Time, e Event, also ...string) error {
	prevHash, prevPepper := sec.SecretHash, sec.PepperVersion
	*sec = p.secret(raw)
	sec.PreviousHash, sec.PreviousPepper, sec.PreviousExpiresAt = &prevHash, &prevPepper, &ends
	return audit.Do(ctx, db, e, func(tx *gorm.DB) error {
		return inOrg(ctx, tx, org, func(tx *gorm.DB) error {
			return tx.Select(append(slices.Clone(secretColumns), also...)).Updates(row).Error
		})
	})
}
