package handlers

import (
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// OAuth serves the OAuth 2.0 client credentials grant (RFC 6749 section
// 4.4), token revocation (RFC 7009), introspection (RFC 7662), server
// metadata (RFC 8414) and the admin API for clients.
type OAuth struct {
	clients *services.Clients
	baseURL string
	captcha *services.Captcha
}

// NewOAuth builds the OAuth handlers; baseURL is APP_BASE_URL; captcha
// guards the token endpoint when CAPTCHA_FLOWS says so.
func NewOAuth(clients *services.Clients, baseURL string, captcha *services.Captcha) *OAuth {
	return &OAuth{clients: clients, baseURL: baseURL, captcha: captcha}
}

// ClientTokenResponse is the token endpoint's answer (RFC 6749 section 5.1).
type ClientTokenResponse struct {
	AccessToken string `json:"access_token" example:"eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6ImF0K2p3dCJ9..."`
	TokenType   string `json:"token_type" example:"Bearer"`
	ExpiresIn   int    `json:"expires_in" example:"900"`
	Scope       string `json:"scope" example:"users:read analytics:read"`
}

// OAuthErrorResponse is every error of the OAuth endpoints (RFC 6749
// section 5.2).
type OAuthErrorResponse struct {
	Error            string `json:"error" example:"invalid_client" enums:"invalid_request,invalid_client,invalid_grant,unauthorized_client,unsupported_grant_type,invalid_scope"`
	ErrorDescription string `json:"error_description" example:"Client authentication failed"`
}

var (
	errFormRequired = apperror.NewOAuth(apperror.Invalid, "invalid_request", "The body must be application/x-www-form-urlencoded")
	errTwoMethods   = apperror.NewOAuth(apperror.Invalid, "invalid_request", "Authenticate the client one way: HTTP Basic or client_id and client_secret in the body, not both")
	errNoGrantType  = apperror.NewOAuth(apperror.Invalid, "invalid_request", "grant_type is required")
	errGrantType    = apperror.NewOAuth(apperror.Invalid, "unsupported_grant_type", "Only grant_type=client_credentials is supported")
	errNoToken      = apperror.NewOAuth(apperror.Invalid, "invalid_request", "token is required")
	errRepeated     = apperror.NewOAuth(apperror.Invalid, "invalid_request", "Parameters must not be repeated")
)

// form parses the urlencoded body; RFC 6749 refuses repeated parameters.
func form(c *echo.Context) (url.Values, error) {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationForm {
		return nil, errFormRequired
	}
	if err := req.ParseForm(); err != nil {
		return nil, errFormRequired
	}
	for _, v := range req.PostForm {
		if len(v) > 1 {
			return nil, errRepeated
		}
	}
	return req.PostForm, nil
}

// client authenticates the calling client with the method it uses.
func (h *OAuth) client(c *echo.Context, f url.Values) (*services.AuthenticatedClient, error) {
	id, secret, basic := c.Request().BasicAuth()
	_, inBody := f["client_secret"]
	switch {
	case basic && inBody:
		return nil, errTwoMethods
	case basic:
		// RFC 6749 section 2.3.1: both are form-urlencoded before Basic.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		return h.clients.Authenticate(c.Request().Context(), id, secret, services.AuthBasic)
	default:
		return h.clients.Authenticate(c.Request().Context(), f.Get("client_id"), f.Get("client_secret"), services.AuthPost)
	}
}

func noStore(c *echo.Context) {
	c.Response().Header().Set("Pragma", "no-cache")
}

// Token issues an access token to a client (client credentials grant).
//
//	@Summary	Get an access token (client credentials)
//	@Description	RFC 6749 section 4.4. Authenticate with the method the client was registered with: HTTP Basic (client_secret_basic) or client_id and client_secret in the form (client_secret_post). scope is a space-separated subset of the client's scopes; omitted, all of them. The token is an RFC 9068 JWT (typ at+jwt) signed with the keys at /.well-known/jwks.json; there is no refresh token. Limited per IP and per client_id; failed client authentication counts like a failed login.
//	@ID	oauthToken
//	@Tags	oauth
//	@Accept	x-www-form-urlencoded
//	@Param	grant_type	formData	string	true	"client_credentials"	Enums(client_credentials)
//	@Param	scope	formData	string	false	"space-separated scopes"
//	@Param	client_id	formData	string	false	"client_secret_post only"
//	@Param	client_secret	formData	string	false	"client_secret_post only"
//	@Success	200	{object}	ClientTokenResponse
//	@Failure	400	{object}	OAuthErrorResponse	"invalid_request, invalid_grant, unsupported_grant_type or invalid_scope"
//	@Failure	401	{object}	OAuthErrorResponse	"invalid_client (see WWW-Authenticate)"
//	@Failure	429	{object}	ErrorResponse	"rate_limited, too_many_login_attempts (see Retry-After)"
//	@Router		/oauth/token [post]
func (h *OAuth) Token(c *echo.Context) error {
	noStore(c)
	f, err := form(c)
	if err != nil {
		return err
	}
	ctx, ip, id := c.Request().Context(), c.RealIP(), f.Get("client_id")
	if basic, _, ok := c.Request().BasicAuth(); ok {
		id = basic
	}
	if err := h.captcha.Check(ctx, captchaToken, ip, id, c.Request().Header.Get(CaptchaHeader)); err != nil {
		return err
	}
	ac, err := h.client(c, f)
	if err != nil {
		h.captcha.Attempted(ctx, captchaToken, ip, id)
		return err
	}
	switch f.Get("grant_type") {
	case "client_credentials":
	case "":
		return errNoGrantType
	default:
		return errGrantType
	}
	t, err := h.clients.Token(c.Request().Context(), ac, f.Get("scope"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ClientTokenResponse{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn, Scope: t.Scope})
}

// Revoke revokes a token the calling client holds.
//
//	@Summary	Revoke an access token
//	@Description	RFC 7009. The client authenticates as at the token endpoint. A revoked token is refused everywhere (shared through Redis) until it would have expired. Unknown tokens, or another client's, answer 200 too.
//	@ID	oauthRevoke
//	@Tags	oauth
//	@Accept	x-www-form-urlencoded
//	@Param	token	formData	string	true	"the access token"
//	@Param	token_type_hint	formData	string	false	"access_token"
//	@Success	200
//	@Failure	400	{object}	OAuthErrorResponse	"invalid_request"
//	@Failure	401	{object}	OAuthErrorResponse	"invalid_client (see WWW-Authenticate)"
//	@Failure	429	{object}	ErrorResponse	"rate_limited, too_many_login_attempts (see Retry-After)"
//	@Router		/oauth/revoke [post]
func (h *OAuth) Revoke(c *echo.Context) error {
	f, err := form(c)
	if err != nil {
		return err
	}
	ac, err := h.client(c, f)
	if err != nil {
		return err
	}
	if f.Get("token") == "" {
		return errNoToken
	}
	h.clients.Revoke(c.Request().Context(), ac, f.Get("token"))
	return c.NoContent(http.StatusOK)
}

// Introspect describes a token.
//
//	@Summary	Introspect a token
//	@Description	RFC 7662, for resource servers: the client authenticates as at the token endpoint. A client's or a user's access token that is valid answers active true with its claims; anything else (unknown, expired, revoked, of a disabled client) answers only active false.
//	@ID	oauthIntrospect
//	@Tags	oauth
//	@Accept	x-www-form-urlencoded
//	@Param	token	formData	string	true	"the token"
//	@Param	token_type_hint	formData	string	false	"access_token"
//	@Success	200	{object}	services.Introspection
//	@Failure	400	{object}	OAuthErrorResponse	"invalid_request"
//	@Failure	401	{object}	OAuthErrorResponse	"invalid_client (see WWW-Authenticate)"
//	@Failure	429	{object}	ErrorResponse	"rate_limited, too_many_login_attempts (see Retry-After)"
//	@Router		/oauth/introspect [post]
func (h *OAuth) Introspect(c *echo.Context) error {
	noStore(c)
	f, err := form(c)
	if err != nil {
		return err
	}
	if _, err := h.client(c, f); err != nil {
		return err
	}
	if f.Get("token") == "" {
		return errNoToken
	}
	out, err := h.clients.Introspect(c.Request().Context(), f.Get("token"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// Metadata describes the authorization server.
//
//	@Summary	OAuth authorization server metadata
//	@Description	RFC 8414: endpoints, JWKS, grant types, client authentication methods and scopes.
//	@ID	oauthMetadata
//	@Tags	oauth
//	@Success	200	{object}	services.Metadata
//	@Router		/.well-known/oauth-authorization-server [get]
func (h *OAuth) Metadata(c *echo.Context) error {
	return c.JSON(http.StatusOK, h.clients.Metadata(h.baseURL))
}

// CreateClientRequest registers a client.
type CreateClientRequest struct {
	Name string `json:"name" validate:"required,max=100" example:"billing sync"`
	// A subset of the scopes your role implies.
	Scopes []string `json:"scopes" example:"users:read"`
	// The aud of its tokens; default JWT_AUDIENCE (this API). Tokens for another audience are not accepted here.
	Audience string `json:"audience,omitempty" example:"tollgate-api"`
	// Seconds an access token lives; default 900, at most 86400.
	AccessTokenTTL int `json:"access_token_ttl,omitempty" example:"900"`
	// How the client authenticates at the token endpoint; default client_secret_basic.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty" enums:"client_secret_basic,client_secret_post"`
}

// ClientResponse is a client as lists show it: never its secret.
type ClientResponse struct {
	ID                      uuid.UUID  `json:"id" format:"uuid"`
	ClientID                string     `json:"client_id" example:"tgc_4kT0c2vLr8yQ1aZx9WmNpB"`
	OwnerID                 uuid.UUID  `json:"owner_id" format:"uuid"`
	OrgID                   uuid.UUID  `json:"org_id" format:"uuid"` // the one organization it acts in
	Name                    string     `json:"name" example:"billing sync"`
	Scopes                  []string   `json:"scopes" example:"users:read"`
	Audience                string     `json:"audience" example:"tollgate-api"`
	AccessTokenTTL          int        `json:"access_token_ttl" example:"900"`
	TokenEndpointAuthMethod string     `json:"token_endpoint_auth_method" example:"client_secret_basic"`
	CreatedAt               time.Time  `json:"created_at" format:"date-time"`
	DisabledAt              *time.Time `json:"disabled_at,omitempty" format:"date-time"`
	// Until when the secret replaced by the last rotation still works.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty" format:"date-time"`
}

// ClientSecretResponse is a client with its secret: the register and
// rotate answers, the only time the secret is shown.
type ClientSecretResponse struct {
	ClientResponse
	ClientSecret string `json:"client_secret" example:"Jm3q...43 characters"`
}

// ClientPage is a page of clients.
type ClientPage = Paginated[ClientResponse]

func toClient(m *models.OAuthClient) ClientResponse {
	scopes, _, _ := caller.ParseScopes(m.Scopes)
	out := ClientResponse{ID: m.ID, ClientID: m.ClientID, OwnerID: m.OwnerID, OrgID: m.OrgID, Name: m.Name, Scopes: []string{}, Audience: m.Audience,
		AccessTokenTTL: m.TokenTTLSeconds, TokenEndpointAuthMethod: m.AuthMethod, CreatedAt: m.CreatedAt, DisabledAt: m.DisabledAt,
		PreviousSecretExpiresAt: m.PreviousExpiresAt}
	for _, s := range scopes {
		out.Scopes = append(out.Scopes, string(s))
	}
	return out
}

// CreateClient registers a client owned by the calling admin.
//
//	@Summary	Register an OAuth client (admin)
//	@Description	The client acts for you with a subset of your scopes, cut at every use to what your role still allows. client_secret is shown once, in this answer.
//	@ID	createOAuthClient
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	body	body	CreateClientRequest	true	"the client"
//	@Success	201	{object}	ClientSecretResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, invalid_json"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Router		/admin/oauth/clients [post]
func (h *OAuth) CreateClient(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	in, err := newClient(c)
	if err != nil {
		return err
	}
	m, secret, err := h.clients.Register(c.Request().Context(), cl, in, c.RealIP())
	return withSecret(c, http.StatusCreated, m, secret, err)
}

func newClient(c *echo.Context) (services.NewClient, error) {
	var req CreateClientRequest
	if err := bind(c, &req); err != nil {
		return services.NewClient{}, err
	}
	scopes, err := parseScopes(req.Scopes)
	if err != nil {
		return services.NewClient{}, err
	}
	return services.NewClient{
		Name: req.Name, Scopes: scopes, Audience: req.Audience, TokenTTL: time.Duration(req.AccessTokenTTL) * time.Second,
		AuthMethod: req.TokenEndpointAuthMethod,
	}, nil
}

// withSecret answers a new or rotated secret: once, never cached.
func withSecret(c *echo.Context, status int, m *models.OAuthClient, secret string, err error) error {
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(status, ClientSecretResponse{ClientResponse: toClient(m), ClientSecret: secret})
}

// ListClients lists every client, newest first.
//
//	@Summary	List OAuth clients (admin)
//	@ID	listOAuthClients
//	@Tags	admin
//	@Security	BearerAuth
//	@Success	200	{object}	ClientPage
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Router		/admin/oauth/clients [get]
func (h *OAuth) ListClients(c *echo.Context) error {
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := h.clients.List(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(page, p, toClient))
}

// RotateClientSecret gives a client a new secret.
//
//	@Summary	Rotate an OAuth client's secret (admin)
//	@Description	Answers the new secret, once. The old one keeps working for grace_period seconds (default 24 h), so both are valid during the overlap.
//	@ID	rotateOAuthClientSecret
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	id	path	string	true	"client row id (UUID)"	format(uuid)
//	@Param	body	body	RotateAPIKeyRequest	false	"grace period"
//	@Success	200	{object}	ClientSecretResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Failure	404	{object}	ErrorResponse	"client_not_found"
//	@Failure	409	{object}	ErrorResponse	"client_disabled"
//	@Router		/admin/oauth/clients/{id}/rotate-secret [post]
func (h *OAuth) RotateClientSecret(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	grace, err := graceParam(c)
	if err != nil {
		return err
	}
	m, secret, err := h.clients.RotateSecret(c.Request().Context(), cl, id, grace, c.RealIP())
	return withSecret(c, http.StatusOK, m, secret, err)
}

// DisableClient stops a client and its tokens.
//
//	@Summary	Disable an OAuth client (admin)
//	@Description	At once: no new tokens, and its tokens are refused. Disabling a disabled client answers 204 again.
//	@ID	disableOAuthClient
//	@Tags	admin
//	@Security	BearerAuth
//	@Param	id	path	string	true	"client row id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Failure	404	{object}	ErrorResponse	"client_not_found"
//	@Router		/admin/oauth/clients/{id} [delete]
func (h *OAuth) DisableClient(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	if err := h.clients.Disable(c.Request().Context(), cl, id, c.RealIP()); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// orgAndClient reads the caller, the organization ({id}) and its client
// ({client}).
func orgAndClient(c *echo.Context) (*caller.Caller, uuid.UUID, uuid.UUID, error) {
	cl, org, err := whoAndID(c)
	if err != nil {
		return nil, uuid.Nil, uuid.Nil, err
	}
	id, err := pathUUID(c, "client")
	if err != nil {
		return nil, uuid.Nil, uuid.Nil, err
	}
	return cl, org, id, nil
}

// CreateOrgClient registers a client of the organization.
//
//	@Summary	Register an organization's OAuth client
//	@Description	Owners and admins. The client acts in this organization only, for you, with a subset of the scopes of your role here, cut at every use to what that role still allows. client_secret is shown once, in this answer.
//	@ID	createOrgClient
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	body	body	CreateClientRequest	true	"the client"
//	@Success	201	{object}	ClientSecretResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, membership_required or user_token_required"
//	@Router		/orgs/{id}/clients [post]
func (h *OAuth) CreateOrgClient(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	in, err := newClient(c)
	if err != nil {
		return err
	}
	m, secret, err := h.clients.RegisterIn(c.Request().Context(), cl, org, in, c.RealIP())
	return withSecret(c, http.StatusCreated, m, secret, err)
}

// ListOrgClients lists the organization's clients.
//
//	@Summary	List an organization's OAuth clients
//	@Description	Owners and admins; newest first.
//	@ID	listOrgClients
//	@Tags	orgs
//	@Security	BearerAuth
//	@Success	200	{object}	ClientPage
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions or user_token_required"
//	@Router		/orgs/{id}/clients [get]
func (h *OAuth) ListOrgClients(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	p, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := h.clients.ListIn(c.Request().Context(), cl, org, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(page, p, toClient))
}

// RotateOrgClientSecret gives the organization's client a new secret.
//
//	@Summary	Rotate an organization's OAuth client secret
//	@Description	Owners and admins. Answers the new secret, once; the old one keeps working for grace_period seconds (default 24 h).
//	@ID	rotateOrgClientSecret
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	client	path	string	true	"client row id"	format(uuid)
//	@Param	body	body	RotateAPIKeyRequest	false	"grace period"
//	@Success	200	{object}	ClientSecretResponse
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions or user_token_required"
//	@Failure	404	{object}	ErrorResponse	"org_not_found or client_not_found"
//	@Failure	409	{object}	ErrorResponse	"client_disabled"
//	@Router		/orgs/{id}/clients/{client}/rotate-secret [post]
func (h *OAuth) RotateOrgClientSecret(c *echo.Context) error {
	cl, org, id, err := orgAndClient(c)
	if err != nil {
		return err
	}
	grace, err := graceParam(c)
	if err != nil {
		return err
	}
	m, secret, err := h.clients.RotateSecretIn(c.Request().Context(), cl, org, id, grace, c.RealIP())
	return withSecret(c, http.StatusOK, m, secret, err)
}

// DisableOrgClient stops the organization's client and its tokens.
//
//	@Summary	Disable an organization's OAuth client
//	@Description	Owners and admins. At once: no new tokens, and its tokens are refused. Disabling twice answers 204 again.
//	@ID	disableOrgClient
//	@Tags	orgs
//	@Security	BearerAuth
//	@Param	client	path	string	true	"client row id"	format(uuid)
//	@Success	204
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions or user_token_required"
//	@Failure	404	{object}	ErrorResponse	"org_not_found or client_not_found"
//	@Router		/orgs/{id}/clients/{client} [delete]
func (h *OAuth) DisableOrgClient(c *echo.Context) error {
	cl, org, id, err := orgAndClient(c)
	if err != nil {
		return err
	}
	if err := h.clients.DisableIn(c.Request().Context(), cl, org, id, c.RealIP()); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
