package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/services"
)

// CaptchaHeader carries a solved CAPTCHA's answer (the widget's token).
const CaptchaHeader = "X-Captcha-Token"

// The flows a CAPTCHA can guard (CAPTCHA_FLOWS).
const (
	captchaRegister = "register"
	captchaLogin    = "login"
	captchaForgot   = "forgot"
	captchaResend   = "resend"
	captchaToken    = "token"
)

// CaptchaFlows are the flows, in the order GET /auth/captcha lists them.
var CaptchaFlows = []string{captchaRegister, captchaLogin, captchaForgot, captchaResend, captchaToken}

// CaptchaResponse tells a front end which widget to show, and when.
type CaptchaResponse struct {
	// Provider is turnstile, hcaptcha, recaptcha or fake; "" when off.
	Provider string `json:"provider" example:"turnstile"`
	SiteKey  string `json:"site_key" example:"0x4AAAAAAA..."`
	// Flows: off, always, or after (after_failures attempts from the IP
	// or for the account in the window).
	Flows map[string]CaptchaFlowResponse `json:"flows"`
	// Header is where the widget's answer goes.
	Header string `json:"header" example:"X-Captcha-Token"`
}

// CaptchaFlowResponse is one flow's mode.
type CaptchaFlowResponse struct {
	Mode  string `json:"mode" enums:"off,always,after" example:"after"`
	After int64  `json:"after_failures,omitempty" example:"3"`
}

// CaptchaInfo describes the CAPTCHA configuration for front ends.
type CaptchaInfo struct {
	captcha *services.Captcha
	siteKey string
}

// NewCaptchaInfo builds the handler.
func NewCaptchaInfo(c *services.Captcha, siteKey string) *CaptchaInfo {
	return &CaptchaInfo{captcha: c, siteKey: siteKey}
}

// Show answers the CAPTCHA configuration.
//
//	@Summary	How the CAPTCHA works here
//	@Description	Which provider's widget to render (with its public site key) and which flows need its answer in X-Captcha-Token: always, or after a number of attempts (failed ones for login and the token endpoint) from the client's IP or for the account within CAPTCHA_WINDOW. A request that needs one and lacks it gets 400 captcha_required (render the widget, send again); a refused answer 400 captcha_invalid (reset the widget); a provider that cannot answer 503 captcha_unavailable unless CAPTCHA_FAIL_OPEN. Limited per client IP.
//	@ID	captchaInfo
//	@Tags	auth
//	@Success	200	{object}	CaptchaResponse
//	@Router		/auth/captcha [get]
func (h *CaptchaInfo) Show(c *echo.Context) error {
	out := CaptchaResponse{Provider: h.captcha.Provider(), Header: CaptchaHeader, Flows: map[string]CaptchaFlowResponse{}}
	if out.Provider != "" {
		out.SiteKey = h.siteKey
	}
	for name, f := range h.captcha.Flows(CaptchaFlows) {
		out.Flows[name] = CaptchaFlowResponse{Mode: f.Mode, After: f.After}
	}
	return c.JSON(http.StatusOK, out)
}
