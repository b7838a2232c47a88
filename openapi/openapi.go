// Package openapi derives the OpenAPI 3.0 document and the JSON Schemas of
// the auth payloads from the Swagger 2.0 document swag generates into docs/.
package openapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/docs"
)

// BearerScheme is the security scheme name the annotations use.
const BearerScheme = "BearerAuth"

// Document converts swag's Swagger 2.0 output to OpenAPI 3.0 and validates it.
func Document() (*openapi3.T, error) {
	var v2 openapi2.T
	if err := json.Unmarshal(docs.Swagger, &v2); err != nil {
		return nil, fmt.Errorf("read swagger 2.0 document: %w", err)
	}
	doc, err := openapi2conv.ToV3(&v2)
	if err != nil {
		return nil, fmt.Errorf("convert to openapi 3: %w", err)
	}
	// Swagger 2.0 has no bearer scheme, so the annotations declare an API
	// key header; OpenAPI 3 says what it really is, and Swagger UI then asks
	// for the bare token and adds "Bearer " itself.
	bearer := openapi3.NewJWTSecurityScheme()
	bearer.Description = "Access token from POST /auth/login (paste the token alone, without \"Bearer \")."
	doc.Components.SecuritySchemes[BearerScheme] = &openapi3.SecuritySchemeRef{Value: bearer}
	// Say "no token" explicitly on public operations (security: []), rather
	// than leaving it to be inferred from a missing field.
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Security == nil {
				op.Security = openapi3.NewSecurityRequirements()
			}
		}
	}
	addPathIDParams(doc)
	addScopes(doc)
	addStandardFailures(doc)
	addPageParams(doc)
	addRateLimitHeaders(doc)
	addFaultAnswers(doc)
	addLoginChallenge(doc)
	addCookieSessions(doc)
	addCaptcha(doc)
	addErrorExamples(doc)
	addQuotaProblem(doc)
	addPages(doc)
	addExportMediaType(doc)
	addSAMLMetadataType(doc)
	addRolesAndTiers(doc)
	addEnumNames(doc)
	addHeadOperations(doc) // last: a copy of each GET as finished
	// A relative server, so that "Try it out" calls whichever host serves
	// the document.
	doc.Servers = openapi3.Servers{{URL: "/", Description: "the server that serves this document"}}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi 3 document is invalid: %w", err)
	}
	return doc, nil
}

// JSON is the document as indented JSON, as served and as written to docs/.
// Paths come in the order a person uses them (see pathOrder), not
// alphabetically: Swagger UI lists operations in document order.
func JSON(doc *openapi3.T) ([]byte, error) {
	var paths bytes.Buffer
	paths.WriteByte('{')
	for i, p := range pathOrder(doc) {
		if i > 0 {
			paths.WriteByte(',')
		}
		key, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		item, err := json.Marshal(doc.Paths.Value(p))
		if err != nil {
			return nil, err
		}
		paths.Write(key)
		paths.WriteByte(':')
		paths.Write(item)
	}
	paths.WriteByte('}')
	rest := *doc
	rest.Paths = openapi3.NewPaths()
	raw, err := json.Marshal(&rest)
	if err != nil {
		return nil, err
	}
	const empty = `"paths":{}`
	if bytes.Count(raw, []byte(empty)) != 1 {
		return nil, errors.New("openapi: cannot place the ordered paths")
	}
	raw = bytes.Replace(raw, []byte(empty), append([]byte(`"paths":`), paths.Bytes()...), 1)
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// pathOrder sorts paths by their tag's place in the declared tags (auth
// first), then by the smallest x-order of their operations (@x-order on a
// handler: register, verify, log in, refresh, log out), then by path.
func pathOrder(doc *openapi3.T) []string {
	tagIndex := map[string]int{}
	for i, t := range doc.Tags {
		tagIndex[t.Name] = i
	}
	type key struct {
		tag, order int
		path       string
	}
	keys := make([]key, 0, doc.Paths.Len())
	for path, item := range doc.Paths.Map() {
		k := key{tag: len(doc.Tags), order: 1 << 20, path: path}
		for _, op := range item.Operations() {
			for _, t := range op.Tags {
				if i, ok := tagIndex[t]; ok && i < k.tag {
					k.tag = i
				}
			}
			if n, ok := op.Extensions["x-order"].(float64); ok && int(n) < k.order {
				k.order = int(n)
			}
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.tag, b.tag), cmp.Compare(a.order, b.order), cmp.Compare(a.path, b.path))
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.path
	}
	return out
}

// Served is JSON(Document()), built once per process: the conversion and its
// validation take milliseconds, and the input is compiled into the binary.
var Served = sync.OnceValues(func() ([]byte, error) {
	doc, err := Document()
	if err != nil {
		return nil, err
	}
	return JSON(doc)
})

func indent(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// faultTags are the tags whose operations reach the database (or hash
// passwords), and so can answer 503 or 504 whatever the handler does.
var faultTags = map[string]bool{"auth": true, "users": true, "projects": true, "analytics": true, "admin": true}

// addFaultAnswers documents the answers every database-backed operation
// can give under faults, once here instead of on every handler.
func addFaultAnswers(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			touches := false
			for _, tag := range op.Tags {
				touches = touches || faultTags[tag]
			}
			if !touches {
				continue
			}
			if op.Responses.Value("503") == nil {
				r := errorAnswer(doc, "service_unavailable: the database cannot be reached, or server_busy: too many password checks waiting; retry after Retry-After")
				r.Value.Headers = openapi3.Headers{"Retry-After": retryAfterHeader()}
				op.Responses.Set("503", r)
			}
			if op.Responses.Value("504") == nil {
				op.Responses.Set("504", errorAnswer(doc, "request_timeout: the request ran past REQUEST_TIMEOUT"))
			}
		}
	}
}

// addStandardFailures documents the answers that follow from an
// operation's shape rather than its handler: a JSON body can be malformed,
// too large or of another type (400, 413, 415), a protected operation can
// be called without a valid token (401) and is limited per caller (429),
// one for people only with a key
// or client token (403 user_token_required), and one about an {id} with a
// malformed one (400 invalid_id). A handler annotates these only to say
// more (its own codes).
// pathIDs are the path parameters declared here rather than in each
// handler: every one is a uuid, the same everywhere (the {id} under
// /orgs/{id} is the organization's).
var pathIDs = map[string]string{"conn": "SSO connection id", "domain": "domain id"}

// addPathIDParams declares the {id} of every path under /orgs/{id} and the
// pathIDs wherever they appear, so the handlers do not repeat them.
func addPathIDParams(doc *openapi3.T) {
	uuidParam := func(op *openapi3.Operation, name, desc string) {
		if op.Parameters.GetByInAndName("path", name) == nil {
			p := openapi3.NewPathParameter(name).WithDescription(desc).
				WithSchema(&openapi3.Schema{Type: &openapi3.Types{openapi3.TypeString}, Format: "uuid"})
			op.Parameters = append(openapi3.Parameters{{Value: p}}, op.Parameters...)
		}
	}
	for path, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for name, desc := range pathIDs {
				if strings.Contains(path, "{"+name+"}") {
					uuidParam(op, name, desc)
				}
			}
			if strings.HasPrefix(path, "/orgs/{id}") {
				uuidParam(op, "id", "organization id")
			}
		}
	}
}

// unlimitedPaths are the probes load balancers and orchestrators call,
// which no rate limit guards (routes/system.go).
var unlimitedPaths = []string{"/healthz", "/readyz"}

func addStandardFailures(doc *openapi3.T) {
	add := func(op *openapi3.Operation, status, desc string) {
		if op.Responses.Value(status) == nil {
			op.Responses.Set(status, errorAnswer(doc, desc))
		}
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			// Every request body is limited, documented or not.
			if op.RequestBody != nil || slices.Contains([]string{"POST", "PATCH", "PUT"}, method) {
				add(op, "413", "request_too_large (1 MiB)")
			}
			jsonBody := op.RequestBody != nil && op.RequestBody.Value.Content.Get("application/json") != nil
			switch id := strings.Contains(path, "{id}"); {
			case jsonBody && id:
				add(op, "400", "validation_failed, invalid_json or invalid_id")
			case jsonBody:
				add(op, "400", "validation_failed or invalid_json")
			}
			if jsonBody {
				add(op, "415", "unsupported_media_type: send application/json")
			}
			// Every route is limited: per caller when it takes a credential
			// (g.Protected, g.PeopleOnly), per IP otherwise (g.Public), but
			// the probes (routes/system.go).
			if !slices.Contains(unlimitedPaths, path) {
				add(op, "429", "rate_limited (see Retry-After)")
			}
			if op.Security != nil && len(*op.Security) > 0 {
				add(op, "401", "authentication_required, invalid_token or token_expired (see WWW-Authenticate)")
				// Without a scope the route takes a person's login only
				// (g.PeopleOnly): a key or client token is refused.
				// An organization's SSO settings are its owners' and admins'.
				if strings.HasPrefix(path, "/orgs/{id}/") && slices.Contains(op.Tags, "sso") {
					add(op, "403", "insufficient_permissions or user_token_required")
				}
				if !slices.ContainsFunc(*op.Security, func(r openapi3.SecurityRequirement) bool { return r[OAuth2Scheme] != nil }) {
					add(op, "403", "user_token_required")
				}
			}
			// A malformed {id} is refused before anything else.
			if strings.Contains(path, "{id}") {
				add(op, "400", "invalid_id")
			}
			// An organization's routes answer a non-member as if it did not
			// exist (no existence oracle).
			if strings.HasPrefix(path, "/orgs/{id}") {
				add(op, "404", "org_not_found")
			}
		}
	}
}

// addPageParams gives every list answered with a page (Paginated: data,
// page, next_cursor) the query parameters that choose it, the same for
// all (and the 400 a bad one answers), so a handler annotates them only to
// say more.
func addPageParams(doc *openapi3.T) {
	min1 := 1.0
	params := []*openapi3.Parameter{
		openapi3.NewQueryParameter("cursor").WithDescription("next_cursor of the previous page (keyset: fast at any depth); not with page").
			WithSchema(openapi3.NewStringSchema()),
		openapi3.NewQueryParameter("page").WithDescription("page, from 1; at most 10,000 rows deep (follow next_cursor beyond)").
			WithSchema(&openapi3.Schema{Type: &openapi3.Types{openapi3.TypeInteger}, Default: 1, Min: &min1}),
		openapi3.NewQueryParameter("per_page").WithDescription("items per page, at most 100").
			WithSchema(&openapi3.Schema{Type: &openapi3.Types{openapi3.TypeInteger}, Default: 20, Min: &min1, Max: ptr(100.0)}),
	}
	for _, item := range doc.Paths.Map() {
		op := item.Get
		if op == nil || op.Responses.Value("200") == nil || op.Responses.Value("200").Value == nil {
			continue
		}
		media := op.Responses.Value("200").Value.Content.Get("application/json")
		if media == nil || media.Schema == nil || media.Schema.Value == nil {
			continue
		}
		props := media.Schema.Value.Properties
		if props["next_cursor"] == nil || props["page"] == nil || props["data"] == nil {
			continue
		}
		for _, p := range params {
			if op.Parameters.GetByInAndName("query", p.Name) == nil {
				op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: p})
			}
		}
		// The parameters are validated: a bad one is 400 validation_failed,
		// beside a malformed {id}.
		switch bad := op.Responses.Value("400"); {
		case bad == nil:
			op.Responses.Set("400", errorAnswer(doc, "validation_failed"))
		case bad.Value != nil && bad.Value.Description != nil && *bad.Value.Description == "invalid_id":
			op.Responses.Set("400", errorAnswer(doc, "validation_failed or invalid_id"))
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The security schemes beside BearerScheme.
const (
	APIKeyScheme = "ApiKeyAuth"
	OAuth2Scheme = "OAuth2"
)

// addScopes turns an operation's @x-scope (the scope its route requires
// with mw.Require; a test checks they agree) into its security: a user's
// access token, an API key or an OAuth client token holding the scope. The
// OAuth2 scheme lists every scope with the client credentials flow.
func addScopes(doc *openapi3.T) {
	scopes := map[string]string{}
	for _, sc := range caller.AllScopes() {
		scopes[string(sc)] = sc.Description()
	}
	doc.Components.SecuritySchemes[OAuth2Scheme] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
		Type:        "oauth2",
		Description: "OAuth 2.0 client credentials: a client registered by an admin gets a token at POST /oauth/token and sends it as Bearer. Each operation names the scope it needs; the same scope is what an API key must hold (a user's token holds what its role implies).",
		Flows:       &openapi3.OAuthFlows{ClientCredentials: &openapi3.OAuthFlow{TokenURL: "/oauth/token", Scopes: scopes}},
	}}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			scope, ok := op.Extensions["x-scope"].(string)
			if !ok {
				continue
			}
			delete(op.Extensions, "x-scope")
			op.Security = &openapi3.SecurityRequirements{
				{BearerScheme: []string{}}, {APIKeyScheme: []string{}}, {OAuth2Scheme: []string{scope}},
			}
			op.Description = strings.TrimSpace(op.Description + "\n\nScope: `" + scope + "`. A user's access token holds the scopes its role implies; an API key or an OAuth client token must hold this one (missing: 403 insufficient_scope).")
			if r := op.Responses.Value("403"); r != nil && r.Value.Description != nil {
				desc := *r.Value.Description + "; insufficient_scope: the key or client token lacks the scope"
				r.Value.Description = &desc
			} else {
				op.Responses.Set("403", errorAnswer(doc, "insufficient_scope: the key or client token lacks the scope"))
			}
		}
	}
}

// errorAnswer is an error response in the ErrorResponse shape.
func errorAnswer(doc *openapi3.T, desc string) *openapi3.ResponseRef {
	schema := &openapi3.SchemaRef{Ref: "#/components/schemas/ErrorResponse"}
	if known := doc.Components.Schemas["ErrorResponse"]; known != nil {
		schema.Value = known.Value
	}
	return &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription(desc).WithJSONSchemaRef(schema)}
}

func header(desc string, schema *openapi3.Schema) *openapi3.HeaderRef {
	return &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{Description: desc, Schema: schema.NewRef()}}}
}

func retryAfterHeader() *openapi3.HeaderRef {
	return header("seconds to wait before retrying", openapi3.NewIntegerSchema())
}

// rateLimitHeaders are the headers every answer of a rate-limited operation
// carries (the limit middleware sets them before the handler runs).
var rateLimitHeaders = []struct{ name, desc string }{
	{"X-RateLimit-Limit", "requests allowed per window"},
	{"X-RateLimit-Remaining", "requests left in the window"},
	{"X-RateLimit-Reset", "Unix time (seconds) when the window frees a request"},
	{"RateLimit-Policy", "IETF draft policy: name, q=limit, w=window seconds"},
	{"RateLimit", "IETF draft state: name, r=remaining, t=seconds to reset"},
}

// addRateLimitHeaders documents the rate-limit headers on the success
// answers and the 429 of every operation that can answer 429, and
// Retry-After on the 429, once here instead of six annotation lines on
// every handler. The other error answers carry them too (the API
// description says so) but do not repeat them: five rows under every
// error made one operation thousands of pixels tall in Swagger UI, and a
// client reads them where it acts on them.
func addRateLimitHeaders(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Responses.Value("429") == nil {
				continue
			}
			for status, resp := range op.Responses.Map() {
				if resp.Value == nil || (!strings.HasPrefix(status, "2") && status != "429") {
					continue
				}
				if resp.Value.Headers == nil {
					resp.Value.Headers = openapi3.Headers{}
				}
				for _, h := range rateLimitHeaders {
					if _, ok := resp.Value.Headers[h.name]; !ok {
						schema := openapi3.NewStringSchema()
						if strings.HasPrefix(h.name, "X-") {
							schema = openapi3.NewIntegerSchema()
						}
						resp.Value.Headers[h.name] = header(h.desc, schema)
					}
				}
				if _, ok := resp.Value.Headers["Retry-After"]; status == "429" && !ok {
					resp.Value.Headers["Retry-After"] = retryAfterHeader()
				}
			}
		}
	}
}

// addQuotaProblem documents the other body a 429 can have: the IETF
// RateLimit draft's quota-exceeded problem (RFC 9457), answered to a
// client whose Accept prefers application/problem+json.
func addQuotaProblem(doc *openapi3.T) {
	str := openapi3.NewStringSchema
	schema := openapi3.NewObjectSchema().
		WithProperty("type", str().WithEnum("https://iana.org/assignments/http-problem-types#quota-exceeded")).
		WithProperty("title", str()).
		WithProperty("status", openapi3.NewIntegerSchema().WithEnum(429)).
		WithProperty("detail", str()).
		WithProperty("code", str()).
		WithProperty("violated-policies", openapi3.NewArraySchema().WithItems(str()))
	schema.Required = []string{"type", "title", "status", "detail", "code", "violated-policies"}
	schema.Description = "A 429 as the IETF RateLimit draft's problem type; violated-policies names the RateLimit-Policy entries exceeded."
	schema.Example = map[string]any{
		"type": "https://iana.org/assignments/http-problem-types#quota-exceeded", "title": "Request cannot be satisfied as assigned quota has been exceeded",
		"status": 429, "detail": "Too many requests", "code": "rate_limited", "violated-policies": []string{"user"},
	}
	doc.Components.Schemas["QuotaProblem"] = openapi3.NewSchemaRef("", schema)
	ref := openapi3.NewSchemaRef("#/components/schemas/QuotaProblem", schema)
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if r := op.Responses.Value("429"); r != nil && r.Value != nil && r.Value.Content != nil {
				r.Value.Content["application/problem+json"] = openapi3.NewMediaType().WithSchemaRef(ref)
			}
		}
	}
}

var errorCode = regexp.MustCompile(`\b[a-z]+(?:_[a-z]+)+\b`)

// addErrorExamples gives every documented error answer one example per
// error code its description names, with the code's real message from the
// apperror catalog, so Swagger UI shows a 401 as a 401 (not the schema's
// one validation example under every status).
func addErrorExamples(doc *openapi3.T) {
	catalog, oauthCatalog := apperror.Catalog(), apperror.OAuthCatalog()
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for status, resp := range op.Responses.Map() {
				if status < "400" || resp.Value == nil || resp.Value.Description == nil {
					continue
				}
				media := resp.Value.Content.Get("application/json")
				if media == nil {
					continue
				}
				oauth := media.Schema != nil && strings.HasSuffix(media.Schema.Ref, "/OAuthErrorResponse")
				for _, code := range errorCode.FindAllString(*resp.Value.Description, -1) {
					e, ok := catalog[code]
					if oauth {
						e, ok = oauthCatalog[code]
					}
					if !ok {
						continue
					}
					body := map[string]any{"error": e.Message, "code": e.Code}
					if oauth {
						body = map[string]any{"error": e.Code, "error_description": e.Message}
					}
					if code == apperror.ErrValidation.Code {
						body["details"] = map[string]any{"email": "must be a valid email address"}
					}
					if media.Examples == nil {
						media.Examples = openapi3.Examples{}
					}
					media.Examples[code] = &openapi3.ExampleRef{Value: openapi3.NewExample(body)}
				}
			}
		}
	}
}

// addRolesAndTiers lists the roles and tiers caller knows on every "role"
// and "tier" property, so the document follows a role or tier a fork adds.
func addRolesAndTiers(doc *openapi3.T) {
	enums := map[string][]any{}
	for _, r := range caller.Roles() {
		enums["role"] = append(enums["role"], string(r))
	}
	for _, t := range caller.Tiers() {
		enums["tier"] = append(enums["tier"], string(t))
	}
	for _, schema := range doc.Components.Schemas {
		if schema.Value == nil {
			continue
		}
		for name, values := range enums {
			if p := schema.Value.Properties[name]; p != nil && p.Value != nil && p.Value.Type.Is(openapi3.TypeString) {
				p.Value.Enum = values
			}
		}
	}
}
