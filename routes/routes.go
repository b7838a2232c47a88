// Package routes is the API's table of contents: one file per resource,
// each route naming who may call it and which middleware guards it.
package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Handlers are the resource handlers the routes point at.
type Handlers struct {
	System    *handlers.System
	Auth      *handlers.Auth
	Users     *handlers.Users
	Projects  *handlers.Projects
	Analytics *handlers.Analytics
	Docs      *handlers.Docs // nil: Swagger UI and /openapi.json are off
	Dev       *handlers.Dev  // nil: DEV_ROUTES is off (always in production)
	APIKeys   *handlers.APIKeys
	OAuth     *handlers.OAuth
	Audit     *handlers.Audit
}

// Guards are the per-route middleware.
type Guards struct {
	// RequireAuth verifies the bearer token; failures count against the
	// public per-IP limit. Its answers depend on the credential, so none is
	// cached (Cache-Control: no-store).
	RequireAuth echo.MiddlewareFunc
	Public      echo.MiddlewareFunc // per client IP, routes that need no token
	Register    echo.MiddlewareFunc // per client IP, account creation and mail
	// LoginAttempts counts every login attempt per client IP, whatever
	// its outcome, and records the outcome in the metrics.
	LoginAttempts echo.MiddlewareFunc
	Login         echo.MiddlewareFunc // failed logins (401) per client IP
	User          echo.MiddlewareFunc // per user by tier; admins skip; after RequireAuth
	// TokenIP and TokenClient limit the OAuth endpoints per client IP and
	// per client_id.
	TokenIP     echo.MiddlewareFunc
	TokenClient echo.MiddlewareFunc
}

// Register adds every route to e.
func Register(e *echo.Echo, h Handlers, g Guards) {
	system(e, h.System, g)
	auth(e, h.Auth, g)
	account(e, h.Auth, g)
	users(e, h.Users, g)
	projects(e, h.Projects, g)
	analytics(e, h.Analytics, g)
	admin(e, h.Users, g)
	audit(e, h.Audit, g)
	apiKeys(e, h.APIKeys, g)
	oauth(e, h.OAuth, g)
	docs(e, h.Docs)
	dev(e, h.Dev, g)
}
