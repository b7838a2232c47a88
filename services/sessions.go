package services

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// Sessions are a user's logins: refresh-token rotation, the list, and
// ending one, all or the current one.
type Sessions struct {
	*accountDeps
	issuer *sessionIssuer
}

// SessionInfo is one login of a user: a refresh-token family that still
// holds a live token.
type SessionInfo struct {
	ID        uuid.UUID // the family id (the access token's sid)
	CreatedAt time.Time // the login
	LastUsed  time.Time // the last refresh (or the login)
	IP        string    // as of the last use
	UserAgent string
}

// Refresh rotates a refresh token: the presented one is revoked and points to
// its replacement. Presenting a token that was already rotated is, within
// ReuseGrace of its rotation, a second tab or a retried request: it gets
// the same successor (the newest token of its line) and a fresh access
// token for it, and nothing is revoked. Later it is treated as theft: the
// whole family is revoked. With org (not uuid.Nil) the new pair is for that
// organization (404 org_not_found unless the user is a member); without,
// for the session's organization while the user is still in it.
// Memberships are read afresh: a member removed from an organization is
// not in it after the refresh.
func (a *Sessions) Refresh(ctx context.Context, raw string, org uuid.UUID, client Client) (*Session, error) {
	db := a.db.WithContext(ctx)
	var old models.RefreshToken
	err := db.Where("token_hash = ?", hashToken(raw)).First(&old).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrRefreshInvalid
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load refresh token")
	}
	if old.RevokedAt != nil {
		return a.spent(ctx, &old, client)
	}
	now := a.clock.Now()
	if !now.Before(old.ExpiresAt) {
		return nil, errRefreshExpired
	}
	// Re-read the user so role and tier changes (and deletions) apply now.
	u, err := a.sessionUser(ctx, &old)
	if err != nil {
		return nil, err
	}
	var s *Session
	lostRace := false
	err = db.Transaction(func(tx *gorm.DB) error {
		next := uuid.New()
		// Only one of several concurrent refreshes of this token can flip
		// revoked_at from NULL; the others see zero rows and are answered
		// with the winner's successor once it has committed.
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
		prefer := uuid.Nil
		if old.OrgID != nil {
			prefer = *old.OrgID
		}
		if s, ierr = a.issuer.issue(tx, u, org, prefer, next, old.FamilyID, client); ierr != nil {
			return ierr
		}
		return a.keepSuccessor(tx, &old, s.RefreshToken)
	})
	if lostRace {
		// The winner has committed (its row lock made the UPDATE above
		// wait): read the token again, now rotated, with its successor.
		if err := db.Where("id = ?", old.ID).First(&old).Error; err != nil {
			return nil, apperror.Wrap(err, "load refresh token")
		}
		return a.spent(ctx, &old, client)
	}
	return s, err
}

// maxSuccessorHops bounds how far down a line of descent a retry follows
// (one tab refreshed again within the grace period, and again...).
const maxSuccessorHops = 8

// secretPurposeSuccessor binds a kept successor to the token it replaced.
const secretPurposeSuccessor = "refresh-successor"

// keepSuccessor seals the successor of old into old's row, for a retry
// within the grace period.
func (a *Sessions) keepSuccessor(tx *gorm.DB, old *models.RefreshToken, successor string) error {
	if a.cfg.ReuseGrace <= 0 {
		return nil
	}
	sealed, err := a.cfg.MFAKeys.sealFor(secretPurposeSuccessor, successor, old.ID[:])
	if err != nil {
		return apperror.Wrap(err, "seal successor")
	}
	err = tx.Model(&models.RefreshToken{}).Where("id = ?", old.ID).
		Updates(map[string]any{"successor_secret": sealed, "successor_key_version": a.cfg.MFAKeys.Current}).Error
	if err != nil {
		return apperror.Wrap(err, "keep successor")
	}
	return nil
}

// spent answers a token that is no longer live: a session that was ended,
// a retry within the grace period, or reuse.
func (a *Sessions) spent(ctx context.Context, old *models.RefreshToken, client Client) (*Session, error) {
	if old.ReplacedBy == nil {
		// Revoked, never rotated: its session was ended (logout, reset,
		// an admin). A client that missed it, not a thief.
		return nil, ErrRefreshInvalid
	}
	if a.clock.Now().Sub(*old.RevokedAt) >= a.cfg.ReuseGrace {
		return nil, a.reuseDetected(ctx, old, client)
	}
	a.metrics.RefreshRetries.Inc()
	a.log.Info("refresh token presented again within the grace period", "user_id", old.UserID, "family_id", old.FamilyID, "ip", client.IP)
	return a.successor(ctx, old)
}

// successor is the pair a retry of rotated gets: the newest live token of
// its line, with a fresh access token for it.
func (a *Sessions) successor(ctx context.Context, rotated *models.RefreshToken) (*Session, error) {
	db := a.db.WithContext(ctx)
	cur := rotated
	for range maxSuccessorHops {
		if cur.ReplacedBy == nil {
			return nil, ErrRefreshInvalid // the session was ended since
		}
		if cur.SuccessorSecret == nil || cur.SuccessorKeyVersion == nil {
			return nil, errRefreshRotated // rotated before successors were kept
		}
		var next models.RefreshToken
		if err := db.Where("id = ?", *cur.ReplacedBy).First(&next).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return nil, ErrRefreshInvalid
			}
			return nil, apperror.Wrap(err, "load successor")
		}
		if next.RevokedAt != nil {
			cur = &next
			continue
		}
		now := a.clock.Now()
		if !now.Before(next.ExpiresAt) {
			return nil, errRefreshExpired
		}
		raw, err := a.cfg.MFAKeys.openFor(secretPurposeSuccessor, *cur.SuccessorSecret, *cur.SuccessorKeyVersion, cur.ID[:])
		if err != nil || hashToken(raw) != next.TokenHash {
			a.log.Warn("a kept refresh successor does not open; answering 409", "family_id", cur.FamilyID, "error", err)
			return nil, errRefreshRotated
		}
		u, err := a.sessionUser(ctx, &next)
		if err != nil {
			return nil, err
		}
		prefer := uuid.Nil
		if next.OrgID != nil {
			prefer = *next.OrgID
		}
		st, err := standing(db, u, uuid.Nil, prefer)
		if err != nil {
			return nil, err
		}
		access, err := a.tokens.IssueSession(u, st, next.FamilyID.String())
		if err != nil {
			return nil, apperror.Wrap(err, "sign access token")
		}
		return &Session{
			AccessToken: access, AccessExpiresIn: a.tokens.TTL(),
			RefreshToken: raw, RefreshExpiresIn: next.ExpiresAt.Sub(now), User: u, Standing: st, ID: next.FamilyID.String(),
		}, nil
	}
	return nil, errRefreshRotated
}

// sessionUser re-reads the user of rt; a deleted user's family is revoked.
func (a *Sessions) sessionUser(ctx context.Context, rt *models.RefreshToken) (*models.User, error) {
	u, err := a.users.Get(ctx, rt.UserID)
	if err != nil {
		var ae *apperror.Error
		if errors.As(err, &ae) && ae.Kind == apperror.NotFound {
			_ = a.issuer.revokeFamily(ctx, rt.FamilyID)
			return nil, ErrRefreshInvalid
		}
		return nil, err
	}
	return u, nil
}

func (a *Sessions) reuseDetected(ctx context.Context, rt *models.RefreshToken, client Client) error {
	a.metrics.RefreshReuse.Inc()
	a.log.Warn("security: refresh token reuse, revoking family",
		"event", "refresh_token_reuse", "user_id", rt.UserID, "family_id", rt.FamilyID, "ip", client.IP)
	if err := a.issuer.revokeFamily(ctx, rt.FamilyID); err != nil {
		return err
	}
	a.audit.RecordAlone(ctx, Event{Action: "auth.refresh_reuse", Outcome: Failure, Reason: "refresh_token_reused",
		TargetType: "user", TargetID: rt.UserID.String()})
	return errRefreshReused
}

// List lists userID's live sessions, most recently used first.
func (a *Sessions) List(ctx context.Context, userID uuid.UUID) ([]SessionInfo, error) {
	// A token whose account was deleted by hand (not through the API,
	// which ends its tokens) lists nothing: 401 account_not_found.
	if _, err := a.users.Current(ctx, userID); err != nil {
		return nil, err
	}
	var rows []models.RefreshToken
	now := a.clock.Now()
	// Every token of a family that has a live one: the first is the login,
	// the newest the last use.
	err := a.db.WithContext(ctx).Where("user_id = ? AND family_id IN (?)", userID,
		a.db.Model(&models.RefreshToken{}).Select("family_id").Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", userID, now)).
		Order("created_at, id").Find(&rows).Error
	if err != nil {
		return nil, apperror.Wrap(err, "list sessions")
	}
	byFamily := map[uuid.UUID]*SessionInfo{}
	var order []uuid.UUID
	for _, r := range rows {
		s, ok := byFamily[r.FamilyID]
		if !ok {
			s = &SessionInfo{ID: r.FamilyID, CreatedAt: r.CreatedAt}
			byFamily[r.FamilyID] = s
			order = append(order, r.FamilyID)
		}
		s.LastUsed, s.IP, s.UserAgent = r.CreatedAt, r.ClientIP, r.UserAgent
	}
	out := make([]SessionInfo, 0, len(order))
	for _, id := range order {
		out = append(out, *byFamily[id])
	}
	// Most recently used first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].LastUsed.After(out[j-1].LastUsed); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// EndSession revokes one of userID's sessions; its access tokens stop
// working at once.
func (a *Sessions) EndSession(ctx context.Context, userID, session uuid.UUID) error {
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.RefreshToken{}).
			Where("user_id = ? AND family_id = ? AND revoked_at IS NULL", userID, session).Update("revoked_at", a.clock.Now())
		if res.Error != nil {
			return apperror.Wrap(res.Error, "end session")
		}
		if res.RowsAffected == 0 {
			return errSessionUnknown
		}
		return a.audit.Record(ctx, tx, Event{Action: "session.revoked", TargetType: "session", TargetID: session.String()})
	})
	if err == nil {
		a.cfg.Ended.End(ctx, session.String())
	}
	return err
}

// EndAll revokes every session of userID (admins): every access
// token of the user stops working at once.
func (a *Sessions) EndAll(ctx context.Context, userID uuid.UUID) error {
	if _, err := a.users.Get(ctx, userID); err != nil {
		return err
	}
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := a.issuer.endSessions(tx, userID, ""); err != nil {
			return err
		}
		return a.audit.Record(ctx, tx, Event{Action: "session.revoked_all", TargetType: "user", TargetID: userID.String()})
	})
	if err == nil {
		a.cfg.Ended.EndUser(ctx, userID.String())
	}
	return err
}

// Logout scopes (POST /auth/logout).
const (
	LogoutLocal  = "local"  // this session (the refresh token's family)
	LogoutOthers = "others" // every other session of the same user
	LogoutGlobal = "global" // every session of the same user
)

// Logout ends sessions of the refresh token's owner as scope says,
// and their access tokens with them. An unknown token is not an error
// (logout is idempotent). Only a live refresh token speaks for other
// sessions: an old, rotated one (from a backup, a log, a stolen device)
// can end its own family, not every session of the account.
func (a *Sessions) Logout(ctx context.Context, raw, scope string) error {
	var rt models.RefreshToken
	err := a.db.WithContext(ctx).Where("token_hash = ?", hashToken(raw)).First(&rt).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil
	}
	if err != nil {
		return apperror.Wrap(err, "load refresh token")
	}
	switch scope {
	case LogoutOthers, LogoutGlobal:
		if rt.RevokedAt != nil || !a.clock.Now().Before(rt.ExpiresAt) {
			return ErrRefreshInvalid // a dead session cannot speak for the others
		}
		keep := ""
		if scope == LogoutOthers {
			keep = rt.FamilyID.String()
		}
		var ended []string
		err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			if ended, err = a.issuer.endSessions(tx, rt.UserID, keep); err != nil {
				return err
			}
			return a.audit.Record(ctx, tx, Event{Action: "auth.logout", Reason: scope, ActorType: "user", ActorID: rt.UserID.String(),
				TargetType: "user", TargetID: rt.UserID.String()})
		})
		if err != nil {
			return err
		}
		if scope == LogoutGlobal {
			a.cfg.Ended.EndUser(ctx, rt.UserID.String())
		} else {
			a.cfg.Ended.End(ctx, ended...)
		}
		return nil
	default:
		if err := a.issuer.revokeFamily(ctx, rt.FamilyID); err != nil {
			return err
		}
		a.audit.RecordAlone(ctx, Event{Action: "auth.logout", Reason: LogoutLocal, ActorType: "user", ActorID: rt.UserID.String(),
			TargetType: "session", TargetID: rt.FamilyID.String()})
		return nil
	}
}
