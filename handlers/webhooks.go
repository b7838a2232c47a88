package handlers

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// Webhooks serves the platform operators' webhook endpoints.
type Webhooks struct{ hooks *services.Webhooks }

// NewWebhooks builds the handlers.
func NewWebhooks(w *services.Webhooks) *Webhooks { return &Webhooks{hooks: w} }

// WebhookRequest registers an endpoint.
type WebhookRequest struct {
	URL         string   `json:"url" validate:"required,max=2000" example:"https://hooks.example.com/tollgate"`
	Description string   `json:"description,omitempty" validate:"max=200" example:"CRM sync"`
	Events      []string `json:"events" validate:"required,min=1,max=20,dive,max=64" example:"user.created,session.revoked"`
}

// WebhookPatch changes an endpoint; absent fields stay.
type WebhookPatch struct {
	URL         *string  `json:"url,omitempty" validate:"omitempty,max=2000"`
	Description *string  `json:"description,omitempty" validate:"omitempty,max=200"`
	Events      []string `json:"events,omitempty" validate:"omitempty,min=1,max=20,dive,max=64"`
	// Disabled: true stops new messages (queued ones still go); false
	// turns the endpoint back on.
	Disabled *bool `json:"disabled,omitempty"`
}

// WebhookResponse is an endpoint (never its secret).
type WebhookResponse struct {
	ID                      uuid.UUID  `json:"id" format:"uuid"`
	URL                     string     `json:"url" example:"https://hooks.example.com/tollgate"`
	Description             string     `json:"description" example:"CRM sync"`
	Events                  []string   `json:"events" example:"user.created,session.revoked"`
	Disabled                bool       `json:"disabled"`
	CreatedAt               time.Time  `json:"created_at" format:"date-time"`
	UpdatedAt               time.Time  `json:"updated_at" format:"date-time"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at" format:"date-time" extensions:"x-nullable"` // the old secret still signs until then
}

// WebhookSecretResponse is an endpoint with its signing secret, shown
// once (at creation and at each rotation).
type WebhookSecretResponse struct {
	WebhookResponse
	// Secret verifies the webhook-signature header (Standard Webhooks).
	Secret string `json:"secret" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
}

// WebhookList is every endpoint.
type WebhookList struct {
	Data []WebhookResponse `json:"data"`
}

// WebhookMessageResponse is one message and how its delivery went.
type WebhookMessageResponse struct {
	ID            string     `json:"id" example:"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"`
	EventType     string     `json:"event_type" example:"user.created"`
	Status        string     `json:"status" enums:"pending,delivered,dead" example:"delivered"`
	Attempts      int        `json:"attempts" example:"1"`
	NextAttemptAt time.Time  `json:"next_attempt_at" format:"date-time"`
	LastStatus    int        `json:"last_status" example:"200"` // the endpoint's last HTTP status (0: no answer)
	LastError     string     `json:"last_error" example:""`
	CreatedAt     time.Time  `json:"created_at" format:"date-time"`
	DeliveredAt   *time.Time `json:"delivered_at" format:"date-time" extensions:"x-nullable"`
	Payload       string     `json:"payload" example:"{\"type\":\"user.created\",...}"`
}

// WebhookMessageList is an endpoint's delivery log.
type WebhookMessageList struct {
	Data []WebhookMessageResponse `json:"data"`
}

// WebhookEventList is the event types an endpoint can subscribe to.
type WebhookEventList struct {
	Data []string `json:"data" example:"user.created,session.revoked"`
}

// RotateWebhookRequest says how long the old secret keeps signing.
type RotateWebhookRequest struct {
	// GracePeriod in seconds (default a day, at most 7 days; 0: none).
	GracePeriod *int64 `json:"grace_period,omitempty" example:"86400"`
}

func toWebhook(ep *models.WebhookEndpoint) WebhookResponse {
	return WebhookResponse{ID: ep.ID, URL: ep.URL, Description: ep.Description, Events: strings.Split(ep.Events, ","),
		Disabled: ep.DisabledAt != nil, CreatedAt: ep.CreatedAt, UpdatedAt: ep.UpdatedAt, PreviousSecretExpiresAt: ep.PreviousExpiresAt}
}

// Events lists the event types.
//
//	@Summary	List the webhook event types (platform operators)
//	@ID	listWebhookEvents
//	@Tags	webhooks
//	@Security	BearerAuth
//	@Success	200	{object}	WebhookEventList
//	@Router		/admin/webhooks/events [get]
func (h *Webhooks) Events(c *echo.Context) error {
	out := WebhookEventList{Data: []string{}}
	for e := range services.WebhookEvents {
		out.Data = append(out.Data, e)
	}
	slices.Sort(out.Data)
	return c.JSON(http.StatusOK, out)
}

// Create registers an endpoint.
//
//	@Summary	Register a webhook endpoint (platform operators)
//	@Description	Auth events (or "*" for all) are POSTed to url, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature) with the secret in this answer, shown once. Each event's messages are written in the transaction of the change and delivered by the background worker: a 2xx answer within WEBHOOK_TIMEOUT delivers, anything else is retried with backoff (10 s, 1 min, 5 min, 30 min, 2 h, 6 h, 12 h) up to WEBHOOK_MAX_ATTEMPTS, then the message is dead (still listed, retriable). Loopback, private and link-local addresses are refused at connect time unless WEBHOOK_ALLOW_PRIVATE_NETWORKS (development); production needs https.
//	@ID	createWebhook
//	@Tags	webhooks
//	@Security	BearerAuth
//	@Param	body	body	WebhookRequest	true	"the endpoint"
//	@Success	201	{object}	WebhookSecretResponse
//	@Router		/admin/webhooks [post]
func (h *Webhooks) Create(c *echo.Context) error {
	var req WebhookRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	cl, err := who(c)
	if err != nil {
		return err
	}
	ep, secret, err := h.hooks.Create(c.Request().Context(), cl, services.NewWebhook{URL: req.URL, Description: req.Description, Events: req.Events})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, WebhookSecretResponse{WebhookResponse: toWebhook(ep), Secret: secret})
}

// List lists the endpoints.
//
//	@Summary	List the webhook endpoints (platform operators)
//	@ID	listWebhooks
//	@Tags	webhooks
//	@Security	BearerAuth
//	@Success	200	{object}	WebhookList
//	@Router		/admin/webhooks [get]
func (h *Webhooks) List(c *echo.Context) error {
	eps, err := h.hooks.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := WebhookList{Data: make([]WebhookResponse, 0, len(eps))}
	for i := range eps {
		out.Data = append(out.Data, toWebhook(&eps[i]))
	}
	return c.JSON(http.StatusOK, out)
}

// Update changes an endpoint.
//
//	@Summary	Change or disable a webhook endpoint (platform operators)
//	@ID	updateWebhook
//	@Tags	webhooks
//	@Security	BearerAuth
//	@Param	id	path	string	true	"endpoint id (UUID)"	format(uuid)
//	@Param	body	body	WebhookPatch	true	"the fields to change"
//	@Success	200	{object}	WebhookResponse
//	@Failure	404	{object}	ErrorResponse	"webhook_not_found"
//	@Router		/admin/webhooks/{id} [patch]
func (h *Webhooks) Update(c *echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req WebhookPatch
	if err := bind(c, &req); err != nil {
		return err
	}
	ep, err := h.hooks.Update(c.Request().Context(), id, services.WebhookChange{URL: req.URL, Description: req.Description, Events: req.Events, Disabled: req.Disabled})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toWebhook(ep))
}

// Rotate gives an endpoint a new secret.
//
//	@Summary	Rotate a webhook endpoint's secret (platform operators)
//	@Description	Answers the new secret, once. Until the grace period ends every message carries two signatures (webhook-signature holds both, space-separated), so the receiver can switch secrets without a gap.
//	@ID	rotateWebhookSecret
//	@Tags	webhooks
//	@Security	BearerAuth
//	@Param	id	path	string	true	"endpoint id (UUID)"	format(uuid)
//	@Param	body	body	RotateWebhookRequest	true	"grace period"
//	@Success	200	{object}	WebhookSecretResponse
//	@Failure	404	{object}	ErrorResponse	"webhook_not_found"
//	@Router		/admin/webhooks/{id}/rotate-secret [post]
func (h *Webhooks) Rotate(c *echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req RotateWebhookRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	var grace *time.Duration
	if req.GracePeriod != nil {
		g := time.Duration(*req.GracePeriod) * time.Second
		grace = &g
	}
	ep, secret, err := h.hooks.Rotate(c.Request().Context(), id, grace)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, WebhookSecretResponse{WebhookResponse: toWebhook(ep), Secret: secret})
}

// Delete removes an endpoint.
//
//	@Summary	Delete a webhook endpoint (platform operators)
//	@Description	With its messages, delivered or not.
//	@ID	deleteWebhook
//	@Tags	webhooks
//	@Security	BearerAuth
//	@Param	id	path	string	true	"endpoint id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	404	{object}	ErrorResponse	"webhook_not_found"
//	@Router		/admin/webhooks/{id} [delete]
func (h *Webhooks) Delete(c *echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	if err := h.hooks.Delete(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Messages is an endpoint's delivery log.
//
//	@Summary	An endpoint's delivery log (platform operators)
//	@Description	The newest 100 messages with their status, attempts and the endpoint's last answer.
//	@ID	listWebhookMessages
//	@Tags	webhooks
//	@Security	BearerAuth
//	@Param	id	path	string	true	"endpoint id (UUID)"	format(uuid)
//	@Success	200	{object}	WebhookMessageList
//	@Failure	404	{object}	ErrorResponse	"webhook_not_found"
//	@Router		/admin/webhooks/{id}/messages [get]
func (h *Webhooks) Messages(c *echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	ms, err := h.hooks.Messages(c.Request().Context(), id, 100)
	if err != nil {
		return err
	}
	out := WebhookMessageList{Data: make([]WebhookMessageResponse, 0, len(ms))}
	for _, m := range ms {
		out.Data = append(out.Data, WebhookMessageResponse{ID: m.ID, EventType: m.EventType, Status: m.Status, Attempts: m.Attempts,
			NextAttemptAt: m.NextAttemptAt, LastStatus: m.LastStatus, LastError: m.LastError, CreatedAt: m.CreatedAt, DeliveredAt: m.DeliveredAt, Payload: m.Payload})
	}
	return c.JSON(http.StatusOK, out)
}

// Retry sends a message again.
//
//	@Summary	Send a webhook message again (platform operators)
//	@Description	A pending or dead message is sent now, with a fresh count of attempts. A delivered one is not (404).
//	@ID	retryWebhookMessage
//	@Tags	webhooks
//	@Security	BearerAuth
//	@Param	id	path	string	true	"endpoint id (UUID)"	format(uuid)
//	@Param	msg	path	string	true	"message id (msg_...)"
//	@Success	202
//	@Failure	404	{object}	ErrorResponse	"webhook_message_not_found"
//	@Router		/admin/webhooks/{id}/messages/{msg}/retry [post]
func (h *Webhooks) Retry(c *echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	msg := c.Param("msg")
	if len(msg) > 64 || !strings.HasPrefix(msg, "msg_") {
		return validationError("msg", "is not a message id")
	}
	if err := h.hooks.Retry(c.Request().Context(), id, msg); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}
