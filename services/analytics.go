package services

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

// Report is the admin analytics summary.
type Report struct {
	UsersByRole          map[string]int64
	UsersByTier          map[string]int64
	UsersVerified        int64
	UsersUnverified      int64
	ProjectsTotal        int64
	ProjectsLast7Days    int64
	ActiveRefreshSession int64
}

// Analytics computes the admin report.
type Analytics struct {
	db    *gorm.DB
	clock clock.Clock
}

// NewAnalytics builds the analytics service.
func NewAnalytics(db *gorm.DB, clk clock.Clock) *Analytics {
	return &Analytics{db: db, clock: clk}
}

// Report counts users, projects and live sessions.
func (s *Analytics) Report(ctx context.Context) (*Report, error) {
	db := s.db.WithContext(ctx)
	r := &Report{
		UsersByRole: map[string]int64{models.RoleViewer: 0, models.RoleEditor: 0, models.RoleAdmin: 0},
		UsersByTier: map[string]int64{models.TierFree: 0, models.TierPaid: 0, models.TierEnterprise: 0},
	}
	type group struct {
		Key   string
		Count int64
	}
	for column, into := range map[string]map[string]int64{"role": r.UsersByRole, "tier": r.UsersByTier} {
		var rows []group
		if err := db.Model(&models.User{}).Select(column + " AS key, COUNT(*) AS count").Group(column).Scan(&rows).Error; err != nil {
			return nil, apperror.Wrap(err, "count users by "+column)
		}
		for _, g := range rows {
			into[g.Key] = g.Count
		}
	}
	now := s.clock.Now()
	counts := []struct {
		into  *int64
		model any
		where string
		args  []any
	}{
		{&r.UsersVerified, &models.User{}, "email_verified = ?", []any{true}},
		{&r.UsersUnverified, &models.User{}, "email_verified = ?", []any{false}},
		{&r.ProjectsTotal, &models.Project{}, "1 = 1", nil},
		{&r.ProjectsLast7Days, &models.Project{}, "created_at >= ?", []any{now.Add(-7 * 24 * time.Hour)}},
		{&r.ActiveRefreshSession, &models.RefreshToken{}, "revoked_at IS NULL AND expires_at > ?", []any{now}},
	}
	for _, c := range counts {
		if err := db.Model(c.model).Where(c.where, c.args...).Count(c.into).Error; err != nil {
			return nil, apperror.Wrap(err, "count for analytics")
		}
	}
	return r, nil
}
