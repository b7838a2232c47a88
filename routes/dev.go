package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// Development only (DEV_ROUTES; production refuses it; h is nil when off):
// anyone may make a verified user of any role, read the mail the server
// sent and sign in as any address through the development provider, so
// scripts such as the Postman collection need only the base URL.
// Not in the OpenAPI document. Limited per IP like the public routes, and
// only for clients on this machine (a dev server reached from the network
// must not hand out admins and reset links).
func dev(e *echo.Echo, h *handlers.Dev, g Guards) {
	if h == nil {
		return
	}
	e.POST("/dev/users", h.CreateUser, g.Public, mw.LoopbackOnly)
	e.GET("/dev/mail", h.Mail, g.Public, mw.LoopbackOnly)
	// The development sign-in provider, and the page its sign-ins end at.
	e.GET("/dev/oidc/*", echo.WrapHandler(h.IdP), g.Public, mw.LoopbackOnly)
	e.POST("/dev/oidc/token", echo.WrapHandler(h.IdP), g.Public, mw.LoopbackOnly)
	e.GET("/dev/signed-in", h.SignedIn, g.Public, mw.LoopbackOnly)
	// The example front end (web/example), on the API's own origin.
	e.GET("/dev/example/*", h.Example, g.Public)
}
