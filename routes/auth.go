package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// Anyone may call these: they are how a caller gets a token.
func auth(e *echo.Echo, h *handlers.Auth, captcha *handlers.CaptchaInfo, g Guards) {
	e.GET("/auth/captcha", captcha.Show, g.Public) // which CAPTCHA widget to show, and when
	e.POST("/auth/register", h.Register, g.Public, g.Register)
	e.GET("/auth/verify", h.Verify, g.Public)
	e.POST("/auth/verify/resend", h.Resend, g.Public, g.Register)
	// Answers carrying tokens are never cached (mw.NoStore).
	e.POST("/auth/login", h.Login, mw.NoStore, g.LoginAttempts, g.Login)          // every attempt, and failures apart
	e.POST("/auth/mfa/verify", h.VerifyMFA, mw.NoStore, g.LoginAttempts, g.Login) // the second step of a login
	e.POST("/auth/refresh", h.Refresh, mw.NoStore, g.Public)
	e.POST("/auth/logout", h.Logout, g.Public)
	e.POST("/auth/password/forgot", h.Forgot, g.Public, g.Register) // and per account, in the service
	e.GET("/auth/password/reset", h.ResetPage, g.Public)            // the reset mail's link: a page, or JSON
	e.POST("/auth/password/reset", h.Reset, g.Public, g.Register)
}
