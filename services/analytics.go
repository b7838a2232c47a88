package services

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

// Report is the admin analytics summary.
type Report struct {
	UsersByRole          map[string]int64
	UsersByTier          map[string]int64
	UsersVerified        int64
	UsersUnverified      int64
	ActiveRefreshSession int64
	// The example resource's counts.
	ProjectsTotal, ProjectsLast7Days int64
}

// recentWindow is what the report counts as new ("last 7 days").
const recentWindow = 7 * 24 * time.Hour

// Analytics computes the admin report.
type Analytics struct {
	db    *gorm.DB
	clock clock.Clock
}

// NewAnalytics builds the analytics service.
func NewAnalytics(db *gorm.DB, clk clock.Clock) *Analytics {
	return &Analytics{db: db, clock: clk}
}

// Report counts the caller's organization: its members (one grouped
// scan), its live sessions and the example's projects.
func (s *Analytics) Report(ctx context.Context, who *caller.Caller) (*Report, error) {
	org, err := orgOf(who)
	if err != nil {
		return nil, err
	}
	db := s.db.WithContext(ctx)
	r := &Report{
		UsersByRole: map[string]int64{},
		UsersByTier: map[string]int64{},
	}
	for _, role := range caller.Roles() {
		r.UsersByRole[string(role)] = 0
	}
	for _, tier := range caller.Tiers() {
		r.UsersByTier[string(tier)] = 0
	}
	var groups []struct {
		Role          string
		Tier          string
		EmailVerified bool
		N             int64
	}
	if err := db.Table("memberships").Select("memberships.role, users.tier, users.email_verified, COUNT(*) AS n").
		Joins("JOIN users ON users.id = memberships.user_id").Where("memberships.org_id = ?", org).
		Group("memberships.role, users.tier, users.email_verified").Scan(&groups).Error; err != nil {
		return nil, apperror.Wrap(err, "count users")
	}
	for _, g := range groups {
		r.UsersByRole[g.Role] += g.N
		r.UsersByTier[g.Tier] += g.N
		if g.EmailVerified {
			r.UsersVerified += g.N
		} else {
			r.UsersUnverified += g.N
		}
	}
	now := s.clock.Now()
	if err := db.Model(&models.RefreshToken{}).Where("org_id = ? AND revoked_at IS NULL AND expires_at > ?", org, now).
		Count(&r.ActiveRefreshSession).Error; err != nil {
		return nil, apperror.Wrap(err, "count sessions")
	}
	// The example resource's counts, in one row.
	err = inOrg(ctx, s.db, org, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT (SELECT COUNT(*) FROM projects WHERE org_id = ?), (SELECT COUNT(*) FROM projects WHERE org_id = ? AND created_at >= ?)`,
			org, org, now.Add(-recentWindow)).Row().Scan(&r.ProjectsTotal, &r.ProjectsLast7Days)
	})
	if err != nil {
		return nil, apperror.Wrap(err, "count projects")
	}
	return r, nil
}
