package services

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

// Linking a provider to the signed-in account (a person who registered
// with a password adds "Sign in with Google"): whatever address the
// provider gives, since the person proves both sides. The front end starts
// it with the person's login and a PKCE challenge, the browser goes through
// the provider, and the front end posts the one-time code back with its
// verifier and the same login. A link needs a fresh login: a stolen access
// token alone cannot attach the thief's Google account as a way in.

var (
	errLinkChallenge = apperror.Define(apperror.Invalid, "code_challenge_required", "A link needs code_challenge: the base64url SHA-256 of a verifier the front end keeps")
	errLoginNotFresh = apperror.Define(apperror.Forbidden, "reauthentication_required", "Log in again (within the last 10 minutes) to link a sign-in")
	errIdentityInUse = apperror.Define(apperror.Conflict, "identity_in_use", "That provider account is already linked to another account")
)

// linkFreshness is how recent the login must be that starts or finishes a
// link.
const linkFreshness = 10 * time.Minute

// fresh checks that who's session began (its first refresh token) within
// linkFreshness.
func (s *Federation) fresh(ctx context.Context, who *caller.Caller) error {
	sid, err := uuid.Parse(who.SessionID)
	if err != nil {
		return errLoginNotFresh
	}
	var started []time.Time
	err = s.db.WithContext(ctx).Model(&models.RefreshToken{}).Where("family_id = ? AND user_id = ?", sid, who.ID).
		Order("created_at").Limit(1).Pluck("created_at", &started).Error
	if err != nil {
		return apperror.Wrap(err, "load session")
	}
	if len(started) == 0 || s.clock.Now().Sub(started[0]) > linkFreshness {
		return errLoginNotFresh
	}
	return nil
}

// StartLink begins linking provider to who; the sign-in ends at
// redirectURI with a code for CompleteLink.
func (s *Federation) StartLink(ctx context.Context, who *caller.Caller, in StartRequest) (string, error) {
	if in.CodeChallenge == "" {
		return "", errLinkChallenge
	}
	if err := s.fresh(ctx, who); err != nil {
		return "", err
	}
	st, err := s.start(ctx, in, &who.ID)
	if err != nil {
		return "", err
	}
	return st.AuthURL, nil
}

// CompleteLink links the identity a link's code carries to who.
func (s *Federation) CompleteLink(ctx context.Context, who *caller.Caller, code, verifier string) (*models.Identity, error) {
	if err := s.fresh(ctx, who); err != nil {
		return nil, err
	}
	oc, err := s.claimCode(ctx, code, verifier, true)
	if err != nil {
		return nil, err
	}
	if oc.UserID != who.ID {
		return nil, errOAuthCodeInvalid // another person's link: one sent this front end a crafted URL
	}
	now := s.clock.Now()
	id := &models.Identity{ID: uuid.New(), UserID: who.ID, Provider: oc.Provider, Subject: oc.Subject, Email: oc.Email,
		EmailVerified: oc.EmailVerified, CreatedAt: now, LastUsedAt: now}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var have models.Identity
		err := tx.Where("provider = ? AND subject = ?", oc.Provider, oc.Subject).Take(&have).Error
		switch {
		case err == nil && have.UserID == who.ID:
			id = &have // linked already: nothing to do
			return nil
		case err == nil:
			return errIdentityInUse
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return apperror.Wrap(err, "load identity")
		}
		if err := tx.Create(id).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return errIdentityInUse
			}
			return apperror.Wrap(err, "insert identity")
		}
		return s.audit.Record(ctx, tx, Event{Action: "identity.linked", Reason: oc.Provider, ActorType: "user", ActorID: who.ID.String(),
			TargetType: "user", TargetID: who.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	return id, nil
}
