package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/services"
)

// Account serves a person's own account security under /users/me: the
// password, sessions and two-factor authentication.
type Account struct {
	passwords *services.Passwords
	sessions  *services.Sessions
	mfa       *services.MFA
}

// NewAccount builds the account handlers.
func NewAccount(a *services.Accounts) *Account {
	return &Account{passwords: a.Passwords, sessions: a.Sessions, mfa: a.MFA}
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
//	@Security	BearerAuth
//	@Param	body	body	ChangePasswordRequest	true	"current and new password"
//	@Success	200	{object}	MessageResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, current_password_incorrect"
//	@Router			/users/me/password [post]
func (h *Account) ChangePassword(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req ChangePasswordRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.passwords.Change(c.Request().Context(), cl.ID, req.CurrentPassword, req.NewPassword, cl.SessionID); err != nil {
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
//	@Security	BearerAuth
//	@Success	200	{array}	SessionResponse
//	@Router			/users/me/sessions [get]
func (h *Account) Sessions(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	list, err := h.sessions.List(c.Request().Context(), cl.ID)
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
//	@Security	BearerAuth
//	@Param	id	path	string	true	"session id (UUID)"	format(uuid)
//	@Success	204
//	@Failure	404	{object}	ErrorResponse	"session_not_found"
//	@Router			/users/me/sessions/{id} [delete]
func (h *Account) EndSession(c *echo.Context) error {
	cl, id, err := whoAndID(c)
	if err != nil {
		return err
	}
	if err := h.sessions.EndSession(c.Request().Context(), cl.ID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
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
//	@Security	BearerAuth
//	@Param	body	body	StartTOTPRequest	true	"the current password"
//	@Success	200	{object}	TOTPEnrolmentResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, current_password_incorrect"
//	@Failure	409	{object}	ErrorResponse	"mfa_already_enabled"
//	@Router			/users/me/mfa/totp [post]
func (h *Account) StartTOTP(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req StartTOTPRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	e, err := h.mfa.StartTOTP(c.Request().Context(), cl.ID, req.Password)
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
//	@Security	BearerAuth
//	@Param	body	body	MFACodeRequest	true	"a code"
//	@Success	200	{object}	RecoveryCodesResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, incorrect_mfa_code"
//	@Failure	409	{object}	ErrorResponse	"mfa_not_started, mfa_already_enabled"
//	@Router			/users/me/mfa/totp/confirm [post]
func (h *Account) ConfirmTOTP(c *echo.Context) error {
	return newRecoveryCodes(c, h.mfa.ConfirmTOTP)
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
//	@Security	BearerAuth
//	@Param	body	body	DisableTOTPRequest	true	"password and code"
//	@Success	204
//	@Failure	400	{object}	ErrorResponse	"validation_failed, current_password_incorrect, incorrect_mfa_code"
//	@Failure	409	{object}	ErrorResponse	"mfa_not_enabled"
//	@Router			/users/me/mfa/totp [delete]
func (h *Account) DisableTOTP(c *echo.Context) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req DisableTOTPRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := h.mfa.DisableTOTP(c.Request().Context(), cl.ID, req.Password, req.Code); err != nil {
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
//	@Security	BearerAuth
//	@Param	body	body	MFACodeRequest	true	"a code"
//	@Success	200	{object}	RecoveryCodesResponse
//	@Failure	400	{object}	ErrorResponse	"validation_failed, incorrect_mfa_code"
//	@Failure	409	{object}	ErrorResponse	"mfa_not_enabled"
//	@Router			/users/me/mfa/recovery-codes [post]
func (h *Account) RegenerateRecoveryCodes(c *echo.Context) error {
	return newRecoveryCodes(c, h.mfa.RegenerateRecoveryCodes)
}

// newRecoveryCodes reads a code, proves it with issue for the caller and
// answers the recovery codes issue returns.
func newRecoveryCodes(c *echo.Context, issue func(ctx context.Context, user uuid.UUID, code string) ([]string, error)) error {
	cl, err := who(c)
	if err != nil {
		return err
	}
	var req MFACodeRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	codes, err := issue(c.Request().Context(), cl.ID, req.Code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, RecoveryCodesResponse{RecoveryCodes: codes})
}
