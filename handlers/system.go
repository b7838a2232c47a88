package handlers

import (
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/product"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/services"
)

// System serves the index, status, probes and the JWKS.
type System struct {
	version string
	health  *services.Health
	tokens  *services.Tokens
	docs    bool // Swagger UI and /openapi.json are served
}

// NewSystem builds the system handlers.
func NewSystem(version string, health *services.Health, tokens *services.Tokens, docs bool) *System {
	return &System{version: version, health: health, tokens: tokens, docs: docs}
}

// IndexResponse points a visitor of / at what to read.
type IndexResponse struct {
	Name    string `json:"name" example:"Tollgate API"`
	Version string `json:"version" example:"1.2.3"`
	Docs    string `json:"docs,omitempty" example:"/swagger/index.html"`
	OpenAPI string `json:"openapi,omitempty" example:"/openapi.json"`
	Health  string `json:"health" example:"/healthz"`
}

// Index says where the documentation is.
//
//	@Summary	API index
//	@Description	Where to start: Swagger UI and the OpenAPI document (when SWAGGER_ENABLED), and the health probe. Limited per client IP.
//	@ID	getIndex
//	@Tags	public
//	@Success	200	{object}	IndexResponse
//	@Router		/ [get]
func (h *System) Index(c *echo.Context) error {
	out := IndexResponse{Name: product.Name + " API", Version: h.version, Health: "/healthz"}
	if h.docs {
		out.Docs, out.OpenAPI = "/swagger/index.html", "/openapi.json"
	}
	return c.JSON(http.StatusOK, out)
}

// StatusResponse is the public status.
type StatusResponse struct {
	Status  string `json:"status" example:"ok"`
	Version string `json:"version" example:"0.1.0"`
}

// Status says the API is up.
//
//	@Summary	Public status
//	@Description	Limited per client IP.
//	@ID	getStatus
//	@Tags	public
//	@Success	200	{object}	StatusResponse
//	@Router		/public/status [get]
func (h *System) Status(c *echo.Context) error {
	return c.JSON(http.StatusOK, StatusResponse{Status: "ok", Version: h.version})
}

// Healthz answers while the process runs (liveness).
//
//	@Summary	Liveness probe
//	@Description	200 while the process runs. Not rate limited.
//	@ID	healthz
//	@Tags	system
//	@Success	200	{object}	StatusResponse
//	@Router	/healthz [get]
func (h *System) Healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, StatusResponse{Status: "ok", Version: h.version})
}

var (
	errNotReady     = apperror.Define(apperror.Unavailable, "not_ready", "Not ready: database unreachable")
	errShuttingDown = apperror.Define(apperror.Unavailable, "shutting_down", "Shutting down")
)

// ReadyResponse lists each dependency's state. Status is "ready", or
// "degraded" when an optional dependency (Redis) is down: still ready, with
// rate limits held per instance until it returns.
type ReadyResponse struct {
	Status   string            `json:"status" example:"ready" enums:"ready,degraded"`
	Checks   map[string]string `json:"checks"`
	Degraded []string          `json:"degraded,omitempty"`
}

// Readyz answers 200 while the instance should get traffic, else 503.
//
//	@Summary	Readiness probe
//	@Description	200 when the database answers: status "ready", or "degraded" naming optional dependencies that are down (Redis: rate limits then hold per instance). 503 when the database is unreachable (not_ready) or the instance is shutting down (shutting_down: it keeps serving for SHUTDOWN_DRAIN_DELAY so load balancers move away first). Not rate limited.
//	@ID	readyz
//	@Tags	system
//	@Success	200	{object}	ReadyResponse
//	@Failure	503	{object}	ErrorResponse	"not_ready or shutting_down"
//	@Router	/readyz [get]
func (h *System) Readyz(c *echo.Context) error {
	r := h.health.Ready(c.Request().Context())
	switch {
	case r.Draining:
		e := errShuttingDown.WithMessage(errShuttingDown.Message)
		e.Details = r.Checks
		return e
	case !r.Ready:
		e := errNotReady.WithMessage("Not ready: " + strings.Join(r.Down, ", ") + " unreachable")
		e.Details = r.Checks
		return e
	case len(r.Degraded) > 0:
		return c.JSON(http.StatusOK, ReadyResponse{Status: "degraded", Checks: r.Checks, Degraded: r.Degraded})
	}
	return c.JSON(http.StatusOK, ReadyResponse{Status: "ready", Checks: r.Checks})
}

// JWKS publishes the public keys access tokens are signed with.
//
//	@Summary	Public signing keys
//	@Description	JSON Web Key Set (RFC 7517) with every key whose tokens are still accepted: verify access tokens with these, matching the token's kid. Limited per client IP.
//	@ID	getJWKS
//	@Tags	public
//	@Success	200	{object}	services.JWKS
//	@Router			/.well-known/jwks.json [get]
func (h *System) JWKS(c *echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, h.tokens.JWKS())
}
