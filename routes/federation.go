package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// Sign-in through an OpenID Connect provider: anyone may call these (they
// are how a caller gets a token), limited per IP. The code exchange is not
// a login attempt: its code is 32 random bytes, not a guessable secret.
func federation(e *echo.Echo, h *handlers.Federation, g Guards) {
	e.GET("/auth/providers", h.Providers, g.Public)
	e.GET("/auth/oauth/:provider/start", h.Start, g.Public)
	e.GET("/auth/oauth/:provider/callback", h.Callback, g.Public)
	e.POST("/auth/oauth/token", h.Token, mw.NoStore, g.Public)
	// Which providers a person signs in with: their own login only.
	e.GET("/users/me/identities", h.Identities, g.PeopleOnly()...)
	e.DELETE("/users/me/identities/:id", h.Unlink, g.PeopleOnly()...)
	e.POST("/users/me/identities", h.StartLink, g.PeopleOnly()...)
	e.POST("/users/me/identities/complete", h.CompleteLink, g.PeopleOnly()...)
}
