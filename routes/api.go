package routes

// The general API information swag reads (go tool swag init -g routes/api.go).
// Everything per operation lives on the handlers.

//	@title						Tollgate API
//	@version					0.1.0
//	@description				SaaS REST API starter: registration with email verification, RS256 access tokens with rotating refresh tokens, roles (viewer, editor, admin) and tiered sliding-window rate limits (free, paid, enterprise).
//	@description
//	@description				Authorize with an access token from POST /auth/login (a browser app may log in with "session": "cookie" instead: an HttpOnly session cookie, and X-CSRF-Token on unsafe requests). Every answer of a rate-limited operation, errors included, carries X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (Unix seconds), the IETF draft RateLimit and RateLimit-Policy fields, and Retry-After (seconds) on 429; the document lists them under the success and 429 answers only, to stay readable. Every error body has the same shape: ErrorResponse.
//	@contact.name				Tollgate
//	@license.name				MIT
//	@BasePath					/
//	@schemes					http https
//	@accept						json
//	@produce					json
//
//	@tag.name					auth
//	@tag.description			Registration, verification, login (and its second step), refresh, logout and password reset. No token needed.
//	@tag.name					users
//	@tag.description			The caller's own account: profile, password, sessions, two-factor authentication.
//	@tag.name					projects
//	@tag.description			Projects: any user reads, editors and admins write, admins delete.
//	@tag.name					orgs
//	@tag.description			Organizations (tenants): create, switch (POST /auth/refresh with org_id), members and roles (owner, admin, editor, viewer), invitations, the organization's audit log. A person's login only.
//	@tag.name					analytics
//	@tag.description			Usage report for admins.
//	@tag.name					api-keys
//	@tag.description			API keys for machine clients: create, list, rotate, revoke. Managed with a user's access token, never with a key.
//	@tag.name					oauth
//	@tag.description			OAuth 2.0 for machine clients: client credentials tokens (RFC 6749 section 4.4, RFC 9068 JWTs), revocation (RFC 7009), introspection (RFC 7662), server metadata (RFC 8414). Errors follow RFC 6749 section 5.2.
//	@tag.name					admin
//	@tag.description			User management for admins.
//	@tag.name					webhooks
//	@tag.description			Signed auth-event webhooks (Standard Webhooks) for platform operators: endpoints, secret rotation, the delivery log, retries.
//	@tag.name					public
//	@tag.description			Status and signing keys, no token needed.
//	@tag.name					system
//	@tag.description			Liveness and readiness probes for orchestrators; not rate limited.
//
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				Access token from POST /auth/login, sent as: Bearer <token>
//
//	@securityDefinitions.apikey	ApiKeyAuth
//	@in							header
//	@name						X-API-Key
//	@description				API key from POST /api-keys (tg_live_... or tg_test_...), sent as X-API-Key: <key> or Authorization: Bearer <key>. Holds the scopes it was made with, cut to what its owner's role allows now.
