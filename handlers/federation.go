package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/browser"
	"github.com/tollgate/tollgate/services"
)

// Federation serves sign-in through OpenID Connect providers.
type Federation struct {
	fed     *services.Federation
	baseURL string
	binding flowBinding
	cookie  cookieMode
}

// NewFederation builds the federated sign-in handlers; a sign-in asking
// for a cookie session gets cookies as described, backed by
// browserSessions.
func NewFederation(a *services.Accounts, baseURL string, cookies browser.Cookies, browserSessions *services.BrowserSessions) *Federation {
	return &Federation{fed: a.Federation, baseURL: baseURL, binding: flowBinding{path: "/auth/oauth/", secure: strings.HasPrefix(baseURL, "https://")},
		cookie: cookieMode{cookies: cookies, sessions: browserSessions}}
}

// ProviderResponse is a sign-in provider as a login screen shows it.
type ProviderResponse struct {
	Name        string `json:"name" example:"google"`
	DisplayName string `json:"display_name" example:"Google"`
	// Where the login button sends the browser (add redirect_uri).
	StartURL string `json:"start_url" example:"https://api.example.com/auth/oauth/google/start"`
}

// ProviderList is the configured providers.
type ProviderList struct {
	Data []ProviderResponse `json:"data"`
}

// Providers lists the sign-in providers.
//
//	@Summary	List sign-in providers
//	@Description	The OpenID Connect providers configured (OIDC_PROVIDERS_FILE), for a login screen's buttons.
//	@ID	listProviders
//	@Tags	auth
//	@Success	200	{object}	ProviderList
//	@Router		/auth/providers [get]
func (h *Federation) Providers(c *echo.Context) error {
	out := ProviderList{Data: []ProviderResponse{}}
	for _, p := range h.fed.Providers() {
		out.Data = append(out.Data, ProviderResponse{Name: p.Name, DisplayName: p.DisplayName, StartURL: h.baseURL + "/auth/oauth/" + p.Name + "/start"})
	}
	return c.JSON(http.StatusOK, out)
}

// flowBinding is the cookie that binds a sign-in to the browser that
// started it, named after its state (two tabs signing in at once keep
// theirs), sent back on the callback. secure: only over https (APP_BASE_URL
// says). crossSite: the IdP answers with a cross-site POST (SAML), which a
// SameSite=Lax cookie does not follow, so over https it is SameSite=None;
// over plain http (development, IdP and API on one site) Lax is what
// browsers accept.
type flowBinding struct {
	path              string
	secure, crossSite bool
}

func (b flowBinding) cookie(state, value string, maxAge int) *http.Cookie {
	sum := sha256.Sum256([]byte(state))
	ck := &http.Cookie{Name: "tollgate_oauth_" + hex.EncodeToString(sum[:8]), Value: value, Path: b.path, MaxAge: maxAge,
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode}
	if b.crossSite && b.secure {
		ck.SameSite = http.SameSiteNoneMode
	}
	return ck
}

// set binds the sign-in of state to this browser for ttl.
func (b flowBinding) set(c *echo.Context, state, value string, ttl time.Duration) {
	c.SetCookie(b.cookie(state, value, int(ttl.Seconds())))
}

// take reads the binding of state ("" when the browser sent none) and
// clears it: a sign-in's callback comes once.
func (b flowBinding) take(c *echo.Context, state string) string {
	if state == "" {
		return ""
	}
	v := ""
	if ck, err := c.Cookie(b.cookie(state, "", 0).Name); err == nil {
		v = ck.Value
	}
	c.SetCookie(b.cookie(state, "", -1))
	return v
}

// Start begins a sign-in with a provider.
//
//	@Summary	Sign in with a provider
//	@Description	Redirects (302) to the provider with state, nonce and PKCE S256. redirect_uri must be one of OAUTH_REDIRECT_URIS; the sign-in ends there with ?code= (one time, one minute, for POST /auth/oauth/token) or ?error=. A mobile app adds code_challenge (S256) and sends its verifier with the code.
//	@ID	startProviderSignIn
//	@Tags	auth
//	@Param	provider	path	string	true	"provider name"
//	@Param	redirect_uri	query	string	true	"the front end's page to return to"
//	@Param	code_challenge	query	string	false	"base64url SHA-256 of the app's own verifier"
//	@Param	login_hint	query	string	false	"the address to sign in as, passed on to the provider"
//	@Success	302
//	@Failure	400	{object}	ErrorResponse	"redirect_uri_not_allowed, invalid_code_challenge"
//	@Failure	404	{object}	ErrorResponse	"provider_not_found"
//	@Failure	503	{object}	ErrorResponse	"provider_unavailable"
//	@Router		/auth/oauth/{provider}/start [get]
func (h *Federation) Start(c *echo.Context) error {
	q := c.Request().URL.Query()
	st, err := h.fed.Start(c.Request().Context(), services.StartRequest{Provider: c.Param("provider"), RedirectURI: q.Get("redirect_uri"),
		CodeChallenge: q.Get("code_challenge"), LoginHint: q.Get("login_hint")})
	if err != nil {
		return err
	}
	h.binding.set(c, st.State, st.Browser, st.TTL)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, st.AuthURL)
}

// Callback is where the provider sends the browser back.
//
//	@Summary	Provider sign-in callback
//	@Description	For the provider, not for clients: checks the state (and that this browser started the sign-in), exchanges the code with the PKCE verifier, verifies the ID token, then redirects (302) to the redirect_uri given at the start with ?code= or ?error= (provider_error, code_exchange_failed, id_token_invalid, provider_email_unverified, identity_link_required). A state that does not check out is 400: nothing is redirected.
//	@ID	providerCallback
//	@Tags	auth
//	@Param	provider	path	string	true	"provider name"
//	@Success	302
//	@Failure	400	{object}	ErrorResponse	"oauth_state_invalid"
//	@Router		/auth/oauth/{provider}/callback [get]
func (h *Federation) Callback(c *echo.Context) error {
	q := c.Request().URL.Query()
	in := services.Callback{Provider: c.Param("provider"), State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
	in.Browser = h.binding.take(c, in.State)
	to, err := h.fed.Callback(c.Request().Context(), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, to)
}

// ProviderTokenRequest trades a sign-in's one-time code for tokens.
type ProviderTokenRequest struct {
	Code string `json:"code" validate:"required,max=200" example:"the code from the redirect"`
	// The app's PKCE verifier, when it sent code_challenge at the start.
	CodeVerifier string `json:"code_verifier,omitempty" validate:"max=200"`
	// Session cookie: as in the password login.
	Session string `json:"session,omitempty" validate:"omitempty,oneof=bearer cookie" enums:"bearer,cookie"`
}

// Token trades the one-time code for a token pair.
//
//	@Summary	Finish a provider sign-in
//	@Description	The answer of a password login: a token pair, or for an account with two-factor authentication MFAChallengeResponse, to finish at POST /auth/mfa/verify. A code works once, for a minute.
//	@ID	providerToken
//	@Tags	auth
//	@Param	body	body	ProviderTokenRequest	true	"the code"
//	@Success	200	{object}	TokenResponse
//	@Failure	400	{object}	ErrorResponse	"oauth_code_invalid, validation_failed or invalid_json"
//	@Router		/auth/oauth/token [post]
func (h *Federation) Token(c *echo.Context) error {
	var req ProviderTokenRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.cookie.start(c, req.Session); err != nil {
		return err
	}
	s, err := h.fed.Exchange(c.Request().Context(), req.Code, req.CodeVerifier, client(c))
	if err != nil {
		return err
	}
	if s.MFAToken != "" {
		return c.JSON(http.StatusOK, MFAChallengeResponse{MFARequired: true, MFAToken: s.MFAToken, ExpiresIn: 300})
	}
	return h.cookie.answer(c, s, req.Session)
}

// IdentityResponse is a provider sign-in linked to the account.
type IdentityResponse struct {
	ID            uuid.UUID `json:"id" format:"uuid"`
	Provider      string    `json:"provider" example:"google"`
	Email         string    `json:"email" example:"marta@example.com"` // as the provider last gave it
	EmailVerified bool      `json:"email_verified"`
	CreatedAt     time.Time `json:"created_at" format:"date-time"`
	LastUsedAt    time.Time `json:"last_used_at" format:"date-time"`
}

// Identities lists the caller's linked provider sign-ins.
//
//	@Summary	List your linked sign-ins
//	@Description	The providers you sign in with (Google, Okta...), oldest first.
//	@ID	listIdentities
//	@Tags	users
//	@Security	BearerAuth
//	@Success	200	{array}	IdentityResponse
//	@Router		/users/me/identities [get]
func (h *Federation) Identities(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	list, err := h.fed.Identities(c.Request().Context(), cl.ID)
	if err != nil {
		return err
	}
	out := make([]IdentityResponse, 0, len(list))
	for _, i := range list {
		out = append(out, IdentityResponse{ID: i.ID, Provider: i.Provider, Email: i.Email, EmailVerified: i.EmailVerified, CreatedAt: i.CreatedAt, LastUsedAt: i.LastUsedAt})
	}
	return c.JSON(http.StatusOK, out)
}

// Unlink removes one of the caller's provider sign-ins.
//
//	@Summary	Unlink a sign-in
//	@Description	Not the last way in: without a password, the only linked sign-in stays (409).
//	@ID	unlinkIdentity
//	@Tags	users
//	@Security	BearerAuth
//	@Param	id	path	string	true	"identity id"	format(uuid)
//	@Success	204
//	@Failure	404	{object}	ErrorResponse	"identity_not_found"
//	@Failure	409	{object}	ErrorResponse	"last_sign_in_method"
//	@Router		/users/me/identities/{id} [delete]
func (h *Federation) Unlink(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	if err := h.fed.Unlink(c.Request().Context(), cl.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// LinkRequest starts linking a provider to the caller's account.
type LinkRequest struct {
	Provider    string `json:"provider" validate:"required,max=32" example:"google"`
	RedirectURI string `json:"redirect_uri" validate:"required,max=2000" example:"https://app.example.com/settings/linked"`
	// base64url SHA-256 of a verifier the front end keeps for the completion.
	CodeChallenge string `json:"code_challenge" validate:"required,max=64"`
}

// LinkStartResponse is where to send the browser.
type LinkStartResponse struct {
	AuthURL string `json:"auth_url"`
}

// StartLink begins linking a provider to the caller's account.
//
//	@Summary	Link a provider to your account
//	@Description	Needs a login from the last 10 minutes. Send the browser to auth_url; it comes back to redirect_uri with ?code=, for POST /users/me/identities/complete with the verifier. Any address the provider gives: you prove both sides.
//	@ID	startLink
//	@Tags	users
//	@Security	BearerAuth
//	@Param	body	body	LinkRequest	true	"the provider"
//	@Success	200	{object}	LinkStartResponse
//	@Failure	400	{object}	ErrorResponse	"redirect_uri_not_allowed, code_challenge_required, invalid_code_challenge"
//	@Failure	403	{object}	ErrorResponse	"reauthentication_required, user_token_required"
//	@Failure	404	{object}	ErrorResponse	"provider_not_found"
//	@Router		/users/me/identities [post]
func (h *Federation) StartLink(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req LinkRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	to, err := h.fed.StartLink(c.Request().Context(), cl, services.StartRequest{Provider: req.Provider, RedirectURI: req.RedirectURI, CodeChallenge: req.CodeChallenge})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, LinkStartResponse{AuthURL: to})
}

// CompleteLinkRequest finishes a link.
type CompleteLinkRequest struct {
	Code         string `json:"code" validate:"required,max=200"`
	CodeVerifier string `json:"code_verifier" validate:"required,max=200"`
}

// CompleteLink links the provider account the code carries.
//
//	@Summary	Finish linking a provider
//	@Description	With the same login (from the last 10 minutes) and the verifier of the start's code_challenge.
//	@ID	completeLink
//	@Tags	users
//	@Security	BearerAuth
//	@Param	body	body	CompleteLinkRequest	true	"the code"
//	@Success	201	{object}	IdentityResponse
//	@Failure	400	{object}	ErrorResponse	"oauth_code_invalid, validation_failed or invalid_json"
//	@Failure	403	{object}	ErrorResponse	"reauthentication_required, user_token_required"
//	@Failure	409	{object}	ErrorResponse	"identity_in_use"
//	@Router		/users/me/identities/complete [post]
func (h *Federation) CompleteLink(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req CompleteLinkRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	i, err := h.fed.CompleteLink(c.Request().Context(), cl, req.Code, req.CodeVerifier)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, IdentityResponse{ID: i.ID, Provider: i.Provider, Email: i.Email, EmailVerified: i.EmailVerified, CreatedAt: i.CreatedAt, LastUsedAt: i.LastUsedAt})
}
