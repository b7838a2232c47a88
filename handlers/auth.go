package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/services"
)

// Auth serves registration, verification, login, refresh and logout.
type Auth struct{ auth *services.Auth }

// NewAuth builds the auth handlers.
func NewAuth(auth *services.Auth) *Auth { return &Auth{auth: auth} }

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
//	@Accept	json
//	@Produce	json
//	@Param	body	body	RegisterRequest	true	"email and password"
//	@Success	202	{object}	MessageResponse
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/auth/register [post]
func (h *Auth) Register(c *echo.Context) error {
	var req RegisterRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.auth.Register(c.Request().Context(), req.Email, req.Password); err != nil {
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
//	@Description	The link mailed at registration points here. Limited per client IP.
//	@ID	verifyEmail
//	@x-order	2
//	@Tags	auth
//	@Produce	json
//	@Param	token	query	string	true	"token from the verification link"
//	@Success	200	{object}	MessageResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, verification_token_invalid, verification_token_used or verification_token_expired"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router		/auth/verify [get]
func (h *Auth) Verify(c *echo.Context) error {
	token := c.QueryParam("token")
	if token == "" {
		return validationError("token", "is required")
	}
	if err := h.auth.VerifyEmail(c.Request().Context(), token); err != nil {
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
//	@Accept	json
//	@Produce	json
//	@Param	body	body	ResendRequest	true	"email"
//	@Success	202	{object}	MessageResponse
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/auth/verify/resend [post]
func (h *Auth) Resend(c *echo.Context) error {
	return acceptEmail(c, "If that account exists and is not verified, a new link is on its way", h.auth.ResendVerification)
}

// acceptEmail reads {"email"}, runs work for the address and answers 202
// with message once that work is durable (work costs the same whether or
// not the address has an account, so the timing tells nothing).
func acceptEmail(c *echo.Context, message string, work func(context.Context, string) error) error {
	var req ResendRequest // the same body as ForgotRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if msg := services.CheckEmail(services.NormalizeEmail(req.Email)); msg != "" {
		return validationError("email", msg)
	}
	if err := work(c.Request().Context(), req.Email); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, MessageResponse{Message: message})
}

// LoginRequest carries credentials.
type LoginRequest struct {
	Email    string `json:"email" validate:"required,max=254" example:"marta@example.com"`
	Password string `json:"password" validate:"required,max=1024" example:"Correct-Horse-9"`
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
		RefreshToken: s.RefreshToken, RefreshExpiresIn: int64(s.RefreshExpiresIn.Seconds()), User: toUser(s.User),
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
//	@Accept	json
//	@Produce	json
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
	s, err := h.auth.Login(c.Request().Context(), req.Email, req.Password, client(c))
	if err != nil {
		return err
	}
	if s.MFAToken != "" {
		return c.JSON(http.StatusOK, MFAChallengeResponse{MFARequired: true, MFAToken: s.MFAToken, ExpiresIn: 300})
	}
	return c.JSON(http.StatusOK, toTokens(s))
}

// RefreshRequest carries a refresh token.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token" validate:"required,max=256" example:"3f9a...128 hex characters"`
}

// Refresh rotates a refresh token.
//
//	@Summary	Rotate a refresh token
//	@Description	Returns a new pair and revokes the presented refresh token. Presenting an already rotated token within REFRESH_REUSE_GRACE (10 s) of its rotation answers 409 refresh_token_rotated and changes nothing (a second tab, a retried request); later it revokes every token of that login (reuse detection). Limited per client IP.
//	@ID	refreshToken
//	@x-order	6
//	@Tags	auth
//	@Accept	json
//	@Produce	json
//	@Param	body	body	RefreshRequest	true	"refresh token"
//	@Success	200	{object}	TokenResponse
//	@Failure	401	{object}	ErrorResponse	"invalid_refresh_token, refresh_token_expired or refresh_token_reused"
//	@Failure	409	{object}	ErrorResponse	"refresh_token_rotated: presented again within REFRESH_REUSE_GRACE of its rotation; use the newest token"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/auth/refresh [post]
func (h *Auth) Refresh(c *echo.Context) error {
	var req RefreshRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	s, err := h.auth.Refresh(c.Request().Context(), req.RefreshToken, client(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTokens(s))
}

// LogoutRequest ends one session, the others, or all of them.
type LogoutRequest struct {
	RefreshToken string `json:"refresh_token" validate:"required,max=256" example:"3f9a...128 hex characters"`
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
//	@Accept	json
//	@Produce	json
//	@Param	body	body	LogoutRequest	true	"refresh token and scope"
//	@Success	204	"logged out"
//	@Failure	401	{object}	ErrorResponse	"invalid_refresh_token (scope others with a dead session)"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/auth/logout [post]
func (h *Auth) Logout(c *echo.Context) error {
	var req LogoutRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.auth.LogoutScope(c.Request().Context(), req.RefreshToken, req.Scope); err != nil {
		return err
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
//	@Accept	json
//	@Produce	json
//	@Param	body	body	ForgotRequest	true	"email"
//	@Success	202	{object}	MessageResponse
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/auth/password/forgot [post]
func (h *Auth) Forgot(c *echo.Context) error {
	return acceptEmail(c, "If that account exists, a reset link is on its way", h.auth.ForgotPassword)
}

// ResetRequest sets a new password with a reset token.
type ResetRequest struct {
	Token    string `json:"token" validate:"required,max=256" example:"9c1f...64 hex characters"`
	Password string `json:"password" validate:"required" example:"Brand-New-Pass-7"`
	// RevokeAPIKeys ends every API key and OAuth client of the account,
	// not only those made since the password was last set.
	RevokeAPIKeys bool `json:"revoke_api_keys,omitempty"`
}

// Reset sets a new password with the token from the mail.
//
//	@Summary	Reset the password
//	@Description	Uses up the token from the reset mail: the account gets the new password (same policy as registration), every session of it ends at once (access tokens included), its address counts as verified, and its owner gets a notice. The API keys and OAuth clients made since the password was last set are revoked too (whoever knew the old password may have made them; with revoke_api_keys, every one of them); the notice lists what was revoked and what still works. Limited per client IP.
//	@ID	resetPassword
//	@x-order	9
//	@Tags	auth
//	@Accept	json
//	@Produce	json
//	@Param	body	body	ResetRequest	true	"token and new password"
//	@Success	200	{object}	MessageResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, reset_token_invalid, reset_token_used or reset_token_expired"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/auth/password/reset [post]
func (h *Auth) Reset(c *echo.Context) error {
	var req ResetRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.auth.ResetPassword(c.Request().Context(), req.Token, req.Password, req.RevokeAPIKeys); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, MessageResponse{Message: "Password changed; every session was signed out"})
}

// ChangePasswordRequest changes the caller's password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password" validate:"required,max=1024" example:"Correct-Horse-9"`
	NewPassword     string `json:"new_password" validate:"required" example:"Brand-New-Pass-7"`
}

// ChangePassword changes the caller's password.
//
//	@Summary	Change your password
//	@Description	Needs the current password; the new one follows the registration policy. Every other session ends (this one stays), and the owner gets a notice. Needs a user's access token.
//	@ID	changePassword
//	@Tags	users
//	@Accept	json
//	@Produce	json
//	@Security	BearerAuth
//	@Param	body	body	ChangePasswordRequest	true	"current and new password"
//	@Success	200	{object}	MessageResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, current_password_incorrect"
//	@Failure	403	{object}	ErrorResponse	"user_token_required"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/users/me/password [post]
func (h *Auth) ChangePassword(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req ChangePasswordRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.auth.ChangePassword(c.Request().Context(), cl.ID, req.CurrentPassword, req.NewPassword, cl.SessionID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, MessageResponse{Message: "Password changed; every other session was signed out"})
}

// SessionResponse is one login of the caller.
type SessionResponse struct {
	ID        uuid.UUID `json:"id" format:"uuid"`
	CreatedAt time.Time `json:"created_at" format:"date-time"`
	LastUsed  time.Time `json:"last_used_at" format:"date-time"`
	IP        string    `json:"ip" example:"203.0.113.7"`
	UserAgent string    `json:"user_agent" example:"Mozilla/5.0"`
	Current   bool      `json:"current"` // the session of the token making this request
}

// Sessions lists the caller's sessions.
//
//	@Summary	List your sessions
//	@Description	One per login (refresh-token family) still alive, most recently used first; current marks the one of this request's token. Needs a user's access token.
//	@ID	listSessions
//	@Tags	users
//	@Produce	json
//	@Security	BearerAuth
//	@Success	200	{array}	SessionResponse
//	@Failure	403	{object}	ErrorResponse	"user_token_required"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/users/me/sessions [get]
func (h *Auth) Sessions(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	list, err := h.auth.Sessions(c.Request().Context(), cl.ID)
	if err != nil {
		return err
	}
	out := make([]SessionResponse, 0, len(list))
	for _, s := range list {
		out = append(out, SessionResponse{ID: s.ID, CreatedAt: s.CreatedAt, LastUsed: s.LastUsed, IP: s.IP, UserAgent: s.UserAgent,
			Current: s.ID.String() == cl.SessionID})
	}
	return c.JSON(http.StatusOK, out)
}

// EndSession ends one of the caller's sessions.
//
//	@Summary	End one of your sessions
//	@Description	Its refresh tokens stop working at once; its access tokens live out ACCESS_TOKEN_TTL. Needs a user's access token.
//	@ID	endSession
//	@Tags	users
//	@Produce	json
//	@Security	BearerAuth
//	@Param	id	path	string	true	"session id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	400	{object}	ErrorResponse	"invalid_id"
//	@Failure	403	{object}	ErrorResponse	"user_token_required"
//	@Failure	404	{object}	ErrorResponse	"session_not_found"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/users/me/sessions/{id} [delete]
func (h *Auth) EndSession(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	if err := h.auth.EndSession(c.Request().Context(), cl.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// EndUserSessions ends every session of a user (admins).
//
//	@Summary	End every session of a user (admin)
//	@Description	Their refresh tokens and access tokens stop working at once, on every instance.
//	@ID	endUserSessions
//	@Tags	admin
//	@Produce	json
//	@Security	BearerAuth
//	@Param	id	path	string	true	"user id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	400	{object}	ErrorResponse	"invalid_id"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Failure	404	{object}	ErrorResponse	"user_not_found"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/admin/users/{id}/sessions [delete]
func (h *Auth) EndUserSessions(c *echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := h.auth.EndAllSessions(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ResetUserMFA removes a user's second factor (admins).
//
//	@Summary	Reset a user's two-factor authentication (admin)
//	@Description	For a person who lost both the authenticator and the recovery codes, once their identity is established outside the API: the second factor and its recovery codes go, every session of the account ends, the owner is mailed, and the audit log records the admin (mfa.reset). The person logs in with the password (or resets it first) and enrols again.
//	@ID	resetUserMFA
//	@Tags	admin
//	@Produce	json
//	@Security	BearerAuth
//	@Param	id	path	string	true	"user id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	400	{object}	ErrorResponse	"invalid_id"
//	@Failure	403	{object}	ErrorResponse	"insufficient_permissions, user_token_required"
//	@Failure	404	{object}	ErrorResponse	"user_not_found"
//	@Failure	409	{object}	ErrorResponse	"mfa_not_enabled"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/admin/users/{id}/mfa [delete]
func (h *Auth) ResetUserMFA(c *echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := h.auth.ResetMFA(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
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
}

// VerifyMFA finishes a login with a TOTP or recovery code.
//
//	@Summary	Finish a login with a second factor
//	@Description	Trades the login's mfa_token and a code from the authenticator app (or a single-use recovery code) for the token pair. A code works once; a mfa_token lives 5 minutes and allows 5 attempts; wrong codes count against the account like wrong passwords. Limited per client IP like logins.
//	@ID	verifyMFA
//	@x-order	5
//	@Tags	auth
//	@Accept	json
//	@Produce	json
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
	s, err := h.auth.VerifyMFA(c.Request().Context(), req.MFAToken, req.Code, client(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTokens(s))
}

// TOTPEnrolmentResponse starts TOTP enrolment.
type TOTPEnrolmentResponse struct {
	OTPAuthURI string `json:"otpauth_uri" example:"otpauth://totp/tollgate:marta@example.com?issuer=tollgate&secret=..."`
	QRCode     string `json:"qr_code" example:"data:image/png;base64,iVBORw0..."` // PNG data URL of the URI
	Secret     string `json:"secret" example:"JBSWY3DPEHPK3PXP"`                  // base32, to type in by hand
}

// StartTOTPRequest proves the password before enrolment.
type StartTOTPRequest struct {
	Password string `json:"password" validate:"required,max=1024"`
}

// StartTOTP begins TOTP enrolment.
//
//	@Summary	Start two-factor authentication (TOTP)
//	@Description	Needs the current password (an access token alone cannot put a second factor on an account; the check counts against the account's attempt budget like a login). Makes a new secret (encrypted at rest) and answers it as an otpauth URI, a QR code (PNG data URL) and base32 text. Nothing changes until POST /users/me/mfa/totp/confirm with a first code. Needs a user's access token.
//	@ID	startTOTP
//	@Tags	users
//	@Accept	json
//	@Produce	json
//	@Security	BearerAuth
//	@Param	body	body	StartTOTPRequest	true	"the current password"
//	@Success	200	{object}	TOTPEnrolmentResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, current_password_incorrect"
//	@Failure	403	{object}	ErrorResponse	"user_token_required"
//	@Failure	409	{object}	ErrorResponse	"mfa_already_enabled"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/users/me/mfa/totp [post]
func (h *Auth) StartTOTP(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req StartTOTPRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	e, err := h.auth.StartTOTP(c.Request().Context(), cl.ID, req.Password)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TOTPEnrolmentResponse{OTPAuthURI: e.URI, QRCode: e.QRCode, Secret: e.Secret})
}

// MFACodeRequest carries a code from the authenticator app.
type MFACodeRequest struct {
	Code string `json:"code" validate:"required,max=32" example:"123456"`
}

// RecoveryCodesResponse shows recovery codes, once.
type RecoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes" example:"k3v9a-q0x2m"`
}

// ConfirmTOTP turns TOTP on.
//
//	@Summary	Confirm two-factor authentication
//	@Description	The first code from the app turns TOTP on; the answer holds 10 single-use recovery codes, shown this once (stored hashed). Logins then need a code. Needs a user's access token.
//	@ID	confirmTOTP
//	@Tags	users
//	@Accept	json
//	@Produce	json
//	@Security	BearerAuth
//	@Param	body	body	MFACodeRequest	true	"a code"
//	@Success	200	{object}	RecoveryCodesResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, incorrect_mfa_code"
//	@Failure	403	{object}	ErrorResponse	"user_token_required"
//	@Failure	409	{object}	ErrorResponse	"mfa_not_started, mfa_already_enabled"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/users/me/mfa/totp/confirm [post]
func (h *Auth) ConfirmTOTP(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req MFACodeRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	codes, err := h.auth.ConfirmTOTP(c.Request().Context(), cl.ID, req.Code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, RecoveryCodesResponse{RecoveryCodes: codes})
}

// DisableTOTPRequest turns TOTP off.
type DisableTOTPRequest struct {
	Password string `json:"password" validate:"required,max=1024"`
	Code     string `json:"code" validate:"required,max=32" example:"123456"` // or a recovery code
}

// DisableTOTP turns TOTP off.
//
//	@Summary	Turn two-factor authentication off
//	@Description	Needs the current password and a code (or a recovery code). Needs a user's access token.
//	@ID	disableTOTP
//	@Tags	users
//	@Accept	json
//	@Produce	json
//	@Security	BearerAuth
//	@Param	body	body	DisableTOTPRequest	true	"password and code"
//	@Success	204
//	@Failure	400	{object}	ErrorResponse	"validation_failed, current_password_incorrect, incorrect_mfa_code"
//	@Failure	403	{object}	ErrorResponse	"user_token_required"
//	@Failure	409	{object}	ErrorResponse	"mfa_not_enabled"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/users/me/mfa/totp [delete]
func (h *Auth) DisableTOTP(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req DisableTOTPRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.auth.DisableTOTP(c.Request().Context(), cl.ID, req.Password, req.Code); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// RegenerateRecoveryCodes replaces the recovery codes.
//
//	@Summary	New recovery codes
//	@Description	Needs a code; the old recovery codes stop working. Needs a user's access token.
//	@ID	regenerateRecoveryCodes
//	@Tags	users
//	@Accept	json
//	@Produce	json
//	@Security	BearerAuth
//	@Param	body	body	MFACodeRequest	true	"a code"
//	@Success	200	{object}	RecoveryCodesResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, incorrect_mfa_code"
//	@Failure	403	{object}	ErrorResponse	"user_token_required"
//	@Failure	409	{object}	ErrorResponse	"mfa_not_enabled"
//	@Failure	429	{object}	ErrorResponse	"rate_limited (see Retry-After)"
//	@Router			/users/me/mfa/recovery-codes [post]
func (h *Auth) RegenerateRecoveryCodes(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req MFACodeRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	codes, err := h.auth.RegenerateRecoveryCodes(c.Request().Context(), cl.ID, req.Code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, RecoveryCodesResponse{RecoveryCodes: codes})
}
