package openapi

import (
	"github.com/getkin/kin-openapi/openapi3"
)

// Cookie sessions (handlers/browser.go): the operations that start,
// refresh and end one, and what they answer.
var (
	// cookieStarts answer CookieSessionResponse when the body says
	// "session": "cookie" (refresh: when the session cookie is sent).
	cookieStarts = []string{"/auth/login", "/auth/mfa/verify", "/auth/oauth/token", "/auth/refresh"}
	// cookieReaders read the session cookie instead of a body token.
	cookieReaders = []string{"/auth/refresh", "/auth/logout"}
)

// addCookieSessions documents cookie mode: the CookieSessionResponse body
// beside the token pair, the Set-Cookie it comes with, and the refusals
// of a cookie request (another origin, no CSRF token, cookie and token
// together).
func addCookieSessions(doc *openapi3.T) {
	str := openapi3.NewStringSchema
	schema := openapi3.NewObjectSchema().
		WithProperty("session", str().WithEnum("cookie")).
		WithProperty("csrf_token", str()).
		WithProperty("expires_in", openapi3.NewIntegerSchema()).
		WithPropertyRef("user", &openapi3.SchemaRef{Ref: "#/components/schemas/UserResponse", Value: doc.Components.Schemas["UserResponse"].Value})
	schema.Required = []string{"session", "csrf_token", "expires_in", "user"}
	schema.Description = "A cookie-mode login: the session is in the HttpOnly session cookie (never in the body); send csrf_token " +
		"(also in the readable CSRF cookie) as X-CSRF-Token on every unsafe request. expires_in: seconds the session lives."
	doc.Components.Schemas["CookieSessionResponse"] = openapi3.NewSchemaRef("", schema)
	cookieRef := openapi3.NewSchemaRef("#/components/schemas/CookieSessionResponse", schema)
	for _, path := range cookieStarts {
		item := doc.Paths.Value(path)
		if item == nil || item.Post == nil {
			continue
		}
		op := item.Post
		if ok := op.Responses.Value("200"); ok != nil && ok.Value != nil {
			if mt := ok.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
				alts := openapi3.SchemaRefs{mt.Schema}
				if mt.Schema.Value != nil && len(mt.Schema.Value.OneOf) > 0 {
					alts = mt.Schema.Value.OneOf
				}
				mt.Schema = openapi3.NewSchemaRef("", &openapi3.Schema{OneOf: append(alts, cookieRef)})
			}
			if ok.Value.Headers == nil {
				ok.Value.Headers = openapi3.Headers{}
			}
			ok.Value.Headers["Set-Cookie"] = header("cookie mode: the HttpOnly session cookie (__Host-tollgate_session over https) "+
				"and the readable CSRF cookie (__Host-tollgate_csrf), Secure, SameSite=Lax, Path=/", str())
		}
		mention(doc, op, "403", "origin_not_allowed (cookie mode from an origin not in CORS_ALLOWED_ORIGINS)")
	}
	for _, path := range cookieReaders {
		if item := doc.Paths.Value(path); item != nil && item.Post != nil {
			mention(doc, item.Post, "400", "ambiguous_credentials (a body token and the session cookie)")
			mention(doc, item.Post, "403", "csrf_token_invalid (the session cookie without its X-CSRF-Token)")
		}
	}
}

// mention adds codes to the description of op's status answer, making
// the answer if op has none.
func mention(doc *openapi3.T, op *openapi3.Operation, status, codes string) {
	r := op.Responses.Value(status)
	if r == nil || r.Value == nil {
		op.Responses.Set(status, errorAnswer(doc, codes))
		return
	}
	d := codes
	if r.Value.Description != nil && *r.Value.Description != "" {
		d = *r.Value.Description + "; " + codes
	}
	r.Value.Description = &d
}
