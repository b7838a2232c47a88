package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// APIKeys serves API key management: a user's own keys, and every key for
// admins.
type APIKeys struct{ keys *services.APIKeys }

// NewAPIKeys builds the API key handlers.
func NewAPIKeys(keys *services.APIKeys) *APIKeys { return &APIKeys{keys: keys} }

// CreateAPIKeyRequest describes a new key.
type CreateAPIKeyRequest struct {
	Name string `json:"name" validate:"required,max=100" example:"nightly export"`
	// A subset of the scopes the caller's role implies.
	Scopes []string `json:"scopes" example:"users:read"`
	// When the key dies; at most API_KEY_MAX_LIFETIME away (the default).
	ExpiresAt *time.Time `json:"expires_at,omitempty" format:"date-time"`
	// Addresses or ranges the key may be used from; empty: anywhere.
	AllowedCIDRs []string `json:"allowed_cidrs,omitempty" example:"203.0.113.0/24"`
	// The key's own limit, below its owner's tier (LIMIT/WINDOW); empty: the tier's.
	RateLimit string `json:"rate_limit,omitempty" example:"100/1m"`
}

// RotateAPIKeyRequest sets how long the old secret keeps working.
type RotateAPIKeyRequest struct {
	// Seconds the old secret keeps working (default API_KEY_ROTATION_GRACE, 24 h; at most 7 days).
	GracePeriod *int64 `json:"grace_period,omitempty" example:"86400" minimum:"0"`
}

// APIKeyResponse is a key as lists show it: never its secret.
type APIKeyResponse struct {
	ID           uuid.UUID  `json:"id" format:"uuid"`
	UserID       uuid.UUID  `json:"user_id" format:"uuid"`
	OrgID        uuid.UUID  `json:"org_id" format:"uuid"` // the one organization it acts in
	Name         string     `json:"name" example:"nightly export"`
	Start        string     `json:"start" example:"tg_live_3xAm"` // the first characters, to tell keys apart
	Scopes       []string   `json:"scopes" example:"users:read"`
	AllowedCIDRs []string   `json:"allowed_cidrs"`
	RateLimit    string     `json:"rate_limit,omitempty" example:"100/1m"`
	CreatedAt    time.Time  `json:"created_at" format:"date-time"`
	LastUsedAt   *time.Time `json:"last_used_at" format:"date-time" extensions:"x-nullable"` // null until first used
	ExpiresAt    *time.Time `json:"expires_at" format:"date-time" extensions:"x-nullable"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty" format:"date-time"`
	// Until when the secret replaced by the last rotation still works.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty" format:"date-time"`
}

// APIKeySecretResponse is a key with its secret: the create and rotate
// answers, the only time the secret is shown.
type APIKeySecretResponse struct {
	APIKeyResponse
	Key string `json:"key" example:"tg_live_3xAmP1eKeyOfThirtyTwoCharactersQz09aB"`
}

func toAPIKey(k *models.APIKey) APIKeyResponse {
	scopes := strings.Fields(k.Scopes)
	cidrs := []string{}
	if k.AllowedCIDRs != "" {
		cidrs = strings.Split(k.AllowedCIDRs, ",")
	}
	return APIKeyResponse{
		ID: k.ID, UserID: k.UserID, OrgID: k.OrgID, Name: k.Name, Start: k.Start, Scopes: scopes, AllowedCIDRs: cidrs, RateLimit: k.RateLimit,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt,
		PreviousSecretExpiresAt: k.PreviousExpiresAt,
	}
}

// Create makes an API key for the caller.
//
//	@Summary	Create an API key
//	@Description	The key is shown once, in this answer. Its scopes must be among those the caller's role implies; a key never outlives API_KEY_MAX_LIFETIME. Needs a user's access token: a key cannot make keys.
//	@ID	createAPIKey
//	@Tags	api-keys
//	@Security	BearerAuth
//	@Param	body	body	CreateAPIKeyRequest	true	"the key"
//	@Success	201	{object}	APIKeySecretResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, invalid_json"
//	@Failure	409	{object}	ErrorResponse	"api_key_limit: API_KEY_MAX_PER_USER live keys already"
//	@Router		/api-keys [post]
func (h *APIKeys) Create(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req CreateAPIKeyRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	scopes, err := parseScopes(req.Scopes)
	if err != nil {
		return err
	}
	k, secret, err := h.keys.Create(c.Request().Context(), cl, services.NewAPIKey{
		Name: req.Name, Scopes: scopes, ExpiresAt: req.ExpiresAt, AllowedCIDRs: req.AllowedCIDRs, RateLimit: req.RateLimit,
	}, c.RealIP())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, APIKeySecretResponse{APIKeyResponse: toAPIKey(k), Key: secret})
}

// List returns the caller's keys, newest first.
//
//	@Summary	List your API keys
//	@Description	Newest first, revoked and expired ones included; never the secrets.
//	@ID	listAPIKeys
//	@Tags	api-keys
//	@Security	BearerAuth
//	@Success	200	{object}	APIKeyPage
//	@Router		/api-keys [get]
func (h *APIKeys) List(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	return h.list(c, services.KeyFilter{UserID: &cl.ID, OrgID: &cl.OrgID})
}

// ListAll returns every user's keys, or one user's with ?user_id=.
//
//	@Summary	List API keys of every user (admin)
//	@Description	Newest first; filter by owner with user_id.
//	@ID	listAllAPIKeys
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	user_id	query	string	false	"only this user's keys"	format(uuid)
//	@Success	200	{object}	APIKeyPage
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Router		/admin/api-keys [get]
func (h *APIKeys) ListAll(c *echo.Context) error {
	f := services.KeyFilter{}
	if raw := c.QueryParam("user_id"); raw != "" {
		id, err := uuid.Parse(raw)
		if err != nil {
			return validationError("user_id", "must be a UUID")
		}
		f.UserID = &id
	}
	return h.list(c, f)
}

func (h *APIKeys) list(c *echo.Context, f services.KeyFilter) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := h.keys.List(c.Request().Context(), f, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(page, p, toAPIKey))
}

// Revoke ends one of the caller's keys at once.
//
//	@Summary	Revoke an API key
//	@Description	At once, its rotated-out secret too. Revoking a revoked key answers 204 again.
//	@ID	revokeAPIKey
//	@Tags	api-keys
//	@Security	BearerAuth
//	@Param	id	path	string	true	"key id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	404	{object}	ErrorResponse	"api_key_not_found"
//	@Router		/api-keys/{id} [delete]
func (h *APIKeys) Revoke(c *echo.Context) error { return h.revoke(c, false) }

// RevokeAny ends anyone's key (admins).
//
//	@Summary	Revoke any API key (admin)
//	@ID	revokeAnyAPIKey
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	id	path	string	true	"key id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Failure	404	{object}	ErrorResponse	"api_key_not_found"
//	@Router		/admin/api-keys/{id} [delete]
func (h *APIKeys) RevokeAny(c *echo.Context) error { return h.revoke(c, true) }

func (h *APIKeys) revoke(c *echo.Context, anyOwner bool) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	if err := h.keys.Revoke(c.Request().Context(), cl, id, anyOwner, c.RealIP()); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Rotate gives one of the caller's keys a new secret.
//
//	@Summary	Rotate an API key's secret
//	@Description	Answers the new secret, once. The old secret keeps working for grace_period seconds (default 24 h), then dies; settings, scopes and id stay.
//	@ID	rotateAPIKey
//	@Tags	api-keys
//	@Security	BearerAuth
//	@Param	id	path	string	true	"key id (UUID)"	format(uuid)
//	@Param	body	body	RotateAPIKeyRequest	false	"grace period"
//	@Success	200	{object}	APIKeySecretResponse
//	@Failure	404	{object}	ErrorResponse	"api_key_not_found"
//	@Failure	409	{object}	ErrorResponse	"api_key_inactive"
//	@Router		/api-keys/{id}/rotate [post]
func (h *APIKeys) Rotate(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	grace, err := graceParam(c)
	if err != nil {
		return err
	}
	k, secret, err := h.keys.Rotate(c.Request().Context(), cl, id, grace, c.RealIP())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, APIKeySecretResponse{APIKeyResponse: toAPIKey(k), Key: secret})
}

// parseScopes reads requested scope names, sorted and without repeats.
func parseScopes(names []string) ([]caller.Scope, error) {
	scopes, unknown, ok := caller.ParseScopes(strings.Join(names, " "))
	if !ok {
		return nil, validationError("scopes", "unknown scope "+unknown+"; known: "+caller.FormatScopes(caller.AllScopes()))
	}
	return scopes, nil
}

// graceParam reads an optional {"grace_period": seconds} body.
func graceParam(c *echo.Context) (*time.Duration, error) {
	var req RotateAPIKeyRequest
	if c.Request().ContentLength != 0 {
		if err := bind(c, &req); err != nil {
			return nil, err
		}
	}
	if req.GracePeriod == nil {
		return nil, nil
	}
	if *req.GracePeriod < 0 || *req.GracePeriod > int64(services.MaxRotationGrace/time.Second) {
		return nil, validationError("grace_period", "must be between 0 and 604800 seconds")
	}
	g := time.Duration(*req.GracePeriod) * time.Second
	return &g, nil
}
