// Package routes is the API's table of contents: one file per resource,
// each route naming who may call it and which middleware guards it.
package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/handlers"
	mw "github.com/tollgate/tollgate/middleware"
)

// Handlers are the resource handlers the routes point at.
type Handlers struct {
	System    *handlers.System
	Auth      *handlers.Auth
	Captcha   *handlers.CaptchaInfo
	IPRules   *handlers.IPRules
	Webhooks  *handlers.Webhooks
	Account   *handlers.Account
	Users     *handlers.Users
	Projects  *handlers.Projects
	Analytics *handlers.Analytics
	Docs      *handlers.Docs // nil: Swagger UI and /openapi.json are off
	Dev       *handlers.Dev  // nil: DEV_ROUTES is off (always in production)
	APIKeys   *handlers.APIKeys
	OAuth     *handlers.OAuth
	Audit     *handlers.Audit
	Orgs      *handlers.Orgs
	Federated *handlers.Federation
	SSO       *handlers.SSO
}

// Limits are the per-IP and per-client limits of the routes that need no
// token (each route names the ones it takes).
type Limits struct {
	Public   echo.MiddlewareFunc // per client IP, routes that need no token
	Register echo.MiddlewareFunc // per client IP, account creation and mail
	// LoginAttempts counts every login attempt per client IP, whatever
	// its outcome, and records the outcome in the metrics.
	LoginAttempts echo.MiddlewareFunc
	Login         echo.MiddlewareFunc // failed logins (401) per client IP
	// TokenIP and TokenClient limit the OAuth endpoints per client IP and
	// per client_id.
	TokenIP     echo.MiddlewareFunc
	TokenClient echo.MiddlewareFunc
}

// Guards are the per-route middleware. Routes that need a credential take
// it through Protected or PeopleOnly, which always put authentication, the
// caller's limit and the access check together and in that order; the two
// halves cannot be named apart.
type Guards struct {
	Limits
	authenticate echo.MiddlewareFunc
	perCaller    echo.MiddlewareFunc
}

// NewGuards builds the guards. authenticate verifies the credential (and
// counts failures per IP); perCaller is the per-user or per-credential
// limit by tier, which must follow it.
func NewGuards(authenticate, perCaller echo.MiddlewareFunc, l Limits) Guards {
	return Guards{Limits: l, authenticate: authenticate, perCaller: perCaller}
}

// Protected is for routes any credential may call: a user's access token
// (holding one of roles), an API key or an OAuth client token (holding
// scope). The caller is limited by its tier.
func (g Guards) Protected(scope caller.Scope, roles ...caller.Role) []echo.MiddlewareFunc {
	return []echo.MiddlewareFunc{g.authenticate, g.perCaller, mw.Require(scope, roles...)}
}

// PeopleOnly is for routes that need a person's login, never an API key or
// a client token (a leaked key cannot manage credentials or accounts); with
// roles, the person must hold one of them. The caller is limited by tier.
func (g Guards) PeopleOnly(roles ...caller.Role) []echo.MiddlewareFunc {
	out := []echo.MiddlewareFunc{g.authenticate, g.perCaller, mw.UserOnly}
	if len(roles) > 0 {
		out = append(out, mw.RequireRole(roles...))
	}
	return out
}

// Platform is for the platform operators' routes over every organization
// (users, credentials, the whole audit log): Protected with the admin role
// and scope, and the caller must be a platform operator.
func (g Guards) Platform(scope caller.Scope) []echo.MiddlewareFunc {
	return append(g.Protected(scope, caller.Admin), mw.PlatformOnly)
}

// PlatformPeople is Platform for routes that need the operator's login.
func (g Guards) PlatformPeople() []echo.MiddlewareFunc {
	return append(g.PeopleOnly(caller.Admin), mw.PlatformOnly)
}

// Register adds every route to e.
func Register(e *echo.Echo, h Handlers, g Guards) {
	system(e, h.System, g)
	auth(e, h.Auth, h.Captcha, g)
	federation(e, h.Federated, g)
	sso(e, h.SSO, g)
	account(e, h.Account, g)
	users(e, h.Users, g)
	projects(e, h.Projects, g)
	analytics(e, h.Analytics, g)
	admin(e, h.Users, h.IPRules, g)
	audit(e, h.Audit, g)
	webhooks(e, h.Webhooks, g)
	orgs(e, h.Orgs, h.Audit, g)
	apiKeys(e, h.APIKeys, g)
	oauth(e, h.OAuth, g)
	docs(e, h.Docs)
	dev(e, h.Dev, g)
}
