package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/browser"
	"github.com/tollgate/tollgate/services"
)

// Auth serves what needs no token: registration and verification, login
// (and its second step), refresh, logout and the password reset.
type Auth struct {
	registration *services.Registration
	login        *services.Login
	sessions     *services.Sessions
	passwords    *services.Passwords
	cookie       cookieMode
	captcha      *services.Captcha
}

// NewAuth builds the auth handlers; logins asking for a cookie session get
// cookies as described, backed by browserSessions; captcha guards the
// flows CAPTCHA_FLOWS names.
func NewAuth(a *services.Accounts, cookies browser.Cookies, browserSessions *services.BrowserSessions, captcha *services.Captcha) *Auth {
	return &Auth{registration: a.Registration, login: a.Login, sessions: a.Sessions, passwords: a.Passwords,
		cookie: cookieMode{cookies: cookies, sessions: browserSessions}, captcha: captcha}
}

// RegisterRequest creates an account. Anything else in the body (role,
// tier, email_verified) is ignored.
type RegisterRequest struct {
	Email    string `json:"email" validate:"required,max=254" example:"marta@example.com"`
	Password string `json:"password" validate:"required" example:"Correct-Horse-9"`
}

// Register creates an unverified account and mails a verification link.
//
//	@Summary	Register an account
//	@Description	Always 202 for a valid request, so the answer reveals no account: a new address gets a viewer on the free tier and a verification link valid for EMAIL_VERIFICATION_TTL; an address registered but not verified gets this password and a new link (older links die); a verified one gets a mail saying it already has an account. Password: 10+ characters with upper case, lower case and a digit, at most 72 bytes, not among the 10,000 most common. Other fields (role, tier) are ignored. Every case costs the same (the password is hashed, then one transaction writes the account change and its mail to the outbox), so the timing reveals nothing either; the 202 comes once that transaction has committed, so the account exists when it arrives (an immediate login of it answers 403 email_not_verified), and a database failure answers 503. Mail is delivered in the background. Limited per client IP (public and register policies).
//	@ID	register
//	@x-order	1
//	@Tags	auth
//	@Param	body	body	RegisterRequest	true	"email and password"
//	@Success	202	{object}	MessageResponse
//	@Router			/auth/register [post]
func (h *Auth) Register(c *echo.Context) error {
	var req RegisterRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	ctx, ip := c.Request().Context(), c.RealIP()
	if err := h.captcha.Check(ctx, captchaRegister, ip, req.Email, c.Request().Header.Get(CaptchaHeader)); err != nil {
		return err
	}
	h.captcha.Attempted(ctx, captchaRegister, ip, req.Email)
	if err := h.registration.Register(ctx, req.Email, req.Password); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, MessageResponse{Message: "Check your inbox: a link to verify the address is on its way"})
}

// MessageResponse is a short confirmation.
type MessageResponse struct {
	Message string `json:"message" example:"Email verified"`
}

// Verify marks an email verified.
//
//	@Summary	Verify an email address
//	@Description	The link mailed at registration points here (unless VERIFY_EMAIL_URL names a front end page, which gets the token in the fragment and calls this). A browser (Accept preferring text/html) gets a small page saying what happened and what to do next, with the same status; API clients get JSON. Limited per client IP.
//	@ID	verifyEmail
//	@x-order	2
//	@Tags	auth
//	@Param	token	query	string	true	"token from the verification link"
//	@Success	200	{object}	MessageResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, verification_token_invalid, verification_token_used or verification_token_expired"
//	@Router		/auth/verify [get]
func (h *Auth) Verify(c *echo.Context) error {
	token := c.QueryParam("token")
	err := validationError("token", "is required")
	if token != "" {
		err = h.registration.VerifyEmail(c.Request().Context(), token)
	}
	if wantsPage(c) {
		if err != nil {
			return failedPage(c, "This link did not work", err, "Ask the app for a new verification link (it lasts a limited time and works once).", nil)
		}
		return showPage(c, http.StatusOK, page{Title: "Email verified", Message: "Your email address is verified.", Next: "You can close this page and log in."})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, MessageResponse{Message: "Email verified"})
}

// ResendRequest asks for a new verification link.
type ResendRequest struct {
	Email string `json:"email" validate:"required,max=254" example:"marta@example.com"`
}

// Resend mails a new verification link if the account exists and is unverified.
//
//	@Summary	Send the verification link again
//	@Description	Always 202, at the same cost whatever the address, so the answer does not reveal whether an account exists; it comes once the link is queued in the outbox (a database failure answers 503). Limited per client IP (public and register policies).
//	@ID	resendVerification
//	@x-order	3
//	@Tags	auth
//	@Param	body	body	ResendRequest	true	"email"
//	@Success	202	{object}	MessageResponse
//	@Router			/auth/verify/resend [post]
func (h *Auth) Resend(c *echo.Context) error {
	return h.acceptEmail(c, captchaResend, "If that account exists and is not verified, a new link is on its way", h.registration.ResendVerification)
}

// acceptEmail reads {"email"}, passes flow's CAPTCHA, runs work for the
// address and answers 202 with message once that work is durable (work
// costs the same whether or not the address has an account, so the timing
// tells nothing).
func (h *Auth) acceptEmail(c *echo.Context, flow, message string, work func(context.Context, string) error) error {
	var req ResendRequest // the same body as ForgotRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if msg := services.CheckEmail(services.NormalizeEmail(req.Email)); msg != "" {
		return validationError("email", msg)
	}
	ctx, ip := c.Request().Context(), c.RealIP()
	if err := h.captcha.Check(ctx, flow, ip, req.Email, c.Request().Header.Get(CaptchaHeader)); err != nil {
		return err
	}
	h.captcha.Attempted(ctx, flow, ip, req.Email)
	if err := work(ctx, req.Email); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, MessageResponse{Message: message})
}

// LoginRequest carries credentials.
type LoginRequest struct {
	Email    string `json:"email" validate:"required,max=254" example:"marta@example.com"`
	Password string `json:"password" validate:"required,max=1024" example:"Correct-Horse-9"`
	// Session cookie: answer with an HttpOnly session cookie instead of
	// tokens (browser apps; see CookieSessionResponse).
	Session string `json:"session,omitempty" validate:"omitempty,oneof=bearer cookie" enums:"bearer,cookie"`
}

// TokenResponse is what login and refresh return.
type TokenResponse struct {
	AccessToken      string       `json:"access_token" example:"eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiJ9..."`
	TokenType        string       `json:"token_type" example:"Bearer"`
	ExpiresIn        int64        `json:"expires_in" example:"900"`
	RefreshToken     string       `json:"refresh_token" example:"3f9a...128 hex characters"`
	RefreshExpiresIn int64        `json:"refresh_expires_in" example:"604800"`
	User             UserResponse `json:"user"`
}

func toTokens(s *services.Session) TokenResponse {
	return TokenResponse{
		AccessToken: s.AccessToken, TokenType: "Bearer", ExpiresIn: int64(s.AccessExpiresIn.Seconds()),
		RefreshToken: s.RefreshToken, RefreshExpiresIn: int64(s.RefreshExpiresIn.Seconds()), User: toUser(s.User, s.Standing.OrgID, s.Standing.Role),
	}
}

func client(c *echo.Context) services.Client {
	return services.Client{IP: c.RealIP(), UserAgent: c.Request().UserAgent()}
}

// Login exchanges credentials for a token pair.
//
//	@Summary	Log in
//	@Description	Returns an access token (Authorization: Bearer) and a refresh token; for an account with two-factor authentication on, 200 with MFAChallengeResponse instead ({"mfa_required": true, "mfa_token"}), to finish at POST /auth/mfa/verify. A wrong password and an unknown email get the same 401; an unverified account gets 403 once its password matched. Every attempt counts against the login_ip policy per client IP (RATE_LIMIT_LOGIN_IP), failed ones (401) also against the login policy (RATE_LIMIT_LOGIN); successes never use up the failure budget. Password checks are queued: when too many wait, 503 server_busy with Retry-After.
//	@ID	login
//	@x-order	4
//	@Tags	auth
//	@Param	body	body	LoginRequest	true	"credentials"
//	@Success	200	{object}	TokenResponse
//	@Failure	401	{object}	ErrorResponse	"invalid_credentials"
//	@Failure	403	{object}	ErrorResponse	"email_not_verified"
//	@Failure	429	{object}	ErrorResponse	"too_many_login_attempts (failures) or rate_limited (all attempts); see Retry-After"
//	@Router			/auth/login [post]
func (h *Auth) Login(c *echo.Context) error {
	var req LoginRequest
	if err := bind(c, &req); err != nil {
		if errors.Is(err, errNUL) {
			// No account has such an email or password: a failed login,
			// counted like any other.
			return services.ErrBadCredentials
		}
		return err
	}
	if err := h.cookie.start(c, req.Session); err != nil {
		return err
	}
	ctx, ip := c.Request().Context(), c.RealIP()
	if err := h.captcha.Check(ctx, captchaLogin, ip, req.Email, c.Request().Header.Get(CaptchaHeader)); err != nil {
		return err
	}
	s, err := h.login.Login(ctx, req.Email, req.Password, client(c))
	if errors.Is(err, services.ErrBadCredentials) {
		h.captcha.Attempted(ctx, captchaLogin, ip, req.Email)
	}
	if err != nil {
		return err
	}
	if s.MFAToken != "" {
		return c.JSON(http.StatusOK, MFAChallengeResponse{MFARequired: true, MFAToken: s.MFAToken, ExpiresIn: 300})
	}
	return h.cookie.answer(c, s, req.Session)
}

// MFAChallengeResponse is a login's answer when the account needs a second
// factor: no token yet, only mfa_token for POST /auth/mfa/verify.
type MFAChallengeResponse struct {
	MFARequired bool   `json:"mfa_required" example:"true"`
	MFAToken    string `json:"mfa_token" example:"5b1c...64 hex characters"`
	ExpiresIn   int    `json:"expires_in" example:"300"` // seconds the mfa_token works
}

// MFAVerifyRequest finishes a login with a second factor.
type MFAVerifyRequest struct {
	MFAToken string `json:"mfa_token" validate:"required,max=256"`
	// A 6-digit code from the authenticator app, or a recovery code.
	Code string `json:"code" validate:"required,max=32" example:"123456"`
	// Session cookie: as in the login.
	Session string `json:"session,omitempty" validate:"omitempty,oneof=bearer cookie" enums:"bearer,cookie"`
}

// VerifyMFA finishes a login with a TOTP or recovery code.
//
//	@Summary	Finish a login with a second factor
//	@Description	Trades the login's mfa_token and a code from the authenticator app (or a single-use recovery code) for the token pair. A code works once; a mfa_token lives 5 minutes and allows 5 attempts; wrong codes count against the account like wrong passwords. Limited per client IP like logins.
//	@ID	verifyMFA
//	@x-order	5
//	@Tags	auth
//	@Param	body	body	MFAVerifyRequest	true	"mfa_token and code"
//	@Success	200	{object}	TokenResponse
//	@Failure	401	{object}	ErrorResponse	"invalid_mfa_code, invalid_mfa_token"
//	@Failure	429	{object}	ErrorResponse	"too_many_login_attempts or rate_limited; see Retry-After"
//	@Router			/auth/mfa/verify [post]
func (h *Auth) VerifyMFA(c *echo.Context) error {
	var req MFAVerifyRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.cookie.start(c, req.Session); err != nil {
		return err
	}
	s, err := h.login.VerifyMFA(c.Request().Context(), req.MFAToken, req.Code, client(c))
	if err != nil {
		return err
	}
	return h.cookie.answer(c, s, req.Session)
}

// RefreshRequest carries a refresh token and, to switch, an organization.
type RefreshRequest struct {
	// RefreshToken is required unless the session cookie is sent instead.
	RefreshToken string `json:"refresh_token,omitempty" validate:"max=256" example:"3f9a...128 hex characters"`
	// OrgID switches the session to another organization the user belongs
	// to; absent: the session's own, while the user is still in it.
	OrgID *uuid.UUID `json:"org_id,omitempty" format:"uuid" example:"3f1c2b9a-8d4e-4f6a-9b7c-2e5d8a1f0c34"`
}

// Refresh rotates a refresh token.
//
//	@Summary	Rotate a refresh token
//	@Description	Returns a new pair and revokes the presented refresh token. With org_id, the new pair acts in that organization (switching; 404 org_not_found unless the user is a member); without, in the session's organization while the user is still in it, else the default organization or the oldest membership. Memberships, roles and tiers are read afresh. Presenting an already rotated token within REFRESH_REUSE_GRACE (10 s) of its rotation (a second tab, a retried request, parallel refreshes) answers 200 with the same successor, the newest refresh token of that login, and a fresh access token; nothing is revoked. Later it revokes every token of that login (reuse detection). Limited per client IP.
//	@ID	refreshToken
//	@x-order	6
//	@Tags	auth
//	@Param	body	body	RefreshRequest	true	"refresh token"
//	@Success	200	{object}	TokenResponse
//	@Failure	401	{object}	ErrorResponse	"invalid_refresh_token, refresh_token_expired or refresh_token_reused"
//	@Failure	404	{object}	ErrorResponse	"org_not_found: org_id names no organization the user belongs to"
//	@Failure	409	{object}	ErrorResponse	"refresh_token_rotated: a retry within the grace period whose successor cannot be given (rotated before the upgrade that keeps successors, or more than 8 times since); use the newest token"
//	@Router			/auth/refresh [post]
func (h *Auth) Refresh(c *echo.Context) error {
	var req RefreshRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	raw, mode, err := h.cookie.presented(c, req.RefreshToken)
	if err != nil {
		return err
	}
	org := uuid.Nil
	if req.OrgID != nil {
		org = *req.OrgID
	}
	s, err := h.sessions.Refresh(c.Request().Context(), raw, org, client(c))
	if err != nil {
		return err
	}
	return h.cookie.answer(c, s, mode)
}

// LogoutRequest ends one session, the others, or all of them.
type LogoutRequest struct {
	// RefreshToken is required unless the session cookie is sent instead.
	RefreshToken string `json:"refresh_token,omitempty" validate:"max=256" example:"3f9a...128 hex characters"`
	// local (default): this session; others: every other session of the
	// account; global: every session.
	Scope string `json:"scope,omitempty" validate:"omitempty,oneof=local others global" enums:"local,others,global"`
}

// Logout revokes the refresh token's family, or more.
//
//	@Summary	Log out
//	@Description	scope local (default) revokes every refresh token of this login; others, every other login of the account; global, all of them. Idempotent: an unknown or already revoked token also gets 204 (except for others, which needs a live session). Access tokens already issued stay valid until they expire (ACCESS_TOKEN_TTL, 15 min by default). Limited per client IP.
//	@ID	logout
//	@x-order	7
//	@Tags	auth
//	@Param	body	body	LogoutRequest	true	"refresh token and scope"
//	@Success	204	"logged out"
//	@Failure	401	{object}	ErrorResponse	"invalid_refresh_token (scope others with a dead session)"
//	@Router			/auth/logout [post]
func (h *Auth) Logout(c *echo.Context) error {
	var req LogoutRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	raw, mode, err := h.cookie.presented(c, req.RefreshToken)
	if err != nil {
		if mode == sessionCookie && errors.Is(err, services.ErrRefreshInvalid) {
			return c.NoContent(http.StatusNoContent) // a session already gone: logged out, cookies cleared
		}
		return err
	}
	if err := h.sessions.Logout(c.Request().Context(), raw, req.Scope); err != nil {
		return err
	}
	if mode == sessionCookie {
		h.cookie.cookies.Clear(c.Response())
	}
	return c.NoContent(http.StatusNoContent)
}

// ForgotRequest asks for a password reset link.
type ForgotRequest struct {
	Email string `json:"email" validate:"required,max=254" example:"marta@example.com"`
}

// Forgot mails a password reset link if the account exists.
//
//	@Summary	Ask for a password reset link
//	@Description	Always 202, with the same work whatever the address, so the answer reveals no account; it comes once the link is queued in the outbox (a database failure answers 503). The link (a single-use token) works for PASSWORD_RESET_TTL (30 min). Limited per client IP and, silently, per account (RATE_LIMIT_FORGOT_ACCOUNT). Works while the account's logins are throttled.
//	@ID	forgotPassword
//	@x-order	8
//	@Tags	auth
//	@Param	body	body	ForgotRequest	true	"email"
//	@Success	202	{object}	MessageResponse
//	@Router			/auth/password/forgot [post]
func (h *Auth) Forgot(c *echo.Context) error {
	return h.acceptEmail(c, captchaForgot, "If that account exists, a reset link is on its way", h.passwords.Forgot)
}

// ResetRequest sets a new password with a reset token.
type ResetRequest struct {
	Token    string `json:"token" form:"token" validate:"required,max=256" example:"9c1f...64 hex characters"`
	Password string `json:"password" form:"password" validate:"required" example:"Brand-New-Pass-7"`
	// RevokeAPIKeys ends every API key and OAuth client of the account,
	// not only those made since the password was last set.
	RevokeAPIKeys bool `json:"revoke_api_keys,omitempty" form:"revoke_api_keys"`
}

// ResetLinkResponse says until when a reset link works.
type ResetLinkResponse struct {
	Message   string    `json:"message" example:"This reset link works; POST /auth/password/reset with the token and a new password"`
	ExpiresAt time.Time `json:"expires_at" format:"date-time"`
}

// ResetPage is where the reset mail's link leads.
//
//	@Summary	Open a password reset link
//	@Description	The link mailed by POST /auth/password/forgot points here (unless RESET_PASSWORD_URL names a front end page, which gets the token in the fragment). A browser (Accept preferring text/html) gets a page with a form that sets the new password (it posts to POST /auth/password/reset); API clients get JSON saying whether the token still works, without using it. Limited per client IP.
//	@ID	resetPasswordPage
//	@x-order	9
//	@Tags	auth
//	@Param	token	query	string	true	"token from the reset link"
//	@Success	200	{object}	ResetLinkResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, reset_token_invalid, reset_token_used or reset_token_expired"
//	@Router		/auth/password/reset [get]
func (h *Auth) ResetPage(c *echo.Context) error {
	token := c.QueryParam("token")
	var until time.Time
	err := validationError("token", "is required")
	if token != "" {
		until, err = h.passwords.CheckReset(c.Request().Context(), token)
	}
	if wantsPage(c) {
		if err != nil {
			return failedPage(c, "This link did not work", err, "Ask for a new reset link; each one works once, for a limited time.", nil)
		}
		return showPage(c, http.StatusOK, page{Title: "Choose a new password", Form: &resetForm{Token: token},
			Message: "At least 10 characters, with upper and lower case letters and a digit. Every session of the account is signed out."})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ResetLinkResponse{Message: "This reset link works; POST /auth/password/reset with the token and a new password", ExpiresAt: until})
}

// Reset sets a new password with the token from the mail.
//
//	@Summary	Reset the password
//	@Description	Uses up the token from the reset mail (the reset page's form posts here as application/x-www-form-urlencoded and gets a page back): the account gets the new password (same policy as registration), every session of it ends at once (access tokens included), its address counts as verified, and its owner gets a notice. The API keys and OAuth clients made since the password was last set are revoked too (whoever knew the old password may have made them; with revoke_api_keys, every one of them); the notice lists what was revoked and what still works. Limited per client IP.
//	@ID	resetPassword
//	@x-order	9
//	@Tags	auth
//	@Param	body	body	ResetRequest	true	"token and new password"
//	@Success	200	{object}	MessageResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, reset_token_invalid, reset_token_used or reset_token_expired"
//	@Router			/auth/password/reset [post]
func (h *Auth) Reset(c *echo.Context) error {
	if isForm(c) {
		return h.resetFromPage(c)
	}
	var req ResetRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.passwords.Reset(c.Request().Context(), req.Token, req.Password, req.RevokeAPIKeys); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, MessageResponse{Message: "Password changed; every session was signed out"})
}
