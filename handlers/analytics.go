package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/services"
)

// AnalyticsResponse is the admin summary.
type AnalyticsResponse struct {
	Users struct {
		ByRole     map[string]int64 `json:"by_role"`
		ByTier     map[string]int64 `json:"by_tier"`
		Verified   int64            `json:"verified"`
		Unverified int64            `json:"unverified"`
	} `json:"users"`
	ActiveRefreshSessions int64 `json:"active_refresh_sessions"`
	// The example resource's counts.
	Projects struct {
		Total     int64 `json:"total"`
		Last7Days int64 `json:"created_last_7_days"`
	} `json:"projects"`
}

// Analytics serves the admin report.
type Analytics struct{ analytics *services.Analytics }

// NewAnalytics builds the analytics handler.
func NewAnalytics(a *services.Analytics) *Analytics { return &Analytics{analytics: a} }

// Get returns the report.
//
//	@Summary	Usage analytics (admin)
//	@Description	Users by role and tier, verification, active logins, and the count of each resource. Admins only (admins are not limited per user; other callers count against their tier before the 403).
//	@ID	getAnalytics
//	@Tags	analytics
//	@Security	BearerAuth
//	@x-scope	"analytics:read"
//	@Success	200	{object}	AnalyticsResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions: the role may not do this"
//	@Router		/analytics [get]
func (h *Analytics) Get(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	r, err := h.analytics.Report(c.Request().Context(), cl)
	if err != nil {
		return err
	}
	var out AnalyticsResponse
	out.Users.ByRole, out.Users.ByTier = r.UsersByRole, r.UsersByTier
	out.Users.Verified, out.Users.Unverified = r.UsersVerified, r.UsersUnverified
	out.ActiveRefreshSessions = r.ActiveRefreshSession
	out.Projects.Total, out.Projects.Last7Days = r.ProjectsTotal, r.ProjectsLast7Days
	return c.JSON(http.StatusOK, out)
}
