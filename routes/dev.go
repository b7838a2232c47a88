package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Development only (DEV_ROUTES; production refuses it; h is nil when off):
// anyone may make a verified user of any role and read the mail the server
// sent, so scripts such as the Postman collection need only the base URL.
// Not in the OpenAPI document. Limited per IP like the public routes.
func dev(e *echo.Echo, h *handlers.Dev, g Guards) {
	if h == nil {
		return
	}
	e.POST("/dev/users", h.CreateUser, g.Public)
	e.GET("/dev/mail", h.Mail, g.Public)
}
