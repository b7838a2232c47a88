package services

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/product"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/ratelimit"
)

// API key format: tg_<env>_<32 base62 random><6 base62 CRC32>, e.g.
// tg_live_3xAmP1e...Qz09aB. The prefix tells a key from a JWT and names the
// environment; 32 base62 characters carry about 190 bits; the CRC32 of
// everything before it lets a mistyped key be refused before any lookup and
// lets secret scanners recognise real keys.
const (
	apiKeyPrefix    = product.KeyPrefix
	apiKeyRandomLen = 32
	apiKeyCRCLen    = 6
	apiKeyStartLen  = 12 // shown in lists: "tg_live_3xAm"
	base62          = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

var (
	// One answer for a key that is malformed, unknown, revoked, expired or
	// used from a disallowed address: no hint which.
	errInvalidAPIKey = apperror.Define(apperror.Unauthenticated, "invalid_api_key", "Invalid API key")
	errAPIKeyGone    = apperror.Define(apperror.NotFound, "api_key_not_found", "API key not found")
	errAPIKeyDead    = apperror.Define(apperror.Conflict, "api_key_inactive", "This API key is revoked or expired")
)

// IsAPIKey reports whether s looks like an API key rather than a JWT.
func IsAPIKey(s string) bool { return strings.HasPrefix(s, apiKeyPrefix) }

// checkCredential checks what every credential has: a name (returned
// trimmed) and scopes within what the owner's role implies.
func checkCredential(name string, scopes []caller.Scope, owner *caller.Caller) (string, map[string]string) {
	details := map[string]string{}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		details["name"] = "must be 1 to 100 characters"
	}
	if len(scopes) == 0 {
		details["scopes"] = "must name at least one scope"
	} else if !caller.Subset(scopes, owner.Role.Scopes()) {
		details["scopes"] = "may only hold scopes your role has: " + caller.FormatScopes(owner.Role.Scopes())
	}
	return name, details
}

var errTooManyKeys = apperror.Define(apperror.Conflict, "api_key_limit", "Too many live API keys: revoke one first")

// APIKeyConfig holds the API key rules.
type APIKeyConfig struct {
	Env           string        // "live" in production, "test" otherwise
	MaxLifetime   time.Duration // 0: keys may live forever
	RotationGrace time.Duration // how long a rotated-out secret keeps working by default
	Peppers       Peppers
	// SharesUserLimit counts a key's requests in its owner's bucket.
	SharesUserLimit bool
	// MaxPerUser caps the live (not revoked, not expired) keys of a user.
	MaxPerUser int
	// Tiers are the per-tier limits a key's own limit must stay under.
	Tiers    map[string]ratelimit.Policy
	Fallback ratelimit.Policy
}

// APIKeys holds the API key rules: creation within the owner's scopes,
// verification, rotation, revocation and batched last-use times.
type APIKeys struct {
	db    *gorm.DB
	clock clock.Clock
	log   *slog.Logger
	audit *Audit
	cfg   APIKeyConfig

	mu   sync.Mutex
	used map[uuid.UUID]time.Time // last use not yet written
}

// NewAPIKeys builds the API key service.
func NewAPIKeys(db *gorm.DB, clk clock.Clock, log *slog.Logger, audit *Audit, cfg APIKeyConfig) *APIKeys {
	return &APIKeys{db: db, clock: clk, log: log, audit: audit, cfg: cfg, used: map[uuid.UUID]time.Time{}}
}

// NewAPIKey is what Create needs.
type NewAPIKey struct {
	Name         string
	Scopes       []caller.Scope
	ExpiresAt    *time.Time
	AllowedCIDRs []string
	RateLimit    string
}

// newSecret makes a key: prefix, random part and checksum.
func (s *APIKeys) newSecret() (string, error) {
	random, err := randomBase62(apiKeyRandomLen)
	if err != nil {
		return "", err
	}
	body := apiKeyPrefix + s.cfg.Env + "_" + random
	return body + checksum(body), nil
}

func checksum(body string) string {
	n := crc32.ChecksumIEEE([]byte(body))
	out := make([]byte, apiKeyCRCLen)
	for i := apiKeyCRCLen - 1; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out)
}

// wellFormed checks prefix, environment, length, alphabet and checksum:
// no database work for a mistyped or foreign key.
func (s *APIKeys) wellFormed(raw string) bool {
	head := apiKeyPrefix + s.cfg.Env + "_"
	if len(raw) != len(head)+apiKeyRandomLen+apiKeyCRCLen || !strings.HasPrefix(raw, head) {
		return false
	}
	for i := len(head); i < len(raw); i++ {
		if strings.IndexByte(base62, raw[i]) < 0 {
			return false
		}
	}
	body := raw[:len(raw)-apiKeyCRCLen]
	return hmac.Equal([]byte(checksum(body)), []byte(raw[len(body):]))
}

// Create makes a key for owner (a user) and returns it with its secret,
// which is never available again.
func (s *APIKeys) Create(ctx context.Context, owner *caller.Caller, in NewAPIKey, ip string) (*models.APIKey, string, error) {
	now := s.clock.Now()
	var details map[string]string
	in.Name, details = checkCredential(in.Name, in.Scopes, owner)
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		details["expires_at"] = "must be in the future"
	}
	if s.cfg.MaxLifetime > 0 {
		limit := now.Add(s.cfg.MaxLifetime)
		if in.ExpiresAt == nil {
			in.ExpiresAt = &limit
		} else if in.ExpiresAt.After(limit) {
			details["expires_at"] = fmt.Sprintf("must be at most %s away", s.cfg.MaxLifetime)
		}
	}
	cidrs, msg := normalizeCIDRs(in.AllowedCIDRs)
	if msg != "" {
		details["allowed_cidrs"] = msg
	}
	if in.RateLimit != "" {
		if msg := s.checkLimit(owner.Tier, in.RateLimit); msg != "" {
			details["rate_limit"] = msg
		}
	}
	if len(details) > 0 {
		return nil, "", apperror.Validation(details)
	}
	secret, err := s.newSecret()
	if err != nil {
		return nil, "", apperror.Wrap(err, "make api key")
	}
	k := &models.APIKey{
		ID: uuid.New(), UserID: owner.ID, OrgID: owner.OrgID, Name: in.Name, Start: secret[:apiKeyStartLen],
		Secret: s.cfg.Peppers.secret(secret), Scopes: caller.FormatScopes(caller.SortScopes(slices.Clone(in.Scopes))), AllowedCIDRs: strings.Join(cidrs, ","),
		RateLimit: in.RateLimit, ExpiresAt: in.ExpiresAt, CreatedAt: now,
	}
	err = s.audit.Do(ctx, s.db, keyEvent("api_key.created", k), func(tx *gorm.DB) error {
		// The cap counts the owner's keys in every organization.
		return acrossOrgs(ctx, tx, func(tx *gorm.DB) error { return s.insert(tx, owner.ID, now, k) })
	})
	if err != nil {
		if errors.Is(err, gorm.ErrForeignKeyViolated) {
			return nil, "", errAccountGone
		}
		if _, ok := apperror.As(err); ok {
			return nil, "", err
		}
		return nil, "", apperror.Wrap(err, "insert api key")
	}
	s.event("api_key.created", owner, k, ip)
	return k, secret, nil
}

// insert stores k unless its owner is gone or has the most live keys allowed.
func (s *APIKeys) insert(tx *gorm.DB, owner uuid.UUID, now time.Time, k *models.APIKey) error {
	// The owner's row, locked (PostgreSQL; SQLite transactions hold the
	// write lock already), serialises concurrent creations, so the cap
	// holds exactly.
	q := tx.Model(&models.User{}).Where("id = ?", owner)
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var ids []uuid.UUID
	if err := q.Pluck("id", &ids).Error; err != nil {
		return err
	}
	if len(ids) == 0 {
		return errAccountGone
	}
	var live int64
	if err := tx.Model(&models.APIKey{}).Where("user_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", owner, now).
		Count(&live).Error; err != nil {
		return err
	}
	if s.cfg.MaxPerUser > 0 && live >= int64(s.cfg.MaxPerUser) {
		return errTooManyKeys.WithMessage(fmt.Sprintf("At most %d live API keys per user: revoke one first", s.cfg.MaxPerUser))
	}
	return tx.Create(k).Error
}

// normalizeCIDRs accepts addresses and ranges and returns them as ranges.
func normalizeCIDRs(in []string) ([]string, string) {
	out := make([]string, 0, len(in))
	for _, c := range in {
		c = strings.TrimSpace(c)
		if ip := net.ParseIP(c); ip != nil {
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			c = (&net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}).String()
		}
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Sprintf("%q is not an IP address or CIDR range such as 203.0.113.0/24", c)
		}
		out = append(out, n.String())
	}
	if len(out) > 20 {
		return nil, "at most 20 ranges"
	}
	return out, ""
}

// checkLimit reports a problem with a key's own limit: it must parse and
// allow no more than the owner's tier does.
func (s *APIKeys) checkLimit(tier caller.Tier, raw string) string {
	p, err := ratelimit.ParsePolicy("key", raw)
	if err != nil {
		return "must look like 100/1m"
	}
	t, ok := s.cfg.Tiers[string(tier)]
	if !ok {
		t = s.cfg.Fallback
	}
	// p.Limit/p.Window <= t.Limit/t.Window, without division.
	if p.Limit*int64(t.Window) > t.Limit*int64(p.Window) || p.Window > t.Window*24 {
		return fmt.Sprintf("must allow no more than your tier's %s", t)
	}
	return ""
}

// KeyFilter narrows a key list.
type KeyFilter struct {
	UserID *uuid.UUID // nil: every user's (admins)
	OrgID  *uuid.UUID // nil: every organization's (admins)
}

// List returns one page of keys, newest first. Pending last-use times are
// written first, so the list is exact although requests do not write.
func (s *APIKeys) List(ctx context.Context, f KeyFilter, p Page) (PageOf[models.APIKey], error) {
	s.Flush(ctx)
	var page PageOf[models.APIKey]
	list := func(q *gorm.DB) (err error) {
		if f.UserID != nil {
			q = q.Where("user_id = ?", *f.UserID)
		}
		if f.OrgID != nil {
			q = q.Where("org_id = ?", *f.OrgID)
		}
		page, err = listPage(q, p, true, func(m *models.APIKey) Cursor { return Cursor{CreatedAt: m.CreatedAt, ID: m.ID} })
		return err
	}
	var err error
	if f.OrgID != nil {
		err = inOrg(ctx, s.db, *f.OrgID, list)
	} else {
		err = acrossOrgs(ctx, s.db, list)
	}
	if err != nil {
		return page, apperror.Wrap(err, "list api keys")
	}
	return page, nil
}

// find loads a key the caller may manage: its own, or any for an admin
// acting as one. Others' keys are simply not found.
func (s *APIKeys) find(ctx context.Context, who *caller.Caller, id uuid.UUID, anyOwner bool) (*models.APIKey, error) {
	var k models.APIKey
	take := func(q *gorm.DB) error { return q.Where("id = ?", id).Take(&k).Error }
	var err error
	if anyOwner {
		err = acrossOrgs(ctx, s.db, take)
	} else {
		err = inOrg(ctx, s.db, who.OrgID, func(q *gorm.DB) error { return take(q.Where("user_id = ? AND org_id = ?", who.ID, who.OrgID)) })
	}
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errAPIKeyGone
		}
		return nil, apperror.Wrap(err, "load api key")
	}
	return &k, nil
}

// Revoke ends a key at once (its rotated-out secret too). anyOwner lets
// an admin revoke anyone's. Revoking twice is not an error.
func (s *APIKeys) Revoke(ctx context.Context, who *caller.Caller, id uuid.UUID, anyOwner bool, ip string) error {
	k, err := s.find(ctx, who, id, anyOwner)
	if err != nil {
		return err
	}
	if k.RevokedAt != nil {
		return nil
	}
	now := s.clock.Now()
	if err := s.audit.Do(ctx, s.db, keyEvent("api_key.revoked", k), func(tx *gorm.DB) error {
		return inOrg(ctx, tx, k.OrgID, func(tx *gorm.DB) error {
			return tx.Model(k).Updates(map[string]any{"revoked_at": now, "previous_expires_at": nil}).Error
		})
	}); err != nil {
		return apperror.Wrap(err, "revoke api key")
	}
	k.RevokedAt = &now
	s.event("api_key.revoked", who, k, ip)
	return nil
}

// Rotate gives a key a new secret; the old one keeps working for grace
// (0: the configured default), then dies. Only the owner rotates.
func (s *APIKeys) Rotate(ctx context.Context, who *caller.Caller, id uuid.UUID, grace *time.Duration, ip string) (*models.APIKey, string, error) {
	g, err := rotationGrace(grace, s.cfg.RotationGrace)
	if err != nil {
		return nil, "", err
	}
	k, err := s.find(ctx, who, id, false)
	if err != nil {
		return nil, "", err
	}
	now := s.clock.Now()
	if k.RevokedAt != nil || (k.ExpiresAt != nil && !k.ExpiresAt.After(now)) {
		return nil, "", errAPIKeyDead
	}
	secret, err := s.newSecret()
	if err != nil {
		return nil, "", apperror.Wrap(err, "make api key")
	}
	k.Start = secret[:apiKeyStartLen]
	if err := rotateSecret(ctx, s.db, s.audit, s.cfg.Peppers, k.OrgID, k, &k.Secret, secret, now.Add(g), keyEvent("api_key.rotated", k), "start"); err != nil {
		return nil, "", apperror.Wrap(err, "rotate api key")
	}
	s.event("api_key.rotated", who, k, ip)
	return k, secret, nil
}

// keyRow is a key with its owner's current standing in its organization.
type keyRow struct {
	models.APIKey
	OwnerStanding
}

// Authenticate turns a presented key into its caller: the owner as it is
// now, with the key's scopes cut to what the owner's role still allows.
func (s *APIKeys) Authenticate(ctx context.Context, raw string, ip net.IP) (*caller.Caller, error) {
	if !s.wellFormed(raw) {
		return nil, errInvalidAPIKey
	}
	now := s.clock.Now()
	for _, v := range s.cfg.Peppers.versions() {
		h := s.cfg.Peppers.hash(v, raw)
		var rows []keyRow
		// The key names its organization: the one lookup across them all.
		err := acrossOrgs(ctx, s.db, func(tx *gorm.DB) error {
			return tx.Table("api_keys").
				Select("api_keys.*, "+ownerColumns).Scopes(ownerJoins("api_keys", "user_id")).
				Where("(api_keys.secret_hash = ? AND api_keys.pepper_version = ?) OR (api_keys.previous_hash = ? AND api_keys.previous_pepper = ?)", h, v, h, v).
				Limit(1).Scan(&rows).Error
		})
		if err != nil {
			return nil, apperror.Wrap(err, "look up api key")
		}
		if len(rows) == 0 {
			continue
		}
		k := &rows[0]
		current, previous := s.cfg.Peppers.check(k.Secret, raw, now)
		switch {
		case !current && !previous,
			k.RevokedAt != nil,
			k.ExpiresAt != nil && !now.Before(*k.ExpiresAt),
			!allowed(k.AllowedCIDRs, ip):
			return nil, errInvalidAPIKey
		}
		if current && k.PepperVersion != s.cfg.Peppers.Current {
			if err := s.cfg.Peppers.moveToCurrent(ctx, s.db, &models.APIKey{}, k.OrgID, k.ID, raw); err != nil {
				s.log.Warn("api key: moving to the current pepper failed", "key_id", k.ID, "error", err)
			}
		}
		s.touch(k.ID, now)
		scopes, _, _ := caller.ParseScopes(k.Scopes)
		who := k.caller(caller.APIKey, k.UserID, k.OrgID, scopes)
		who.TokenID, who.Bucket = k.ID.String(), "api_key:"+k.ID.String()
		if s.cfg.SharesUserLimit {
			who.Bucket = ""
		}
		if p, err := ratelimit.ParsePolicy("key", k.RateLimit); err == nil && k.RateLimit != "" {
			who.RateLimit = &caller.Limit{Requests: p.Limit, Per: p.Window}
		}
		return who, nil
	}
	return nil, errInvalidAPIKey
}

func allowed(cidrs string, ip net.IP) bool {
	if cidrs == "" {
		return true
	}
	for _, c := range strings.Split(cidrs, ",") {
		if _, n, err := net.ParseCIDR(c); err == nil && ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// touch notes a use; Flush writes them, so a busy key costs no write per
// request.
func (s *APIKeys) touch(id uuid.UUID, at time.Time) {
	s.mu.Lock()
	s.used[id] = at
	s.mu.Unlock()
}

// Flush writes pending last-use times (one UPDATE per key used since the
// last flush). The server calls it every minute and on shutdown.
func (s *APIKeys) Flush(ctx context.Context) {
	s.mu.Lock()
	pending := s.used
	s.used = map[uuid.UUID]time.Time{}
	s.mu.Unlock()
	for id, at := range pending {
		err := acrossOrgs(ctx, s.db, func(tx *gorm.DB) error {
			return tx.Model(&models.APIKey{}).
				Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, at).Update("last_used_at", at).Error
		})
		if err != nil {
			s.log.Warn("api key: writing last use failed", "key_id", id, "error", err)
		}
	}
}

// Every flushes last-use times every interval until ctx ends, then once more.
func (s *APIKeys) Every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.Flush(ctx)
		}
	}
}

// event logs a security event: who did what to which key, from where.
// The key's secret is never logged.
func (s *APIKeys) event(action string, who *caller.Caller, k *models.APIKey, ip string) {
	s.log.Info("security event", "event", action, "actor_type", who.Kind, "actor_id", who.ID, "key_id", k.ID, "key_owner", k.UserID, "ip", ip)
}

func keyEvent(action string, k *models.APIKey) Event {
	return Event{Action: action, TargetType: "api_key", TargetID: k.ID.String()}
}
