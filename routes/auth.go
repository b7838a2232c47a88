package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Anyone may call these: they are how a caller gets a token.
func auth(e *echo.Echo, h *handlers.Auth) {
	e.POST("/auth/register", h.Register)
	e.GET("/auth/verify", h.Verify)
	e.POST("/auth/verify/resend", h.Resend)
	e.POST("/auth/login", h.Login)
	e.POST("/auth/refresh", h.Refresh)
	e.POST("/auth/logout", h.Logout)
}
