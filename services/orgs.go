package services

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/mail"
	"github.com/tollgate/tollgate/models"
)

var (
	errOrgNotFound      = apperror.Define(apperror.NotFound, "org_not_found", "Organization not found")
	errNoOrganization   = apperror.Define(apperror.Forbidden, "no_organization", "You belong to no organization: create one or accept an invitation, then refresh your token")
	errMemberNotFound   = apperror.Define(apperror.NotFound, "member_not_found", "Member not found")
	errLastOwner        = apperror.Define(apperror.Conflict, "last_owner", "This is the organization's last owner; make another member owner first")
	errSlugTaken        = apperror.Define(apperror.Conflict, "slug_taken", "An organization with this slug already exists")
	errDefaultOrg       = apperror.Define(apperror.Conflict, "default_organization", "The default organization cannot be deleted, left by its last admin or owned; it belongs to the platform")
	errAlreadyMember    = apperror.Define(apperror.Conflict, "already_member", "You are already a member of this organization")
	errInvitationGone   = apperror.Define(apperror.NotFound, "invitation_not_found", "Invitation not found")
	errInvitationBad    = apperror.Define(apperror.Invalid, "invitation_invalid", "This invitation is not valid: it was used, revoked or never existed")
	errInvitationOld    = apperror.Define(apperror.Invalid, "invitation_expired", "This invitation has expired; ask for a new one")
	errInvitationOther  = apperror.Define(apperror.Forbidden, "invitation_email_mismatch", "This invitation is for another address; sign in with the invited, verified address")
	errOrgCreateClosed  = apperror.Define(apperror.Forbidden, "org_creation_closed", "Organizations are made by the platform's operators here (ORG_SIGNUP=invite-only)")
	errOwnersOnly       = apperror.Define(apperror.Forbidden, "owner_required", "Only an owner may do this")
	errTierPlatformOnly = apperror.Define(apperror.Forbidden, "tier_platform_only", "An organization's tier is set by the platform's operators")
)

// Sign-up policies (ORG_SIGNUP): what registration does with a new account.
const (
	SignupJoinDefault = "join-default" // joins the default organization as viewer (single tenant)
	SignupCreateOwn   = "create-own"   // gets an organization of its own, as owner (SaaS)
	SignupInviteOnly  = "invite-only"  // joins nothing until it accepts an invitation
)

// OrgsConfig are the organization rules from configuration.
type OrgsConfig struct {
	Signup        string
	InvitationTTL time.Duration
	BaseURL       string
	// Ended voids a member's access tokens when their role changes or they
	// leave (nil: tokens live out their TTL).
	Ended *EndedSessions
}

// Orgs holds the tenant rules: organizations, memberships, invitations, and
// the standing (organization, role, tier) a token is issued with.
type Orgs struct {
	db     *gorm.DB
	clock  clock.Clock
	audit  *Audit
	outbox *Outbox
	cfg    OrgsConfig
}

// NewOrgs builds the organization service.
func NewOrgs(db *gorm.DB, clk clock.Clock, audit *Audit, outbox *Outbox, cfg OrgsConfig) *Orgs {
	if cfg.Signup == "" {
		cfg.Signup = SignupJoinDefault
	}
	return &Orgs{db: db, clock: clk, audit: audit, outbox: outbox, cfg: cfg}
}

// Standing is a user's place in one organization, as a token carries it.
type Standing struct {
	OrgID   uuid.UUID   // uuid.Nil: no organization
	Role    caller.Role // in OrgID
	Tier    caller.Tier // the organization's, else the user's own
	OrgTier caller.Tier // the organization's own ("": none)
	// Platform: an owner or admin of the default organization.
	Platform bool
}

type membershipRow struct {
	OrgID     uuid.UUID
	Role      caller.Role
	Tier      *caller.Tier
	CreatedAt time.Time
}

// standing resolves u's standing, in one query: in want when set (404 if
// not a member), else in prefer (the session's organization) while u is
// still in it, else the default organization, else the oldest membership.
func standing(db *gorm.DB, u *models.User, want, prefer uuid.UUID) (Standing, error) {
	var rows []membershipRow
	err := db.Table("memberships").Select("memberships.org_id, memberships.role, organizations.tier, memberships.created_at").
		Joins("JOIN organizations ON organizations.id = memberships.org_id").
		Where("memberships.user_id = ?", u.ID).Order("memberships.created_at, memberships.org_id").Scan(&rows).Error
	if err != nil {
		return Standing{}, apperror.Wrap(err, "load memberships")
	}
	st := Standing{Tier: u.Tier}
	pick := -1
	for i, r := range rows {
		if r.OrgID == models.DefaultOrgID && r.Role.Manages() {
			st.Platform = true
		}
		switch {
		case want != uuid.Nil:
			if r.OrgID == want {
				pick = i
			}
		case r.OrgID == prefer:
			pick = i
		case pick < 0 || (r.OrgID == models.DefaultOrgID && rows[pick].OrgID != prefer):
			pick = i
		}
	}
	if want != uuid.Nil && pick < 0 {
		return Standing{}, errOrgNotFound
	}
	if pick < 0 {
		return st, nil
	}
	r := rows[pick]
	st.OrgID, st.Role = r.OrgID, r.Role
	if r.Tier != nil {
		st.Tier, st.OrgTier = *r.Tier, *r.Tier
	}
	return st, nil
}

// orgOf is the organization an org-scoped operation runs in: the caller's.
func orgOf(who *caller.Caller) (uuid.UUID, error) {
	if who.OrgID == uuid.Nil {
		return uuid.Nil, errNoOrganization
	}
	return who.OrgID, nil
}

// OrgWithRole is an organization with the caller's role in it.
type OrgWithRole struct {
	models.Organization
	Role caller.Role
}

var (
	slugRE    = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$`)
	notSlugRE = regexp.MustCompile(`[^a-z0-9]+`)
)

// CheckSlug reports a problem with a slug, or "".
func CheckSlug(s string) string {
	if !slugRE.MatchString(s) {
		return "must be 1 to 40 lower-case letters, digits and inner hyphens"
	}
	return ""
}

// Create makes an organization with who as its owner; its tier is free.
func (s *Orgs) Create(ctx context.Context, who *caller.Caller, name, slug string) (*OrgWithRole, error) {
	if s.cfg.Signup == SignupInviteOnly && !who.Platform {
		return nil, errOrgCreateClosed
	}
	var out *OrgWithRole
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		out, err = s.create(ctx, tx, who.ID, name, slug)
		return err
	})
	// The creator's tokens stay: they act where they did until they
	// switch (POST /auth/refresh with org_id).
	return out, err
}

func (s *Orgs) create(ctx context.Context, tx *gorm.DB, owner uuid.UUID, name, slug string) (*OrgWithRole, error) {
	now := s.clock.Now()
	free := caller.Free
	o := models.Organization{ID: uuid.New(), Name: name, Slug: slug, Tier: &free, CreatedAt: now, UpdatedAt: now}
	if err := tx.Create(&o).Error; err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return nil, errSlugTaken
		}
		return nil, apperror.Wrap(err, "insert organization")
	}
	if err := tx.Create(&models.Membership{OrgID: o.ID, UserID: owner, Role: caller.Owner, CreatedAt: now}).Error; err != nil {
		if errors.Is(err, gorm.ErrForeignKeyViolated) {
			return nil, errAccountGone
		}
		return nil, apperror.Wrap(err, "insert membership")
	}
	if err := s.audit.Record(ctx, tx, Event{Action: "org.created", OrgID: o.ID.String(), TargetType: "organization", TargetID: o.ID.String()}); err != nil {
		return nil, err
	}
	return &OrgWithRole{Organization: o, Role: caller.Owner}, nil
}

// ownOrgFor makes a new account's own organization (ORG_SIGNUP=create-own),
// named after the address, with a slug made unique by the user id.
func (s *Orgs) ownOrgFor(ctx context.Context, tx *gorm.DB, u *models.User) error {
	local, _, _ := strings.Cut(u.Email, "@")
	slug := strings.Trim(notSlugRE.ReplaceAllString(strings.ToLower(local), "-"), "-")
	if len(slug) > 27 {
		slug = strings.Trim(slug[:27], "-")
	}
	if slug == "" {
		slug = "org"
	}
	slug += "-" + u.ID.String()[:12]
	_, err := s.create(ctx, tx, u.ID, CleanText(local, 100)+"'s organization", slug)
	return err
}

// joinOnSignup gives a new account what ORG_SIGNUP says, in tx.
func (s *Orgs) joinOnSignup(ctx context.Context, tx *gorm.DB, u *models.User) error {
	switch s.cfg.Signup {
	case SignupCreateOwn:
		return s.ownOrgFor(ctx, tx, u)
	case SignupInviteOnly:
		return nil
	default:
		return joinDefault(tx, u.ID, caller.Viewer, s.clock.Now())
	}
}

func joinDefault(tx *gorm.DB, user uuid.UUID, role caller.Role, now time.Time) error {
	err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "org_id"}, {Name: "user_id"}}, DoUpdates: clause.AssignmentColumns([]string{"role"})}).
		Create(&models.Membership{OrgID: models.DefaultOrgID, UserID: user, Role: role, CreatedAt: now}).Error
	if err != nil {
		return apperror.Wrap(err, "join the default organization")
	}
	return nil
}

// List returns one page of the organizations who belongs to, oldest first.
func (s *Orgs) List(ctx context.Context, who *caller.Caller, p Page) (PageOf[OrgWithRole], error) {
	q := s.db.WithContext(ctx).Table("organizations").Select("organizations.*, memberships.role").
		Joins("JOIN memberships ON memberships.org_id = organizations.id AND memberships.user_id = ?", who.ID)
	page, err := listPageOn(q, p, false, "organizations.created_at", "organizations.id", func(m *OrgWithRole) Cursor {
		return Cursor{CreatedAt: m.CreatedAt, ID: m.ID}
	})
	if err != nil {
		return page, apperror.Wrap(err, "list organizations")
	}
	return page, nil
}

// member loads org and who's role in it, in db: 404 when who is not a
// member (platform operators see every organization, as admins).
func (s *Orgs) member(ctx context.Context, db *gorm.DB, who *caller.Caller, org uuid.UUID) (*OrgWithRole, error) {
	var rows []OrgWithRole
	err := db.WithContext(ctx).Table("organizations").Select("organizations.*, COALESCE(memberships.role, '') AS role").
		Joins("LEFT JOIN memberships ON memberships.org_id = organizations.id AND memberships.user_id = ?", who.ID).
		Where("organizations.id = ?", org).Limit(1).Scan(&rows).Error
	if err != nil {
		return nil, apperror.Wrap(err, "load organization")
	}
	if len(rows) == 0 || (rows[0].Role == "" && !who.Platform) {
		return nil, errOrgNotFound
	}
	if rows[0].Role == "" {
		rows[0].Role = caller.Admin // a platform operator, acting as an admin
	}
	return &rows[0], nil
}

// manager is member, refused 403 unless the role manages the organization.
func (s *Orgs) manager(ctx context.Context, db *gorm.DB, who *caller.Caller, org uuid.UUID) (*OrgWithRole, error) {
	o, err := s.member(ctx, db, who, org)
	if err != nil {
		return nil, err
	}
	if !o.Role.Manages() {
		return nil, apperror.ErrForbidden
	}
	return o, nil
}

// Manages answers nil when who may manage org (its owners and admins,
// platform operators), 404 when who is not a member, else 403.
func (s *Orgs) Manages(ctx context.Context, who *caller.Caller, org uuid.UUID) error {
	_, err := s.manager(ctx, s.db, who, org)
	return err
}

// Get returns an organization who belongs to.
func (s *Orgs) Get(ctx context.Context, who *caller.Caller, org uuid.UUID) (*OrgWithRole, error) {
	return s.member(ctx, s.db, who, org)
}

// OrgChanges are what PATCH /orgs/{id} may change; nil leaves a field alone.
type OrgChanges struct {
	Name, Slug *string
	Tier       *caller.Tier
	// SSOEnforced: members sign in only through the org's connections
	// (needs an enabled connection and a verified domain).
	SSOEnforced *bool
}

// Update renames an organization (owners and admins) or sets its tier
// (platform operators only: the tier is what the team pays for).
func (s *Orgs) Update(ctx context.Context, who *caller.Caller, org uuid.UUID, ch OrgChanges) (*OrgWithRole, error) {
	if ch.Tier != nil && !who.Platform {
		return nil, errTierPlatformOnly
	}
	var o *OrgWithRole
	var ended []uuid.UUID // members whose sessions enforcing SSO ended
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if o, err = s.manager(ctx, tx, who, org); err != nil {
			return err
		}
		before := o.Tier
		if ch.Name != nil {
			o.Name = *ch.Name
		}
		if ch.Slug != nil {
			o.Slug = *ch.Slug
		}
		if ch.Tier != nil {
			o.Tier = ch.Tier
		}
		if ch.SSOEnforced != nil && *ch.SSOEnforced != o.SSOEnforced {
			if *ch.SSOEnforced {
				if err := canEnforce(tx, org); err != nil {
					return err
				}
			}
			o.SSOEnforced = *ch.SSOEnforced
			if o.SSOEnforced {
				// Sessions begun with a password or a social login end now: the
				// members sign in again, through SSO (owners keep theirs).
				if err := tx.Model(&models.Membership{}).Where("org_id = ? AND role <> ?", org, caller.Owner).Pluck("user_id", &ended).Error; err != nil {
					return apperror.Wrap(err, "list members")
				}
				if err := tx.Model(&models.RefreshToken{}).Where("revoked_at IS NULL AND user_id IN (?)",
					tx.Model(&models.Membership{}).Select("user_id").Where("org_id = ? AND role <> ?", org, caller.Owner)).
					Update("revoked_at", s.clock.Now()).Error; err != nil {
					return apperror.Wrap(err, "end members' sessions")
				}
			}
			if err := s.audit.Record(ctx, tx, Event{Action: "sso.enforcement_changed", Reason: strconv.FormatBool(o.SSOEnforced), OrgID: org.String(),
				TargetType: "organization", TargetID: org.String()}); err != nil {
				return err
			}
		}
		o.UpdatedAt = s.clock.Now()
		if err := tx.Model(&o.Organization).Select("name", "slug", "tier", "sso_enforced", "updated_at").Updates(&o.Organization).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return errSlugTaken
			}
			return apperror.Wrap(err, "update organization")
		}
		reason := ""
		if ch.Tier != nil {
			reason = "tier:" + tierName(before) + "->" + string(*ch.Tier)
		}
		return s.audit.Record(ctx, tx, Event{Action: "org.updated", Reason: reason, OrgID: org.String(), TargetType: "organization", TargetID: org.String()})
	})
	if err == nil {
		s.endUser(ctx, ended...)
	}
	return o, err
}

func tierName(t *caller.Tier) string {
	if t == nil {
		return "members"
	}
	return string(*t)
}

// Delete removes an organization and everything it owns (owners, or
// platform operators); the default organization stays.
func (s *Orgs) Delete(ctx context.Context, who *caller.Caller, org uuid.UUID) error {
	var members []uuid.UUID
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, err := s.member(ctx, tx, who, org)
		if err != nil {
			return err
		}
		if o.Role != caller.Owner && !who.Platform {
			return errOwnersOnly
		}
		if org == models.DefaultOrgID {
			return errDefaultOrg
		}
		if err := tx.Model(&models.Membership{}).Where("org_id = ?", org).Pluck("user_id", &members).Error; err != nil {
			return apperror.Wrap(err, "list members")
		}
		if err := tx.Delete(&models.Organization{}, "id = ?", org).Error; err != nil {
			return apperror.Wrap(err, "delete organization")
		}
		return s.audit.Record(ctx, tx, Event{Action: "org.deleted", OrgID: org.String(), TargetType: "organization", TargetID: org.String()})
	})
	if err == nil {
		s.endUser(ctx, members...)
	}
	return err
}

// Member is a membership with the member's address.
type Member struct {
	UserID    uuid.UUID
	Email     string
	Role      caller.Role
	CreatedAt time.Time
}

// Members lists one page of an organization's members, oldest first (any
// member may).
func (s *Orgs) Members(ctx context.Context, who *caller.Caller, org uuid.UUID, p Page) (PageOf[Member], error) {
	if _, err := s.member(ctx, s.db, who, org); err != nil {
		return PageOf[Member]{}, err
	}
	q := s.db.WithContext(ctx).Table("memberships").Select("memberships.user_id, users.email, memberships.role, memberships.created_at").
		Joins("JOIN users ON users.id = memberships.user_id").Where("memberships.org_id = ?", org)
	page, err := listPageOn(q, p, false, "memberships.created_at", "memberships.user_id", func(m *Member) Cursor {
		return Cursor{CreatedAt: m.CreatedAt, ID: m.UserID}
	})
	if err != nil {
		return page, apperror.Wrap(err, "list members")
	}
	return page, nil
}

// lockMembers locks org's memberships for the rest of tx (PostgreSQL;
// SQLite writes one at a time), so two owners demoting each other at once
// cannot both see the other still owner.
func lockMembers(tx *gorm.DB, org uuid.UUID) ([]models.Membership, error) {
	q := tx.Where("org_id = ?", org)
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var ms []models.Membership
	if err := q.Find(&ms).Error; err != nil {
		return nil, apperror.Wrap(err, "lock members")
	}
	return ms, nil
}

// keepsAnOwner refuses to leave org without an owner (or, the default
// organization, without an admin: its admins run the platform) once user
// stops being one.
func keepsAnOwner(org uuid.UUID, ms []models.Membership, user uuid.UUID) error {
	need := func(r caller.Role) bool { return r == caller.Owner }
	if org == models.DefaultOrgID {
		need = caller.Role.Manages
	}
	var mine *models.Membership
	others := 0
	for i, m := range ms {
		switch {
		case m.UserID == user:
			mine = &ms[i]
		case need(m.Role):
			others++
		}
	}
	if mine == nil || !need(mine.Role) || others > 0 {
		return nil
	}
	if org == models.DefaultOrgID {
		return errLastAdmin
	}
	return errLastOwner
}

func findMember(ms []models.Membership, user uuid.UUID) *models.Membership {
	for i := range ms {
		if ms[i].UserID == user {
			return &ms[i]
		}
	}
	return nil
}

// SetRole changes a member's role (owners and admins; only owners touch
// owners). The default organization has no owners: the platform owns it.
func (s *Orgs) SetRole(ctx context.Context, who *caller.Caller, org, user uuid.UUID, role caller.Role) (*Member, error) {
	if !role.Valid() {
		return nil, apperror.Validation(map[string]string{"role": "must be one of: " + caller.Join(caller.Roles(), ", ")})
	}
	if org == models.DefaultOrgID && role == caller.Owner {
		return nil, errDefaultOrg
	}
	var out *Member
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, err := s.manager(ctx, tx, who, org)
		if err != nil {
			return err
		}
		ms, err := lockMembers(tx, org)
		if err != nil {
			return err
		}
		m := findMember(ms, user)
		if m == nil {
			return errMemberNotFound
		}
		if (m.Role == caller.Owner || role == caller.Owner) && o.Role != caller.Owner && !who.Platform {
			return errOwnersOnly
		}
		if m.Role == role {
			out, err = s.memberOut(tx, m)
			return err
		}
		if role.Rank() < m.Role.Rank() {
			if err := keepsAnOwner(org, ms, user); err != nil {
				return err
			}
		}
		before := m.Role
		if err := tx.Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", org, user).Update("role", role).Error; err != nil {
			return apperror.Wrap(err, "change role")
		}
		m.Role = role
		if out, err = s.memberOut(tx, m); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, Event{Action: "org.member_role_changed", Reason: string(before) + "->" + string(role),
			OrgID: org.String(), TargetType: "user", TargetID: user.String()})
	})
	if err != nil {
		return nil, err
	}
	s.endUser(ctx, user)
	return out, nil
}

func (s *Orgs) memberOut(tx *gorm.DB, m *models.Membership) (*Member, error) {
	var u models.User
	if err := tx.Select("email").Take(&u, "id = ?", m.UserID).Error; err != nil {
		return nil, apperror.Wrap(err, "load member")
	}
	return &Member{UserID: m.UserID, Email: u.Email, Role: m.Role, CreatedAt: m.CreatedAt}, nil
}

// Remove takes a member out of an organization (owners and admins; only
// owners remove owners); Leave is a member taking themself out. Their
// tokens stop at once; the next refresh lands in another organization.
func (s *Orgs) Remove(ctx context.Context, who *caller.Caller, org, user uuid.UUID) error {
	return s.remove(ctx, who, org, user, "org.member_removed")
}

// Leave takes who out of org; the last owner cannot leave (409).
func (s *Orgs) Leave(ctx context.Context, who *caller.Caller, org uuid.UUID) error {
	return s.remove(ctx, who, org, who.ID, "org.member_left")
}

func (s *Orgs) remove(ctx context.Context, who *caller.Caller, org, user uuid.UUID, action string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var o *OrgWithRole
		var err error
		if user == who.ID {
			o, err = s.member(ctx, tx, who, org)
		} else {
			o, err = s.manager(ctx, tx, who, org)
		}
		if err != nil {
			return err
		}
		ms, err := lockMembers(tx, org)
		if err != nil {
			return err
		}
		m := findMember(ms, user)
		if m == nil {
			if user == who.ID {
				return errOrgNotFound // a platform operator who is not a member
			}
			return errMemberNotFound
		}
		if m.Role == caller.Owner && user != who.ID && o.Role != caller.Owner && !who.Platform {
			return errOwnersOnly
		}
		if err := keepsAnOwner(org, ms, user); err != nil {
			return err
		}
		if err := tx.Delete(&models.Membership{}, "org_id = ? AND user_id = ?", org, user).Error; err != nil {
			return apperror.Wrap(err, "remove member")
		}
		return s.audit.Record(ctx, tx, Event{Action: action, OrgID: org.String(), TargetType: "user", TargetID: user.String()})
	})
	if err == nil {
		s.endUser(ctx, user)
	}
	return err
}

// Transfer makes another member an owner and the calling owner an admin.
func (s *Orgs) Transfer(ctx context.Context, who *caller.Caller, org, to uuid.UUID) error {
	if org == models.DefaultOrgID {
		return errDefaultOrg
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, err := s.member(ctx, tx, who, org)
		if err != nil {
			return err
		}
		if o.Role != caller.Owner {
			return errOwnersOnly
		}
		ms, err := lockMembers(tx, org)
		if err != nil {
			return err
		}
		if findMember(ms, to) == nil {
			return errMemberNotFound
		}
		if to == who.ID {
			return nil
		}
		if err := tx.Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", org, to).Update("role", caller.Owner).Error; err != nil {
			return apperror.Wrap(err, "transfer ownership")
		}
		if err := tx.Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", org, who.ID).Update("role", caller.Admin).Error; err != nil {
			return apperror.Wrap(err, "transfer ownership")
		}
		return s.audit.Record(ctx, tx, Event{Action: "org.ownership_transferred", OrgID: org.String(), TargetType: "user", TargetID: to.String()})
	})
	if err == nil {
		s.endUser(ctx, who.ID, to)
	}
	return err
}

// endUser voids the access tokens of users whose standing changed: the
// next refresh carries the new one.
func (s *Orgs) endUser(ctx context.Context, users ...uuid.UUID) {
	if s.cfg.Ended == nil {
		return
	}
	for _, u := range users {
		s.cfg.Ended.EndUser(ctx, u.String())
	}
}

// invitationTokenBytes: invitation tokens are 32 random bytes, like
// verification tokens.
const invitationTokenBytes = 32

// Invite asks email to join org with role (owners and admins; only owners
// invite owners), mailing a single-use link through the outbox. A pending
// invitation of the same address is replaced.
func (s *Orgs) Invite(ctx context.Context, who *caller.Caller, org uuid.UUID, email string, role caller.Role) (*models.Invitation, error) {
	email = NormalizeEmail(email)
	details := map[string]string{}
	if msg := CheckEmail(email); msg != "" {
		details["email"] = msg
	}
	if !role.Valid() {
		details["role"] = "must be one of: " + caller.Join(caller.Roles(), ", ")
	}
	if len(details) > 0 {
		return nil, apperror.Validation(details)
	}
	if org == models.DefaultOrgID && role == caller.Owner {
		return nil, errDefaultOrg
	}
	raw, err := newOpaqueToken(invitationTokenBytes)
	if err != nil {
		return nil, apperror.Wrap(err, "make invitation token")
	}
	ctx, cancel := durable(ctx)
	defer cancel()
	var inv *models.Invitation
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, err := s.manager(ctx, tx, who, org)
		if err != nil {
			return err
		}
		if err := enterOrg(tx, org); err != nil {
			return err
		}
		if role == caller.Owner && o.Role != caller.Owner && !who.Platform {
			return errOwnersOnly
		}
		now := s.clock.Now()
		if err := tx.Model(&models.Invitation{}).Where("org_id = ? AND email = ? AND accepted_at IS NULL AND revoked_at IS NULL", org, email).
			Update("revoked_at", now).Error; err != nil {
			return apperror.Wrap(err, "replace invitation")
		}
		inviter := who.ID
		inv = &models.Invitation{ID: uuid.New(), OrgID: org, Email: email, Role: role, TokenHash: hashToken(raw), InviterID: &inviter,
			ExpiresAt: now.Add(s.cfg.InvitationTTL), CreatedAt: now}
		if err := tx.Create(inv).Error; err != nil {
			return apperror.Wrap(err, "insert invitation")
		}
		if err := s.audit.Record(ctx, tx, Event{Action: "org.invitation_created", Reason: string(role), OrgID: org.String(),
			TargetType: "invitation", TargetID: inv.ID.String()}); err != nil {
			return err
		}
		return s.outbox.Enqueue(tx, mail.Message{To: email, Subject: "You are invited to join " + o.Name,
			Body: "You are invited to join " + o.Name + " as " + string(role) + ".\n\n" +
				"Sign in (or register and verify this address), then accept: POST " + s.cfg.BaseURL + "/invitations/accept with\n" +
				`{"token":"` + raw + `"}` + "\n\nThe invitation works once and expires " + inv.ExpiresAt.UTC().Format(time.RFC1123) + ".\n" +
				"If you did not expect it, ignore this message.\n"})
	})
	if err != nil {
		return nil, err
	}
	s.outbox.Notify()
	return inv, nil
}

// Invitations lists one page of an organization's invitations, newest
// first (owners and admins).
func (s *Orgs) Invitations(ctx context.Context, who *caller.Caller, org uuid.UUID, p Page) (PageOf[models.Invitation], error) {
	if _, err := s.manager(ctx, s.db, who, org); err != nil {
		return PageOf[models.Invitation]{}, err
	}
	var page PageOf[models.Invitation]
	err := inOrg(ctx, s.db, org, func(tx *gorm.DB) (err error) {
		page, err = listPage(tx.Where("org_id = ?", org), p, true, func(m *models.Invitation) Cursor {
			return Cursor{CreatedAt: m.CreatedAt, ID: m.ID}
		})
		return err
	})
	if err != nil {
		return page, apperror.Wrap(err, "list invitations")
	}
	return page, nil
}

// Revoke withdraws a pending invitation (owners and admins).
func (s *Orgs) Revoke(ctx context.Context, who *caller.Caller, org, inv uuid.UUID) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := s.manager(ctx, tx, who, org); err != nil {
			return err
		}
		if err := enterOrg(tx, org); err != nil {
			return err
		}
		res := tx.Model(&models.Invitation{}).Where("id = ? AND org_id = ? AND accepted_at IS NULL AND revoked_at IS NULL", inv, org).
			Update("revoked_at", s.clock.Now())
		if res.Error != nil {
			return apperror.Wrap(res.Error, "revoke invitation")
		}
		if res.RowsAffected == 0 {
			return errInvitationGone
		}
		return s.audit.Record(ctx, tx, Event{Action: "org.invitation_revoked", OrgID: org.String(), TargetType: "invitation", TargetID: inv.String()})
	})
}

// Accept joins u to the invitation's organization with its role. The
// invitation must be for u's verified address, unused, unrevoked and
// unexpired; of concurrent accepts exactly one wins (the others see it
// used).
func (s *Orgs) Accept(ctx context.Context, u *models.User, raw string) (*OrgWithRole, error) {
	var out *OrgWithRole
	ctx, cancel := durable(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The token names the organization: find it across all of them.
		if err := enterAllOrgs(tx); err != nil {
			return err
		}
		var inv models.Invitation
		err := tx.Where("token_hash = ?", hashToken(raw)).Take(&inv).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errInvitationBad
		}
		if err != nil {
			return apperror.Wrap(err, "load invitation")
		}
		now := s.clock.Now()
		switch {
		case inv.AcceptedAt != nil || inv.RevokedAt != nil:
			return errInvitationBad
		case !now.Before(inv.ExpiresAt):
			return errInvitationOld
		case !u.EmailVerified || NormalizeEmail(u.Email) != inv.Email:
			return errInvitationOther
		}
		res := tx.Model(&models.Invitation{}).Where("id = ? AND accepted_at IS NULL AND revoked_at IS NULL", inv.ID).
			Updates(map[string]any{"accepted_at": now, "accepted_by": u.ID})
		if res.Error != nil {
			return apperror.Wrap(res.Error, "accept invitation")
		}
		if res.RowsAffected == 0 {
			return errInvitationBad // a concurrent accept won
		}
		var n int64
		if err := tx.Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", inv.OrgID, u.ID).Count(&n).Error; err != nil {
			return apperror.Wrap(err, "check membership")
		}
		if n > 0 {
			return errAlreadyMember
		}
		if err := tx.Create(&models.Membership{OrgID: inv.OrgID, UserID: u.ID, Role: inv.Role, CreatedAt: now}).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return errAlreadyMember
			}
			return apperror.Wrap(err, "insert membership")
		}
		if err := s.audit.Record(ctx, tx, Event{Action: "org.member_added", Reason: string(inv.Role), OrgID: inv.OrgID.String(),
			TargetType: "user", TargetID: u.ID.String()}); err != nil {
			return err
		}
		var o models.Organization
		if err := tx.Take(&o, "id = ?", inv.OrgID).Error; err != nil {
			return apperror.Wrap(err, "load organization")
		}
		out = &OrgWithRole{Organization: o, Role: inv.Role}
		return nil
	})
	// As with Create, u's tokens stay where they act until u switches.
	return out, err
}

// OwnerStanding is a credential's owner's current standing in the
// credential's organization, read with the credential on every use: an
// owner demoted or removed there takes the credential down with them.
// Exported only so GORM fills it when embedded in a scanned row.
type OwnerStanding struct {
	OwnerRole caller.Role // "": no longer a member
	OwnerTier caller.Tier // the organization's, else the owner's own
	OrgTier   caller.Tier // the organization's own ("": none)
}

// ownerColumns and ownerJoins read OwnerStanding beside table's rows,
// whose owner is in column owner.
const ownerColumns = "COALESCE(memberships.role, '') AS owner_role, COALESCE(organizations.tier, users.tier) AS owner_tier, " +
	"COALESCE(organizations.tier, '') AS org_tier"

func ownerJoins(table, owner string) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		return q.Joins("JOIN users ON users.id = " + table + "." + owner).
			Joins("JOIN organizations ON organizations.id = " + table + ".org_id").
			Joins("LEFT JOIN memberships ON memberships.org_id = " + table + ".org_id AND memberships.user_id = " + table + "." + owner)
	}
}

// caller is the credential's caller: its owner acting in org, with the
// scopes the credential holds cut to what the owner's role allows now.
func (o OwnerStanding) caller(kind caller.Kind, owner, org uuid.UUID, scopes []caller.Scope) *caller.Caller {
	return &caller.Caller{
		Kind: kind, ID: owner, OrgID: org, OrgRole: o.OwnerRole, Role: o.OwnerRole.RouteRole(), Tier: o.OwnerTier, OrgTier: o.OrgTier,
		Platform: org == models.DefaultOrgID && o.OwnerRole.Manages(),
		Scopes:   caller.Intersect(scopes, o.OwnerRole.Scopes()),
	}
}
