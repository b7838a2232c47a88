package services

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/cache"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/product"
)

// BrowserSessions stand behind cookie sessions. The cookie holds the
// session's refresh token (opaque, never a JWT); the access token it
// stands for is minted here, kept in this instance's memory for its
// lifetime and never sent to the browser, so every check a bearer token
// gets (expiry, ended sessions, role changes) applies unchanged.
type BrowserSessions struct {
	*accountDeps
	sessions *Sessions
	minted   *cache.Cache[string, string] // refresh-token hash -> access token
}

// NewBrowserSessions builds the cookie sessions of a.
func NewBrowserSessions(a *Accounts) *BrowserSessions {
	return &BrowserSessions{accountDeps: a.Sessions.accountDeps, sessions: a.Sessions,
		minted: cache.New[string, string](100_000, a.Sessions.clock)}
}

// Access is the access token of the session whose refresh token is raw:
// the one minted earlier while it lives, else a new one (a session whose
// token another tab rotated moments ago gets its successor's).
func (b *BrowserSessions) Access(ctx context.Context, raw string) (string, error) {
	h := hashToken(raw)
	if tok, ok := b.minted.Get(h); ok {
		return tok, nil
	}
	var rt models.RefreshToken
	err := b.db.WithContext(ctx).Where("token_hash = ?", h).First(&rt).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", ErrRefreshInvalid
	}
	if err != nil {
		return "", apperror.Wrap(err, "load session")
	}
	now := b.clock.Now()
	if rt.RevokedAt != nil {
		s, err := b.sessions.spent(ctx, &rt, Client{})
		if err != nil {
			return "", err
		}
		return s.AccessToken, nil
	}
	if !now.Before(rt.ExpiresAt) {
		return "", errRefreshExpired
	}
	u, err := b.sessions.sessionUser(ctx, &rt)
	if err != nil {
		return "", err
	}
	prefer := uuid.Nil
	if rt.OrgID != nil {
		prefer = *rt.OrgID
	}
	st, err := standing(b.db.WithContext(ctx), u, uuid.Nil, prefer)
	if err != nil {
		return "", err
	}
	tok, err := b.tokens.IssueSession(u, st, rt.FamilyID.String())
	if err != nil {
		return "", apperror.Wrap(err, "sign access token")
	}
	// Dropped a little before it expires, so no request carries a token
	// about to run out.
	b.minted.Put(h, tok, now.Add(b.tokens.TTL()*9/10))
	return tok, nil
}

// Forget drops the access token minted for raw: it was refused (a role
// change ended it), and the next Access mints one that says what is true
// now.
func (b *BrowserSessions) Forget(raw string) {
	b.minted.Put(hashToken(raw), "", b.clock.Now())
}

// CSRFToken is the CSRF token of session (a refresh-token family): an HMAC
// under MFA_KEY, so it survives the session's refreshes, cannot be made
// without the key, and is worth nothing for another session.
func (b *BrowserSessions) CSRFToken(session string) string {
	secret := b.cfg.MFAKeys.Secrets[b.cfg.MFAKeys.Current]
	key := sha256.Sum256(append([]byte(product.CryptoContext+" csrf\x00"), secret...))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CSRFValid reports whether token is session's CSRF token.
func (b *BrowserSessions) CSRFValid(session, token string) bool {
	return session != "" && token != "" && hmac.Equal([]byte(token), []byte(b.CSRFToken(session)))
}

// CheckCSRF checks token against the session whose refresh token is raw
// (refresh and logout, which run before any access token).
func (b *BrowserSessions) CheckCSRF(ctx context.Context, raw, token string) (bool, error) {
	var rt models.RefreshToken
	err := b.db.WithContext(ctx).Select("family_id").Where("token_hash = ?", hashToken(raw)).First(&rt).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, ErrRefreshInvalid
	}
	if err != nil {
		return false, apperror.Wrap(err, "load session")
	}
	return b.CSRFValid(rt.FamilyID.String(), token), nil
}
