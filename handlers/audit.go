package handlers

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// Audit serves the audit log: all of it to platform operators, an
// organization's to its owners and admins.
type Audit struct {
	audit *services.Audit
	orgs  *services.Orgs
}

// NewAudit builds the audit handlers.
func NewAudit(a *services.Audit, o *services.Orgs) *Audit { return &Audit{audit: a, orgs: o} }

// AuditEventResponse is one audit event.
type AuditEventResponse struct {
	Seq        int64     `json:"seq" example:"42"`
	OccurredAt time.Time `json:"occurred_at" format:"date-time"`
	ActorType  string    `json:"actor_type" example:"user" enums:"user,api_key,client,anonymous"`
	ActorID    string    `json:"actor_id"`
	Action     string    `json:"action" example:"auth.login"`
	Outcome    string    `json:"outcome" example:"success" enums:"success,failure"`
	Reason     string    `json:"reason,omitempty" example:"invalid_credentials"`
	TargetType string    `json:"target_type,omitempty" example:"user"`
	TargetID   string    `json:"target_id,omitempty"`
	IP         string    `json:"ip,omitempty" example:"203.0.113.7"`
	UserAgent  string    `json:"user_agent,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
	OrgID      string    `json:"org_id,omitempty" format:"uuid"` // the organization it happened in
	Hash       string    `json:"hash"`
}

// AuditPage is a page of audit events, newest first.
type AuditPage struct {
	Data       []AuditEventResponse `json:"data"`
	HasMore    bool                 `json:"has_more"`
	NextCursor string               `json:"next_cursor,omitempty" example:"41"`
}

func toAuditEvent(e *models.AuditEvent) AuditEventResponse {
	return AuditEventResponse{Seq: e.Seq, OccurredAt: e.OccurredAt, ActorType: e.ActorType, ActorID: e.ActorID, Action: e.Action,
		Outcome: e.Outcome, Reason: e.Reason, TargetType: e.TargetType, TargetID: e.TargetID, IP: e.IP, UserAgent: e.UserAgent,
		RequestID: e.RequestID, OrgID: e.OrgID, Hash: e.Hash}
}

// List returns audit events, newest first, or all of them as NDJSON.
//
//	@Summary	Read the audit log (admin)
//	@Description	Newest first, filtered by actor, action and time range; follow next_cursor. With format=ndjson, every matching event as one JSON object per line (an export). Never holds passwords, tokens or codes.
//	@ID	listAuditEvents
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	actor_id	query	string	false	"the actor's id"
//	@Param	org_id	query	string	false	"one organization's events"
//	@Param	action	query	string	false	"e.g. auth.login_failed"
//	@Param	since	query	string	false	"from this time (RFC 3339)"	format(date-time)
//	@Param	until	query	string	false	"before this time (RFC 3339)"	format(date-time)
//	@Param	cursor	query	string	false	"next_cursor of the previous page"
//	@Param	per_page	query	int	false	"events per page, at most 100"	default(50)	minimum(1)	maximum(100)
//	@Param	format	query	string	false	"ndjson for an export"	Enums(json, ndjson)
//	@Success	200	{object}	AuditPage
//	@Failure	400	{object}	ErrorResponse	"validation_failed"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Router		/admin/audit [get]
func (h *Audit) List(c *echo.Context) error {
	return h.list(c, services.AuditFilter{OrgID: c.QueryParam("org_id")})
}

// OrgList returns one organization's audit events.
//
//	@Summary	Read an organization's audit log
//	@Description	Owners and admins of the organization: its events only (those with its org_id), newest first, filtered as GET /admin/audit is.
//	@ID	listOrgAuditEvents
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	actor_id	query	string	false	"the actor's id"
//	@Param	action	query	string	false	"e.g. org.member_added"
//	@Param	since	query	string	false	"from this time (RFC 3339)"	format(date-time)
//	@Param	until	query	string	false	"before this time (RFC 3339)"	format(date-time)
//	@Param	cursor	query	string	false	"next_cursor of the previous page"
//	@Param	per_page	query	int	false	"events per page, at most 100"	default(50)	minimum(1)	maximum(100)
//	@Param	format	query	string	false	"ndjson for an export"	Enums(json, ndjson)
//	@Success	200	{object}	AuditPage
//	@Failure	400	{object}	ErrorResponse	"validation_failed or invalid_id"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions or user_token_required"
//	@Router		/orgs/{id}/audit [get]
func (h *Audit) OrgList(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	if err := h.orgs.Manages(c.Request().Context(), cl, id); err != nil {
		return err
	}
	return h.list(c, services.AuditFilter{OrgID: id.String()})
}

func (h *Audit) list(c *echo.Context, f services.AuditFilter) error {
	f.ActorID, f.Action = c.QueryParam("actor_id"), c.QueryParam("action")
	details := map[string]string{}
	for name, into := range map[string]**time.Time{"since": &f.Since, "until": &f.Until} {
		if raw := c.QueryParam(name); raw != "" {
			t, err := time.Parse(time.RFC3339, raw)
			if err != nil {
				details[name] = "must be an RFC 3339 time such as 2026-03-02T09:00:00Z"
				continue
			}
			*into = &t
		}
	}
	if raw := c.QueryParam("cursor"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 1 {
			details["cursor"] = "must be a next_cursor from a previous page"
		}
		f.Before = n
	}
	perPage := 50
	if raw := c.QueryParam("per_page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100 {
			details["per_page"] = "must be between 1 and 100"
		}
		perPage = n
	}
	format := c.QueryParam("format")
	if format != "" && format != "json" && format != "ndjson" {
		details["format"] = "must be json or ndjson"
	}
	if len(details) > 0 {
		return apperror.Validation(details)
	}
	ctx := c.Request().Context()
	if format == "ndjson" {
		res := c.Response()
		res.Header().Set(echo.HeaderContentType, "application/x-ndjson")
		res.Header().Set("Content-Disposition", `attachment; filename="audit.ndjson"`)
		res.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(res)
		for {
			// Past the status line an error can only cut the export short
			// (the error handler sees the answer started and leaves it).
			rows, next, err := h.audit.List(ctx, f, 500)
			if err != nil {
				return err
			}
			for i := range rows {
				if err := enc.Encode(toAuditEvent(&rows[i])); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			f.Before = next
		}
	}
	rows, next, err := h.audit.List(ctx, f, perPage)
	if err != nil {
		return err
	}
	out := AuditPage{Data: make([]AuditEventResponse, 0, len(rows)), HasMore: next != 0}
	for i := range rows {
		out.Data = append(out.Data, toAuditEvent(&rows[i]))
	}
	if next != 0 {
		out.NextCursor = strconv.FormatInt(next, 10)
	}
	return c.JSON(http.StatusOK, out)
}

// Verify checks the audit hash chain.
//
//	@Summary	Verify the audit log (admin)
//	@Description	Walks the hash chain from its anchor (where retention purges stopped) to its head: valid, or the first row that was edited, removed or inserted. Then checks it against a signed checkpoint kept outside the database (the checkpoint parameter, a token from an "audit checkpoint" log line; without it, the newest this instance signed or AUDIT_CHECKPOINT_FILE holds): rows removed from the end, or from the start past what purges recorded, are found too.
//	@ID	verifyAuditLog
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	checkpoint	query	string	false	"a checkpoint token from the log"
//	@Success	200	{object}	services.Verification
//	@Failure	400	{object}	ErrorResponse	"invalid_checkpoint"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Router		/admin/audit/verify [get]
func (h *Audit) Verify(c *echo.Context) error {
	var cp *services.Checkpoint
	if raw := c.QueryParam("checkpoint"); raw != "" {
		parsed, err := h.audit.ParseCheckpoint(raw)
		if err != nil {
			return err
		}
		cp = &parsed
	}
	v, err := h.audit.Verify(c.Request().Context(), cp)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
