package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// SSO serves organizations' enterprise sign-in: their connections and
// domains (owners and admins), discovery and the sign-in itself (anyone).
type SSO struct {
	fed     *services.Federation
	binding flowBinding
}

// NewSSO builds the enterprise sign-in handlers.
func NewSSO(f *Federation) *SSO {
	return &SSO{fed: f.fed, binding: flowBinding{path: "/auth/sso/", secure: f.binding.secure, crossSite: true}}
}

// ConnectionRequest creates or changes an SSO connection; on a change,
// absent fields stay and the kind cannot change.
type ConnectionRequest struct {
	Kind string `json:"kind,omitempty" validate:"omitempty,oneof=oidc saml" example:"saml" enums:"oidc,saml"`
	Name string `json:"name,omitempty" validate:"max=100" example:"Okta"`
	// OpenID Connect: the issuer (discovery) and the client registered there.
	Issuer       string `json:"issuer,omitempty" validate:"max=2000" example:"https://acme.okta.com"`
	ClientID     string `json:"client_id,omitempty" validate:"max=500"`
	ClientSecret string `json:"client_secret,omitempty" validate:"max=500"`
	// Beyond openid, email and profile: "groups" for Okta's groups claim.
	Scopes []string `json:"scopes,omitempty" example:"groups"`
	// SAML: the IdP's metadata, as XML or a URL to fetch it from (once).
	MetadataXML       string `json:"metadata_xml,omitempty" validate:"max=1000000"`
	MetadataURL       string `json:"metadata_url,omitempty" validate:"max=2000"`
	AllowIdPInitiated *bool  `json:"allow_idp_initiated,omitempty"`
	Enabled           *bool  `json:"enabled,omitempty"`
	// Attribute (SAML) or claim (OIDC) names; empty: the usual ones.
	EmailAttribute  *string `json:"email_attribute,omitempty" validate:"omitempty,max=200"`
	NameAttribute   *string `json:"name_attribute,omitempty" validate:"omitempty,max=200"`
	GroupsAttribute *string `json:"groups_attribute,omitempty" validate:"omitempty,max=200" example:"groups"`
	// Group -> role (viewer, editor, admin), applied at every sign-in.
	RoleMapping map[string]string `json:"role_mapping,omitempty" example:"engineering:editor"`
	// The role of a member in no mapped group; "" refuses them.
	DefaultRole *string `json:"default_role,omitempty" example:"viewer"`
}

func (r ConnectionRequest) input() services.ConnectionInput {
	return services.ConnectionInput{Kind: r.Kind, Name: r.Name, Enabled: r.Enabled, AllowIdPInitiated: r.AllowIdPInitiated, Issuer: r.Issuer,
		ClientID: r.ClientID, ClientSecret: r.ClientSecret, Scopes: r.Scopes, MetadataXML: r.MetadataXML, MetadataURL: r.MetadataURL, EmailAttribute: r.EmailAttribute,
		NameAttribute: r.NameAttribute, GroupsAttribute: r.GroupsAttribute, DefaultRole: r.DefaultRole, RoleMapping: r.RoleMapping}
}

// ConnectionResponse is a connection (never its client secret).
type ConnectionResponse struct {
	ID                uuid.UUID         `json:"id" format:"uuid"`
	OrgID             uuid.UUID         `json:"org_id" format:"uuid"`
	Kind              string            `json:"kind" example:"saml"`
	Name              string            `json:"name" example:"Okta"`
	Enabled           bool              `json:"enabled"`
	Issuer            string            `json:"issuer,omitempty"`
	ClientID          string            `json:"client_id,omitempty"`
	HasClientSecret   bool              `json:"has_client_secret"`
	Scopes            []string          `json:"scopes,omitempty"`
	IdPEntityID       string            `json:"idp_entity_id,omitempty"`
	AllowIdPInitiated bool              `json:"allow_idp_initiated"`
	EmailAttribute    string            `json:"email_attribute"`
	NameAttribute     string            `json:"name_attribute"`
	GroupsAttribute   string            `json:"groups_attribute"`
	RoleMapping       map[string]string `json:"role_mapping"`
	DefaultRole       string            `json:"default_role"`
	// What the IdP needs: the SP's entity id and metadata, the ACS (SAML)
	// or the redirect URI (OIDC); and where a login button starts.
	SPMetadataURL string    `json:"sp_metadata_url,omitempty"`
	ACSURL        string    `json:"acs_url,omitempty"`
	RedirectURI   string    `json:"redirect_uri,omitempty"`
	StartURL      string    `json:"start_url"`
	CreatedAt     time.Time `json:"created_at" format:"date-time"`
	UpdatedAt     time.Time `json:"updated_at" format:"date-time"`
}

func (h *SSO) toConnection(c *services.Connection) ConnectionResponse {
	base := h.fed.SSOBase(c.ID)
	out := ConnectionResponse{ID: c.ID, OrgID: c.OrgID, Kind: c.Kind, Name: c.Name, Enabled: c.Enabled, Issuer: c.Issuer, ClientID: c.ClientID,
		HasClientSecret: c.HasClientSecret, Scopes: strings.Fields(c.Scopes), IdPEntityID: c.IdPEntityID, AllowIdPInitiated: c.AllowIdPInitiated, EmailAttribute: c.EmailAttribute,
		NameAttribute: c.NameAttribute, GroupsAttribute: c.GroupsAttribute, RoleMapping: c.Mapping, DefaultRole: c.DefaultRole,
		StartURL: base + "/start", CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.Kind == "saml" {
		out.SPMetadataURL, out.ACSURL = base+"/metadata", base+"/acs"
	} else {
		out.RedirectURI = base + "/callback"
	}
	return out
}

// ConnectionList is an organization's connections.
type ConnectionList struct {
	Data []ConnectionResponse `json:"data"`
}

// CreateConnection registers an identity provider for the organization.
//
//	@Summary	Add an SSO connection
//	@Description	Owners and admins. OpenID Connect (issuer, client_id, client_secret: stored encrypted; discovery is tried now) or SAML 2.0 (metadata_xml or metadata_url). Give the IdP the answer's acs_url and sp_metadata_url (SAML) or redirect_uri (OIDC).
//	@ID	createSSOConnection
//	@Tags	sso
//	@Security	BearerAuth
//	@Param	body	body	ConnectionRequest	true	"the connection"
//	@Success	201	{object}	ConnectionResponse
//	@Failure	400	{object}	ErrorResponse	"sso_connection_invalid, sso_discovery_failed"
//	@Router		/orgs/{id}/sso/connections [post]
func (h *SSO) CreateConnection(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	var req ConnectionRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Kind == "" {
		return validationError("kind", "oidc or saml")
	}
	conn, err := h.fed.CreateConnection(c.Request().Context(), cl, org, req.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, h.toConnection(conn))
}

// Connections lists the organization's connections.
//
//	@Summary	List SSO connections
//	@ID	listSSOConnections
//	@Tags	sso
//	@Security	BearerAuth
//	@Success	200	{object}	ConnectionList
//	@Router		/orgs/{id}/sso/connections [get]
func (h *SSO) Connections(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	list, err := h.fed.Connections(c.Request().Context(), cl, org)
	if err != nil {
		return err
	}
	out := ConnectionList{Data: make([]ConnectionResponse, 0, len(list))}
	for _, x := range list {
		out.Data = append(out.Data, h.toConnection(x))
	}
	return c.JSON(http.StatusOK, out)
}

// Connection shows one connection.
//
//	@Summary	Get an SSO connection
//	@ID	getSSOConnection
//	@Tags	sso
//	@Security	BearerAuth
//	@Success	200	{object}	ConnectionResponse
//	@Failure	404	{object}	ErrorResponse	"sso_connection_not_found"
//	@Router		/orgs/{id}/sso/connections/{conn} [get]
func (h *SSO) Connection(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	id, err := pathUUID(c, "conn")
	if err != nil {
		return err
	}
	conn, err := h.fed.GetConnection(c.Request().Context(), cl, org, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.toConnection(conn))
}

// UpdateConnection changes a connection.
//
//	@Summary	Update an SSO connection
//	@ID	updateSSOConnection
//	@Tags	sso
//	@Security	BearerAuth
//	@Param	body	body	ConnectionRequest	true	"fields to change"
//	@Success	200	{object}	ConnectionResponse
//	@Failure	400	{object}	ErrorResponse	"sso_connection_invalid, sso_discovery_failed"
//	@Failure	404	{object}	ErrorResponse	"sso_connection_not_found"
//	@Router		/orgs/{id}/sso/connections/{conn} [patch]
func (h *SSO) UpdateConnection(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	id, err := pathUUID(c, "conn")
	if err != nil {
		return err
	}
	var req ConnectionRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	conn, err := h.fed.UpdateConnection(c.Request().Context(), cl, org, id, req.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.toConnection(conn))
}

// DeleteConnection removes a connection and the sign-ins linked through it.
//
//	@Summary	Delete an SSO connection
//	@ID	deleteSSOConnection
//	@Tags	sso
//	@Security	BearerAuth
//	@Success	204
//	@Failure	404	{object}	ErrorResponse	"sso_connection_not_found"
//	@Router		/orgs/{id}/sso/connections/{conn} [delete]
func (h *SSO) DeleteConnection(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	id, err := pathUUID(c, "conn")
	if err != nil {
		return err
	}
	if err := h.fed.DeleteConnection(c.Request().Context(), cl, org, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// DomainRequest claims a domain.
type DomainRequest struct {
	Domain string `json:"domain" validate:"required,max=253" example:"acme.com"`
}

// DomainResponse is a claimed domain and the TXT record that proves it.
type DomainResponse struct {
	ID         uuid.UUID  `json:"id" format:"uuid"`
	Domain     string     `json:"domain" example:"acme.com"`
	Verified   bool       `json:"verified"`
	VerifiedAt *time.Time `json:"verified_at,omitempty" format:"date-time"`
	// Publish TXTValue at TXTName, then POST .../verify.
	TXTName   string    `json:"txt_name" example:"_tollgate-challenge.acme.com"`
	TXTValue  string    `json:"txt_value" example:"tollgate-domain-verification=3q2-7wE..."`
	CreatedAt time.Time `json:"created_at" format:"date-time"`
}

func toDomain(d *models.OrgDomain) DomainResponse {
	name, value := services.DomainRecord(d)
	return DomainResponse{ID: d.ID, Domain: d.Domain, Verified: d.VerifiedAt != nil, VerifiedAt: d.VerifiedAt, TXTName: name, TXTValue: value, CreatedAt: d.CreatedAt}
}

// DomainList is an organization's domains.
type DomainList struct {
	Data []DomainResponse `json:"data"`
}

// AddDomain claims a domain for the organization.
//
//	@Summary	Claim a domain
//	@Description	Owners and admins. Answers the TXT record to publish; the domain counts (discovery, SSO sign-ins) once verified.
//	@ID	addDomain
//	@Tags	sso
//	@Security	BearerAuth
//	@Param	body	body	DomainRequest	true	"the domain"
//	@Success	201	{object}	DomainResponse
//	@Failure	400	{object}	ErrorResponse	"invalid_domain"
//	@Router		/orgs/{id}/domains [post]
func (h *SSO) AddDomain(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	var req DomainRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	d, err := h.fed.AddDomain(c.Request().Context(), cl, org, req.Domain)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toDomain(d))
}

// Domains lists the organization's domains.
//
//	@Summary	List domains
//	@ID	listDomains
//	@Tags	sso
//	@Security	BearerAuth
//	@Success	200	{object}	DomainList
//	@Router		/orgs/{id}/domains [get]
func (h *SSO) Domains(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	list, err := h.fed.Domains(c.Request().Context(), cl, org)
	if err != nil {
		return err
	}
	out := DomainList{Data: make([]DomainResponse, 0, len(list))}
	for i := range list {
		out.Data = append(out.Data, toDomain(&list[i]))
	}
	return c.JSON(http.StatusOK, out)
}

// VerifyDomain checks the domain's TXT record.
//
//	@Summary	Verify a domain
//	@Description	Looks up the TXT record; 409 when another organization verified the domain first.
//	@ID	verifyDomain
//	@Tags	sso
//	@Security	BearerAuth
//	@Success	200	{object}	DomainResponse
//	@Failure	400	{object}	ErrorResponse	"domain_not_verified"
//	@Failure	404	{object}	ErrorResponse	"domain_not_found"
//	@Failure	409	{object}	ErrorResponse	"domain_taken"
//	@Router		/orgs/{id}/domains/{domain}/verify [post]
func (h *SSO) VerifyDomain(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	id, err := pathUUID(c, "domain")
	if err != nil {
		return err
	}
	d, err := h.fed.VerifyDomain(c.Request().Context(), cl, org, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDomain(d))
}

// RemoveDomain gives up a domain.
//
//	@Summary	Remove a domain
//	@ID	removeDomain
//	@Tags	sso
//	@Security	BearerAuth
//	@Success	204
//	@Failure	404	{object}	ErrorResponse	"domain_not_found"
//	@Router		/orgs/{id}/domains/{domain} [delete]
func (h *SSO) RemoveDomain(c *echo.Context) error {
	cl, org, err := whoAndID(c)
	if err != nil {
		return err
	}
	id, err := pathUUID(c, "domain")
	if err != nil {
		return err
	}
	if err := h.fed.RemoveDomain(c.Request().Context(), cl, org, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// DiscoverRequest is the address a person is about to sign in with.
type DiscoverRequest struct {
	Email string `json:"email" validate:"required,max=254" example:"marta@acme.com"`
}

// DiscoverResponse names the connection to sign in through.
type DiscoverResponse struct {
	ConnectionID uuid.UUID `json:"connection_id" format:"uuid"`
	Kind         string    `json:"kind" example:"saml"`
	Name         string    `json:"name" example:"Okta"`
	// Enforced: this organization's members cannot sign in otherwise.
	Enforced bool `json:"enforced"`
	// Send the browser here, with ?redirect_uri= (one of OAUTH_REDIRECT_URIS).
	StartURL string `json:"start_url"`
}

// Discover finds the SSO connection for an address (home-realm discovery).
//
//	@Summary	Find the SSO for an address
//	@Description	For a login screen: an address in a domain an organization verified names its connection; 404 sso_not_found means sign in another way.
//	@ID	discoverSSO
//	@Tags	auth
//	@Param	body	body	DiscoverRequest	true	"the address"
//	@Success	200	{object}	DiscoverResponse
//	@Failure	404	{object}	ErrorResponse	"sso_not_found"
//	@Router		/auth/sso/discover [post]
func (h *SSO) Discover(c *echo.Context) error {
	var req DiscoverRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	d, err := h.fed.Discover(c.Request().Context(), req.Email)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, DiscoverResponse{ConnectionID: d.ConnectionID, Kind: d.Kind, Name: d.Name, Enforced: d.Enforced,
		StartURL: h.fed.SSOBase(d.ConnectionID) + "/start"})
}

// Start begins a sign-in through a connection.
//
//	@Summary	Sign in through an organization's SSO
//	@Description	Redirects (302) to the IdP: a SAML AuthnRequest (HTTP-Redirect) or an OpenID Connect authorization request with state, nonce and PKCE. Ends at redirect_uri with ?code= (for POST /auth/oauth/token) or ?error= (saml_assertion_invalid, sso_domain_not_verified, sso_no_role, id_token_invalid...).
//	@ID	startSSO
//	@Tags	auth
//	@Param	redirect_uri	query	string	true	"the front end's page to return to"
//	@Param	code_challenge	query	string	false	"base64url SHA-256 of the app's own verifier"
//	@Success	302
//	@Failure	400	{object}	ErrorResponse	"redirect_uri_not_allowed, invalid_code_challenge"
//	@Failure	404	{object}	ErrorResponse	"sso_connection_not_found"
//	@Failure	503	{object}	ErrorResponse	"provider_unavailable"
//	@Router		/auth/sso/{conn}/start [get]
func (h *SSO) Start(c *echo.Context) error {
	q := c.Request().URL.Query()
	st, err := h.fed.StartSSO(c.Request().Context(), c.Param("conn"), services.StartRequest{RedirectURI: q.Get("redirect_uri"), CodeChallenge: q.Get("code_challenge")})
	if err != nil {
		return err
	}
	h.binding.set(c, st.State, st.Browser, st.TTL)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, st.AuthURL)
}

// Callback is where an OpenID Connect IdP sends the browser back.
//
//	@Summary	SSO callback (OpenID Connect): for the IdP, not for clients
//	@ID	ssoCallback
//	@Tags	auth
//	@Success	302
//	@Failure	400	{object}	ErrorResponse	"oauth_state_invalid"
//	@Router		/auth/sso/{conn}/callback [get]
func (h *SSO) Callback(c *echo.Context) error {
	q := c.Request().URL.Query()
	in := services.Callback{Provider: "sso:" + c.Param("conn"), State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
	in.Browser = h.binding.take(c, in.State)
	to, err := h.fed.Callback(c.Request().Context(), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, to)
}

// ACS receives a SAML response (HTTP-POST binding).
//
//	@Summary	SAML assertion consumer service
//	@Description	For the IdP's form post, not for clients: checks the response (one signed assertion, audience, recipient, destination, validity, InResponseTo this browser's request, never replayed), then redirects (303) to the sign-in's redirect_uri with ?code= or ?error=. A RelayState that does not check out is 400.
//	@ID	samlACS
//	@Tags	auth
//	@Accept	x-www-form-urlencoded
//	@Param	SAMLResponse	formData	string	true	"the base64 response"
//	@Param	RelayState	formData	string	false	"the sign-in's state"
//	@Success	303
//	@Failure	400	{object}	ErrorResponse	"oauth_state_invalid"
//	@Failure	404	{object}	ErrorResponse	"sso_connection_not_found"
//	@Router		/auth/sso/{conn}/acs [post]
func (h *SSO) ACS(c *echo.Context) error {
	r := c.Request()
	in := services.ACS{Connection: c.Param("conn"), SAMLResponse: r.PostFormValue("SAMLResponse"), RelayState: r.PostFormValue("RelayState")}
	in.Browser = h.binding.take(c, in.RelayState)
	to, err := h.fed.ConsumeAssertion(r.Context(), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, to)
}

// Metadata is the SP metadata of a SAML connection, for its IdP.
//
//	@Summary	SAML service provider metadata
//	@Description	The entity id (this URL), the ACS and the NameID format, for the IdP's set-up.
//	@ID	samlMetadata
//	@Tags	auth
//	@Success	200	{string}	string	"SAML metadata XML"
//	@Failure	404	{object}	ErrorResponse	"sso_connection_not_found"
//	@Router		/auth/sso/{conn}/metadata [get]
func (h *SSO) Metadata(c *echo.Context) error {
	md, err := h.fed.SAMLMetadata(c.Request().Context(), c.Param("conn"))
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/samlmetadata+xml", md)
}
