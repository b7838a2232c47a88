package handlers

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// IPRules serves the platform operators' IP allow and block rules.
type IPRules struct{ rules *services.IPRules }

// NewIPRules builds the handlers.
func NewIPRules(r *services.IPRules) *IPRules { return &IPRules{rules: r} }

// IPRuleRequest allows or blocks an address range.
type IPRuleRequest struct {
	// CIDR: an IPv4 or IPv6 address or range.
	CIDR   string `json:"cidr" validate:"required,max=64" example:"203.0.113.0/24"`
	Action string `json:"action" validate:"required,oneof=allow block" enums:"allow,block" example:"block"`
	Reason string `json:"reason,omitempty" validate:"max=200" example:"credential stuffing"`
	// TTL: how long the rule lasts (a Go duration); absent: until removed.
	TTL string `json:"ttl,omitempty" validate:"max=32" example:"24h"`
}

// IPRuleResponse is a stored rule.
type IPRuleResponse struct {
	ID     uuid.UUID `json:"id" format:"uuid"`
	CIDR   string    `json:"cidr" example:"203.0.113.0/24"`
	Action string    `json:"action" enums:"allow,block" example:"block"`
	// Source: admin (this API) or auto (IP_AUTO_BLOCK).
	Source    string     `json:"source" enums:"admin,auto" example:"admin"`
	Reason    string     `json:"reason" example:"credential stuffing"`
	CreatedBy *uuid.UUID `json:"created_by" format:"uuid" extensions:"x-nullable"`
	CreatedAt time.Time  `json:"created_at" format:"date-time"`
	ExpiresAt *time.Time `json:"expires_at" format:"date-time" extensions:"x-nullable"`
}

// IPRuleList is every live stored rule.
type IPRuleList struct {
	Data []IPRuleResponse `json:"data"`
	// Configured are IP_ALLOWLIST and IP_BLOCKLIST's, which the API
	// cannot change (they are not listed in data).
	Configured ConfiguredIPRules `json:"configured"`
}

// ConfiguredIPRules are the rules from configuration.
type ConfiguredIPRules struct {
	Allow []string `json:"allow"`
	Block []string `json:"block"`
}

func toIPRule(r *models.IPRule) IPRuleResponse {
	return IPRuleResponse{ID: r.ID, CIDR: r.CIDR, Action: r.Action, Source: r.Source, Reason: r.Reason,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
}

// Create adds a rule.
//
//	@Summary	Allow or block addresses (platform operators)
//	@Description	A block answers every request from the range 403 ip_blocked, before anything else (the probes excepted); an allow exempts the range from every block, automatic ones included. Applies on every instance at once (announced through Redis; each instance rereads the rules at least every 30 s). Audited as ip_rule.created.
//	@ID	createIPRule
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	body	body	IPRuleRequest	true	"the rule"
//	@Success	201	{object}	IPRuleResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, platform_admin_required"
//	@Router		/admin/ip-rules [post]
func (h *IPRules) Create(c *echo.Context) error {
	var req IPRuleRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return validationError("ttl", "must be a positive duration such as 24h")
		}
		ttl = d
	}
	cl, err := who(c)
	if err != nil {
		return err
	}
	r, err := h.rules.Create(c.Request().Context(), cl, services.NewIPRule{CIDR: req.CIDR, Action: req.Action, Reason: req.Reason, TTL: ttl})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toIPRule(r))
}

// List lists the rules.
//
//	@Summary	List the IP rules (platform operators)
//	@Description	The stored rules that have not expired, newest first, automatic blocks included, and the configured ones (IP_ALLOWLIST, IP_BLOCKLIST).
//	@ID	listIPRules
//	@Tags	admin
//	@Security	BearerAuth
//	@Success	200	{object}	IPRuleList
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, platform_admin_required"
//	@Router		/admin/ip-rules [get]
func (h *IPRules) List(c *echo.Context) error {
	rows, err := h.rules.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := IPRuleList{Data: make([]IPRuleResponse, 0, len(rows))}
	for i := range rows {
		out.Data = append(out.Data, toIPRule(&rows[i]))
	}
	out.Configured.Allow, out.Configured.Block = h.rules.Configured()
	return c.JSON(http.StatusOK, out)
}

// Delete removes a rule.
//
//	@Summary	Remove an IP rule (platform operators)
//	@Description	An automatic block too (lifting it early). Audited as ip_rule.deleted.
//	@ID	deleteIPRule
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	id	path	string	true	"rule id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, platform_admin_required"
//	@Failure	404	{object}	ErrorResponse	"ip_rule_not_found"
//	@Router		/admin/ip-rules/{id} [delete]
func (h *IPRules) Delete(c *echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	if err := h.rules.Delete(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
