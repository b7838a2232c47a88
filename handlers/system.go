package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/services"
)

// System serves status, probes and the JWKS.
type System struct {
	version string
	health  *services.Health
	tokens  *services.Tokens
}

// NewSystem builds the system handlers.
func NewSystem(version string, health *services.Health, tokens *services.Tokens) *System {
	return &System{version: version, health: health, tokens: tokens}
}

// StatusResponse is the public status.
type StatusResponse struct {
	Status  string `json:"status" example:"ok"`
	Version string `json:"version" example:"0.1.0"`
}

// Status says the API is up.
//
//	@Summary	Public status
//	@Tags		public
//	@Produce	json
//	@Success	200	{object}	StatusResponse
//	@Failure	429	{object}	ErrorResponse
//	@Router		/public/status [get]
func (h *System) Status(c *echo.Context) error {
	return c.JSON(http.StatusOK, StatusResponse{Status: "ok", Version: h.version})
}

// Healthz answers while the process runs (liveness).
func (h *System) Healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, StatusResponse{Status: "ok", Version: h.version})
}

// ReadyResponse lists each dependency's state.
type ReadyResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// Readyz answers 200 when every dependency answers, else 503 naming them.
func (h *System) Readyz(c *echo.Context) error {
	checks, down := h.health.Ready(c.Request().Context())
	if len(down) > 0 {
		return &apperror.Error{Kind: apperror.Unavailable, Code: "not_ready",
			Message: "Not ready: " + strings.Join(down, ", ") + " unreachable", Details: checks}
	}
	return c.JSON(http.StatusOK, ReadyResponse{Status: "ready", Checks: checks})
}

// JWKS publishes the public keys access tokens are signed with.
//
//	@Summary		Public signing keys
//	@Description	JSON Web Key Set (RFC 7517) with every key whose tokens are still accepted.
//	@Tags			public
//	@Produce		json
//	@Success		200	{object}	services.JWKS
//	@Failure		429	{object}	ErrorResponse
//	@Router			/.well-known/jwks.json [get]
func (h *System) JWKS(c *echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, h.tokens.JWKS())
}
