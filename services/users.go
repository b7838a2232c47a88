package services

import (
	"context"
	"errors"
	"slices"
	"time"
	"unicode"

	"github.com/google/uuid"
	"gorm.io/gorm"

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
	errLastAdmin    = apperror.Define(apperror.Conflict, "last_admin", "This is the last admin of the default organization (the platform's); make another user admin first")
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
	Role            caller.Role // in the default organization
	Tier            caller.Tier
	EmailVerified   bool
}

// UserInOrg is a user with their role in one organization (for the admin
// routes, the default one; "" : not a member).
type UserInOrg struct {
	models.User
	Role caller.Role
}

// defaultRoles are the roles a user may hold in the default organization:
// it has no owners (the platform owns it).
func defaultRoles() []caller.Role { return caller.DefaultOrgRoles() }

func checkDefaultRole(r caller.Role) string {
	if !slices.Contains(defaultRoles(), r) {
		return "must be one of: " + caller.Join(defaultRoles(), ", ")
	}
	return ""
}

// Create validates and stores a user, a member of the default organization
// with in.Role. Registration has its own path (ORG_SIGNUP); this is for
// the CLI and the development routes.
func (s *Users) Create(ctx context.Context, in NewUser) (*UserInOrg, error) {
	email := NormalizeEmail(in.Email)
	details := map[string]string{}
	if msg := CheckEmail(email); msg != "" {
		details["email"] = msg
	}
	if msg := CheckPassword(in.Password); msg != "" {
		details["password"] = msg
	}
	if msg := checkDefaultRole(in.Role); msg != "" {
		details["role"] = msg
	}
	if !in.Tier.Valid() {
		details["tier"] = "must be one of: " + caller.Join(caller.Tiers(), ", ")
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
		ID: uuid.New(), Email: email, PasswordHash: string(hash), Tier: in.Tier,
		EmailVerified: in.EmailVerified, CreatedAt: now, UpdatedAt: now,
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(u).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return errEmailTaken
			}
			return apperror.Wrap(err, "insert user")
		}
		return joinDefault(tx, u.ID, in.Role, now)
	})
	if err != nil {
		return nil, err
	}
	return &UserInOrg{User: *u, Role: in.Role}, nil
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

// List returns one page of users, oldest first, each with their role in
// the default organization.
func (s *Users) List(ctx context.Context, p Page) (PageOf[UserInOrg], error) {
	page, err := listPage(s.db.WithContext(ctx), p, false, func(m *models.User) Cursor {
		return Cursor{CreatedAt: m.CreatedAt, ID: m.ID}
	})
	if err != nil {
		return PageOf[UserInOrg]{}, apperror.Wrap(err, "list users")
	}
	ids := make([]uuid.UUID, len(page.Items))
	for i, u := range page.Items {
		ids[i] = u.ID
	}
	var ms []models.Membership
	if err := s.db.WithContext(ctx).Where("org_id = ? AND user_id IN ?", models.DefaultOrgID, ids).Find(&ms).Error; err != nil {
		return PageOf[UserInOrg]{}, apperror.Wrap(err, "list roles")
	}
	roles := make(map[uuid.UUID]caller.Role, len(ms))
	for _, m := range ms {
		roles[m.UserID] = m.Role
	}
	out := PageOf[UserInOrg]{Items: make([]UserInOrg, len(page.Items)), Next: page.Next}
	for i, u := range page.Items {
		out.Items[i] = UserInOrg{User: u, Role: roles[u.ID]}
	}
	return out, nil
}

// DefaultRole is id's role in the default organization ("": not a member).
func (s *Users) DefaultRole(ctx context.Context, id uuid.UUID) (caller.Role, error) {
	return roleIn(s.db.WithContext(ctx), models.DefaultOrgID, id)
}

func roleIn(db *gorm.DB, org, user uuid.UUID) (caller.Role, error) {
	var roles []caller.Role
	if err := db.Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", org, user).Limit(1).Pluck("role", &roles).Error; err != nil {
		return "", apperror.Wrap(err, "load membership")
	}
	if len(roles) == 0 {
		return "", nil
	}
	return roles[0], nil
}

// UserChanges are the fields an admin may change; nil leaves a field alone.
type UserChanges struct {
	Role *caller.Role // in the default organization
	Tier *caller.Tier // the account's own
}

// Update changes a user's role in the default organization (joining it if
// need be) or their own tier. Access tokens already issued are refused
// from now on (they carry the old claims); the next refresh gives one with
// the new ones.
func (s *Users) Update(ctx context.Context, id uuid.UUID, ch UserChanges) (*UserInOrg, error) {
	details := map[string]string{}
	if ch.Role != nil {
		if msg := checkDefaultRole(*ch.Role); msg != "" {
			details["role"] = msg
		}
	}
	if ch.Tier != nil && !ch.Tier.Valid() {
		details["tier"] = "must be one of: " + caller.Join(caller.Tiers(), ", ")
	}
	if ch.Role == nil && ch.Tier == nil {
		details["body"] = "give role or tier"
	}
	if len(details) > 0 {
		return nil, apperror.Validation(details)
	}
	var out *UserInOrg
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		u, err := (&Users{db: tx, clock: s.clock}).Get(ctx, id)
		if err != nil {
			return err
		}
		ms, err := lockMembers(tx, models.DefaultOrgID)
		if err != nil {
			return err
		}
		var role caller.Role
		if m := findMember(ms, id); m != nil {
			role = m.Role
		}
		out = &UserInOrg{User: *u, Role: role}
		if ch.Role != nil && *ch.Role != role {
			if role.Manages() && !ch.Role.Manages() {
				if err := keepsAnOwner(models.DefaultOrgID, ms, id); err != nil {
					return err
				}
			}
			if err := joinDefault(tx, id, *ch.Role, s.clock.Now()); err != nil {
				return err
			}
			out.Role = *ch.Role
			if err := s.record(ctx, tx, Event{Action: "user.role_changed", Reason: string(role) + "->" + string(*ch.Role),
				OrgID: models.DefaultOrgID.String(), TargetType: "user", TargetID: id.String()}); err != nil {
				return err
			}
		}
		if ch.Tier != nil && *ch.Tier != u.Tier {
			before := u.Tier
			out.Tier, out.UpdatedAt = *ch.Tier, s.clock.Now()
			if err := tx.Model(&out.User).Select("tier", "updated_at").Updates(&out.User).Error; err != nil {
				return apperror.Wrap(err, "update user")
			}
			if err := s.record(ctx, tx, Event{Action: "user.tier_changed", Reason: string(before) + "->" + string(*ch.Tier),
				TargetType: "user", TargetID: id.String()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.ended.EndUser(ctx, id.String())
	return out, nil
}

func (s *Users) record(ctx context.Context, tx *gorm.DB, e Event) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.Record(ctx, tx, e)
}

// Delete removes a user and everything of theirs (projects, keys, clients,
// sessions, memberships: the foreign keys cascade), and refuses their
// access tokens at once. The default organization's last admin cannot be
// deleted, nor another organization's last owner while it has other
// members (409: transfer ownership or delete the organization first); an
// organization with no other member goes with its owner.
func (s *Users) Delete(ctx context.Context, id uuid.UUID) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := (&Users{db: tx, clock: s.clock}).Get(ctx, id); err != nil {
			return err
		}
		var mine []models.Membership
		if err := tx.Where("user_id = ?", id).Find(&mine).Error; err != nil {
			return apperror.Wrap(err, "load memberships")
		}
		for _, m := range mine {
			if !m.Role.Manages() {
				continue
			}
			ms, err := lockMembers(tx, m.OrgID)
			if err != nil {
				return err
			}
			if err := keepsAnOwner(m.OrgID, ms, id); err != nil {
				if len(ms) > 1 || m.OrgID == models.DefaultOrgID {
					return err
				}
				if err := tx.Delete(&models.Organization{}, "id = ?", m.OrgID).Error; err != nil {
					return apperror.Wrap(err, "delete organization")
				}
			}
		}
		if err := tx.Delete(&models.User{}, "id = ?", id).Error; err != nil {
			return apperror.Wrap(err, "delete user")
		}
		return s.record(ctx, tx, Event{Action: "user.deleted", TargetType: "user", TargetID: id.String()})
	})
	if err != nil {
		return err
	}
	s.ended.EndUser(ctx, id.String())
	return nil
}
