package services

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// sessionIssuer starts sessions (a token pair on a new or rotated
// refresh-token family) and ends them, for every flow that does either.
type sessionIssuer struct{ *accountDeps }

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
	// Standing is the organization the session acts in, and the role.
	Standing Standing
	// ID is the session (the refresh-token family, the access token's sid).
	ID string
	// MFAToken, when set, is all a login gives: the account needs a second
	// factor at POST /auth/mfa/verify before any token.
	MFAToken string
}

// issue stores a refresh token with id in family and signs an access
// token, in the organization want (uuid.Nil: the family's current one,
// prefer, while u is still in it; else as standing chooses).
func (a *sessionIssuer) issue(tx *gorm.DB, u *models.User, want, prefer, id, family uuid.UUID, client Client) (*Session, error) {
	st, err := standing(tx, u, want, prefer)
	if err != nil {
		return nil, err
	}
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
	if st.OrgID != uuid.Nil {
		rt.OrgID = &st.OrgID
	}
	if err := tx.Create(&rt).Error; err != nil {
		return nil, apperror.Wrap(err, "store refresh token")
	}
	access, err := a.tokens.IssueSession(u, st, family.String())
	if err != nil {
		return nil, apperror.Wrap(err, "sign access token")
	}
	return &Session{
		AccessToken: access, AccessExpiresIn: a.tokens.TTL(),
		RefreshToken: raw, RefreshExpiresIn: a.cfg.RefreshTTL, User: u, Standing: st, ID: family.String(),
	}, nil
}

// endSessions revokes every live refresh token of userID except those of
// the family keep ("" ends them all), in tx, and returns the families it
// ended: the caller voids their access tokens once tx has committed.
func (a *sessionIssuer) endSessions(tx *gorm.DB, userID uuid.UUID, keep string) ([]string, error) {
	q := tx.Model(&models.RefreshToken{}).Where("user_id = ? AND revoked_at IS NULL", userID)
	if keep != "" {
		q = q.Where("family_id <> ?", keep)
	}
	var families []uuid.UUID
	if err := q.Distinct("family_id").Pluck("family_id", &families).Error; err != nil {
		return nil, apperror.Wrap(err, "list sessions")
	}
	q = tx.Model(&models.RefreshToken{}).Where("user_id = ? AND revoked_at IS NULL", userID)
	if keep != "" {
		q = q.Where("family_id <> ?", keep)
	}
	if err := q.Update("revoked_at", a.clock.Now()).Error; err != nil {
		return nil, apperror.Wrap(err, "end sessions")
	}
	ids := make([]string, len(families))
	for i, f := range families {
		ids[i] = f.String()
	}
	return ids, nil
}

// revokeFamily ends one session: its refresh tokens and, at once, its
// access tokens.
func (a *sessionIssuer) revokeFamily(ctx context.Context, family uuid.UUID) error {
	err := a.db.WithContext(ctx).Model(&models.RefreshToken{}).
		Where("family_id = ? AND revoked_at IS NULL", family).Update("revoked_at", a.clock.Now()).Error
	if err != nil {
		return apperror.Wrap(err, "revoke token family")
	}
	a.cfg.Ended.End(ctx, family.String())
	return nil
}
