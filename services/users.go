package services

import (
	"context"
	"errors"
	"time"
	"unicode"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/cache"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/database/scan"
	"github.com/tollgate/tollgate/models"
)

// Password policy: at least 10 characters with upper case, lower
// case and a digit; at most 72 bytes, because bcrypt ignores the rest.
const (
	MinPasswordLength = 10
	MaxPasswordBytes  = 72
)

var (
	errUserNotFound = apperror.Define(apperror.NotFound, "user_not_found", "User not found")
	errEmailTaken   = apperror.Define(apperror.Conflict, "email_taken", "An account with this email already exists")
	errLastAdmin    = apperror.Define(apperror.Conflict, "last_admin", "This is the last admin; make another user admin first")
)

// Users holds the account rules shared by registration, the admin API and
// the `user create` command.
type Users struct {
	db     *gorm.DB
	clock  clock.Clock
	hasher *Hasher
	audit  *Audit                            // nil: changes are not audited (the CLI)
	ended  *EndedSessions                    // nil: tokens live out their TTL (the CLI)
	live   *cache.Cache[uuid.UUID, struct{}] // users seen to exist, for liveFor
}

// liveFor is how long a user seen to exist is taken to: a row deleted by
// hand (not through DELETE /admin/users/{id}, which ends its tokens at
// once) stops its tokens within this, at one primary-key read per user per
// period.
const liveFor = 5 * time.Second

// Live answers 401 account_not_found when id's account no longer exists.
// A user's requests read the database for it at most once per liveFor; a
// database fault answers as any other (503), as the request's own reads
// would.
func (s *Users) Live(ctx context.Context, id uuid.UUID) error {
	if _, ok := s.live.Get(id); ok {
		return nil
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&models.User{}).Where("id = ?", id).Limit(1).Count(&n).Error; err != nil {
		return apperror.Wrap(err, "check account")
	}
	if n == 0 {
		return errAccountGone
	}
	s.live.Put(id, struct{}{}, s.clock.Now().Add(liveFor))
	return nil
}

// WithEndedSessions voids a user's access tokens when the role or tier
// changes (they carry the old claims) or the user is deleted.
func (s *Users) WithEndedSessions(e *EndedSessions) *Users {
	s.ended = e
	return s
}

// WithAudit records role and tier changes in the audit log.
func (s *Users) WithAudit(a *Audit) *Users {
	s.audit = a
	return s
}

// NewUsers builds the user service.
func NewUsers(db *gorm.DB, clk clock.Clock, hasher *Hasher) *Users {
	return &Users{db: db, clock: clk, hasher: hasher, live: cache.New[uuid.UUID, struct{}](VerifiedCacheSize, clk)}
}

// CheckPassword reports a problem with a password, or "".
func CheckPassword(p string) string {
	if len(p) > MaxPasswordBytes {
		return "must be at most 72 bytes"
	}
	var upper, lower, digit bool
	n := 0
	for _, r := range p {
		n++
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		}
	}
	if n < MinPasswordLength || !upper || !lower || !digit {
		return "must be at least 10 characters and contain an upper-case letter, a lower-case letter and a digit"
	}
	if IsCommonPassword(p) {
		return "is one of the most common passwords, the first an attacker tries; choose another"
	}
	return ""
}

// NewUser is what Create needs.
type NewUser struct {
	Email, Password string
	Role            caller.Role
	Tier            caller.Tier
	EmailVerified   bool
}

// Create validates and stores a user. Registration always passes viewer/free
// and unverified; only the CLI makes verified admins.
func (s *Users) Create(ctx context.Context, in NewUser) (*models.User, error) {
	return s.create(ctx, s.db, in)
}

func (s *Users) create(ctx context.Context, db *gorm.DB, in NewUser) (*models.User, error) {
	email := NormalizeEmail(in.Email)
	details := map[string]string{}
	if msg := CheckEmail(email); msg != "" {
		details["email"] = msg
	}
	if msg := CheckPassword(in.Password); msg != "" {
		details["password"] = msg
	}
	if !in.Role.Valid() {
		details["role"] = "must be viewer, editor or admin"
	}
	if !in.Tier.Valid() {
		details["tier"] = "must be free, paid or enterprise"
	}
	if len(details) > 0 {
		return nil, apperror.Validation(details)
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	u := &models.User{
		ID: uuid.New(), Email: email, PasswordHash: string(hash), Role: in.Role, Tier: in.Tier,
		EmailVerified: in.EmailVerified, CreatedAt: now, UpdatedAt: now,
	}
	if err := db.WithContext(ctx).Create(u).Error; err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return nil, errEmailTaken
		}
		return nil, apperror.Wrap(err, "insert user")
	}
	return u, nil
}

// Current returns the user an access token was issued to; a deleted
// account is an authentication failure, not a missing resource.
func (s *Users) Current(ctx context.Context, id uuid.UUID) (*models.User, error) {
	u, err := s.Get(ctx, id)
	if errors.Is(err, errUserNotFound) {
		return nil, errAccountGone
	}
	return u, err
}

// Get returns a user by id.
func (s *Users) Get(ctx context.Context, id uuid.UUID) (*models.User, error) {
	var u models.User
	if err := scan.FindOne(s.db.WithContext(ctx).Where("id = ?", id), &u); err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errUserNotFound
		}
		return nil, apperror.Wrap(err, "load user")
	}
	return &u, nil
}

func (s *Users) byEmail(ctx context.Context, email string) (*models.User, error) {
	var u models.User
	err := s.db.WithContext(ctx).Where("lower(email) = ?", NormalizeEmail(email)).First(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load user by email")
	}
	return &u, nil
}

// List returns one page of users, oldest first.
func (s *Users) List(ctx context.Context, p Page) (PageOf[models.User], error) {
	page, err := listPage(s.db.WithContext(ctx), p, false, func(m *models.User) Cursor {
		return Cursor{CreatedAt: m.CreatedAt, ID: m.ID}
	})
	if err != nil {
		return page, apperror.Wrap(err, "list users")
	}
	return page, nil
}

// UserChanges are the fields an admin may change; nil leaves a field alone.
type UserChanges struct {
	Role *caller.Role
	Tier *caller.Tier
}

// Update changes a user's role or tier. Access tokens already issued are
// refused from now on (they carry the old claims); the next refresh gives
// one with the new ones.
func (s *Users) Update(ctx context.Context, id uuid.UUID, ch UserChanges) (*models.User, error) {
	details := map[string]string{}
	if ch.Role != nil && !ch.Role.Valid() {
		details["role"] = "must be viewer, editor or admin"
	}
	if ch.Tier != nil && !ch.Tier.Valid() {
		details["tier"] = "must be free, paid or enterprise"
	}
	if ch.Role == nil && ch.Tier == nil {
		details["body"] = "give role or tier"
	}
	if len(details) > 0 {
		return nil, apperror.Validation(details)
	}
	var u *models.User
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if u, err = (&Users{db: tx, clock: s.clock}).Get(ctx, id); err != nil {
			return err
		}
		before := *u
		if ch.Role != nil && u.Role == caller.Admin && *ch.Role != caller.Admin {
			if err := notLastAdmin(tx); err != nil {
				return err
			}
		}
		if ch.Role != nil {
			u.Role = *ch.Role
		}
		if ch.Tier != nil {
			u.Tier = *ch.Tier
		}
		u.UpdatedAt = s.clock.Now()
		if err := tx.Model(u).Select("role", "tier", "updated_at").Updates(u).Error; err != nil {
			return apperror.Wrap(err, "update user")
		}
		if s.audit != nil {
			if before.Role != u.Role {
				if err := s.audit.Record(ctx, tx, Event{Action: "user.role_changed", Reason: string(before.Role) + "->" + string(u.Role),
					TargetType: "user", TargetID: u.ID.String()}); err != nil {
					return err
				}
			}
			if before.Tier != u.Tier {
				if err := s.audit.Record(ctx, tx, Event{Action: "user.tier_changed", Reason: string(before.Tier) + "->" + string(u.Tier),
					TargetType: "user", TargetID: u.ID.String()}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.ended.EndUser(ctx, u.ID.String())
	return u, nil
}

// Delete removes a user and everything of theirs (projects, keys, clients,
// sessions: the foreign keys cascade), and refuses their access tokens at
// once. The last admin cannot be deleted.
func (s *Users) Delete(ctx context.Context, id uuid.UUID) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		u, err := (&Users{db: tx, clock: s.clock}).Get(ctx, id)
		if err != nil {
			return err
		}
		if u.Role == caller.Admin {
			if err := notLastAdmin(tx); err != nil {
				return err
			}
		}
		if err := tx.Delete(&models.User{}, "id = ?", id).Error; err != nil {
			return apperror.Wrap(err, "delete user")
		}
		if s.audit != nil {
			return s.audit.Record(ctx, tx, Event{Action: "user.deleted", TargetType: "user", TargetID: id.String()})
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.ended.EndUser(ctx, id.String())
	return nil
}

// notLastAdmin refuses, in tx, to lose an admin when only one is left. It
// locks every admin row first (PostgreSQL; SQLite transactions already take
// the write lock), so two admins demoting each other at once cannot both
// see the other still admin.
func notLastAdmin(tx *gorm.DB) error {
	q := tx.Model(&models.User{}).Where("role = ?", caller.Admin)
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var admins []uuid.UUID
	if err := q.Pluck("id", &admins).Error; err != nil {
		return apperror.Wrap(err, "count admins")
	}
	if len(admins) <= 1 {
		return errLastAdmin
	}
	return nil
}
