package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/openapi"
)

func TestDocsEndpoints(t *testing.T) {
	parallelTest(t)
	prod := []string{"APP_ENV", "production", "BCRYPT_COST", "10", "APP_BASE_URL", "https://tollgate.test"}
	scenarios := []Scenario{
		{Name: "Swagger UI in development, with no inline script", Method: "GET", URL: "/swagger/index.html", ExpectedStatus: 200,
			ExpectedContent: []string{"swagger-ui-bundle.js", `<script src="./swagger-initializer.js"`}, NotExpected: []string{"<script>", "window.onload"},
			ExpectedHeaders: map[string]string{"Content-Type": "text/html", "Content-Security-Policy": "script-src 'self';"}},
		{Name: "Swagger UI reads the one document and keeps no token in localStorage", Method: "GET", URL: "/swagger/swagger-initializer.js", ExpectedStatus: 200,
			ExpectedContent: []string{`url: "../openapi.json"`, "persistAuthorization: false"},
			ExpectedHeaders: map[string]string{"Content-Type": "text/javascript"}},
		{Name: "Swagger UI assets", Method: "GET", URL: "/swagger/swagger-ui-bundle.js", ExpectedStatus: 200,
			ExpectedHeaders: map[string]string{"Content-Type": "javascript"}},
		{Name: "/swagger redirects to the page", Method: "GET", URL: "/swagger/", ExpectedStatus: 301,
			ExpectedHeaders: map[string]string{"Location": "/swagger/index.html"}},
		{Name: "unknown Swagger file is a JSON 404", Method: "GET", URL: "/swagger/nothing.js", ExpectedStatus: 404,
			ExpectedContent: []string{`"code":"not_found"`}},
		{Name: "the Swagger 2.0 document is not served: /openapi.json is the one", Method: "GET", URL: "/swagger/doc.json",
			ExpectedStatus: 404, ExpectedContent: []string{`"code":"not_found"`}},
		{Name: "Swagger UI only answers GET", Method: "POST", URL: "/swagger/index.html", ExpectedStatus: 405,
			ExpectedContent: []string{`"code":"method_not_allowed"`}},
		{Name: "the rest of the API keeps the strict CSP", Method: "GET", URL: "/openapi.json", ExpectedStatus: 200,
			ExpectedHeaders: map[string]string{"Content-Type": "application/json", "Content-Security-Policy": "default-src 'none'"},
			ExpectedContent: []string{`"openapi": "3.0.3"`, `"scheme": "bearer"`, `"bearerFormat": "JWT"`}},
		{Name: "Swagger UI is off in production", Method: "GET", URL: "/swagger/index.html", Env: prod, ExpectedStatus: 404,
			ExpectedContent: []string{`"code":"not_found"`}, NotExpected: []string{"swagger-ui"}},
		{Name: "so is the OpenAPI document", Method: "GET", URL: "/openapi.json", Env: prod, ExpectedStatus: 404},
		{Name: "SWAGGER_ENABLED turns it on in production", Method: "GET", URL: "/swagger/index.html",
			Env: append(slices.Clone(prod), "SWAGGER_ENABLED", "true"), ExpectedStatus: 200},
		{Name: "SWAGGER_ENABLED=false turns it off in development", Method: "GET", URL: "/openapi.json",
			Env: []string{"SWAGGER_ENABLED", "false"}, ExpectedStatus: 404},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// The served document is the committed docs/openapi.json, valid OpenAPI 3.0
// to kin-openapi, with the bearer scheme as OpenAPI 3 spells it.
// statusOfKind is the status each error kind answers (handlers.ErrorHandler).
var statusOfKind = map[apperror.Kind]string{
	apperror.Invalid: "400", apperror.Unauthenticated: "401", apperror.Forbidden: "403", apperror.NotFound: "404",
	apperror.Conflict: "409", apperror.TooLarge: "413", apperror.Unsupported: "415", apperror.TooManyRequests: "429",
	apperror.Unavailable: "503", apperror.Timeout: "504",
}

func TestOpenAPIDocumentIsValidAndCommitted(t *testing.T) {
	parallelTest(t)
	doc, err := openapi.Document()
	mustf(t, err == nil, "document: %v", err)
	mustf(t, strings.HasPrefix(doc.OpenAPI, "3.0"), "openapi %q", doc.OpenAPI)
	s := doc.Components.SecuritySchemes[openapi.BearerScheme].Value
	mustf(t, s.Type == "http" && s.Scheme == "bearer" && s.BearerFormat == "JWT", "bearer scheme: %+v", s)

	served := newApp(t).do(t, Request{Method: "GET", URL: "/openapi.json"})
	committed, err := os.ReadFile("../docs/openapi.json")
	mustf(t, err == nil, "read docs/openapi.json: %v", err)
	mustf(t, served.Body == string(committed), "docs/openapi.json differs from what the server serves: run go generate ./docs")

	// Load the committed file afresh, as any other tool would, and validate it.
	loaded, err := openapi3.NewLoader().LoadFromData(committed)
	mustf(t, err == nil, "load: %v", err)
	mustf(t, loaded.Validate(context.Background()) == nil, "validate: %v", loaded.Validate(context.Background()))

	ids := map[string]bool{}
	for path, item := range loaded.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			mustf(t, op.OperationID != "" && !ids[op.OperationID], "%s: operationId %q missing or repeated", where, op.OperationID)
			ids[op.OperationID] = true
			mustf(t, op.Summary != "" && len(op.Tags) == 1, "%s: summary and one tag wanted", where)
			for code, resp := range op.Responses.Map() {
				if (code[0] == '4' || code[0] == '5') && method != "HEAD" { // HEAD answers carry no body
					media := resp.Value.Content.Get("application/json")
					// RFC 6749's error shape on the OAuth endpoints' 400 and 401;
					// ours everywhere else.
					oauth := strings.HasPrefix(path, "/oauth/") && (code == "400" || code == "401")
					want := map[bool]string{false: "/ErrorResponse", true: "/OAuthErrorResponse"}[oauth]
					mustf(t, strings.HasSuffix(media.Schema.Ref, want), "%s %s: error answer is %q, not %s", where, code, media.Schema.Ref, want)
					// Each error answer shows its own codes, with real messages,
					// and every code shown is one that really answers this status.
					mustf(t, len(media.Examples) > 0, "%s %s: no example (name the error codes in the description)", where, code)
					for name, ex := range media.Examples {
						body, _ := ex.Value.Value.(map[string]any)
						defined, ok := apperror.Catalog()[name]
						if oauth {
							defined, ok = apperror.OAuthCatalog()[name]
							mustf(t, ok && body["error"] == name && body["error_description"] == defined.Message, "%s %s: example %s is %v", where, code, name, body)
						} else {
							mustf(t, ok && body["code"] == name && body["error"] == defined.Message, "%s %s: example %s is %v", where, code, name, body)
						}
						mustf(t, statusOfKind[defined.Kind] == code, "%s: %s is documented as %s but answers %s", where, name, code, statusOfKind[defined.Kind])
					}
				}
			}
			for code, resp := range op.Responses.Map() {
				// Swagger UI stays short: rate-limit rows only where a client acts on them.
				_, repeated := resp.Value.Headers["X-RateLimit-Limit"]
				mustf(t, !repeated || code[0] == '2' || code == "429", "%s %s: rate-limit headers repeated under an error", where, code)
			}
			if op.Responses.Value("429") != nil {
				mustf(t, op.Responses.Value("429").Value.Headers["Retry-After"] != nil, "%s: 429 without Retry-After", where)
			}
		}
	}
}

// Every route is documented and every documented operation is routed; the
// documented security is what the route really does (a protected route
// answers a request without a token with 401 before anything else); and
// every status the route gives to a few hostile or unprivileged probes is
// among its documented answers, with the rate-limit headers it carries.
func TestSpecAndRouterAgree(t *testing.T) {
	parallelTest(t)
	// A key per scope probed, and one caller (one IP) making a few requests
	// per route: more than a free tier or the per-IP limit allows in a
	// minute once a fork adds some.
	a := newApp(t, "API_KEY_MAX_PER_USER", "100", "RATE_LIMIT_TIERS", "free=100000/1m,paid=100000/1m,enterprise=100000/1m",
		"RATE_LIMIT_PUBLIC", "100000/1m")
	viewer := a.user(t, "viewer", "free")
	admin := a.user(t, "admin", "free")
	doc, err := openapi.Document()
	mustf(t, err == nil, "document: %v", err)

	documented := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" "+path] = op
		}
	}
	made := map[string]string{} // probe keys by scope
	param := regexp.MustCompile(`:([a-z_]+)`)
	huge := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	routed := map[string]bool{}
	for _, r := range a.Server.Handler().(*echo.Echo).Router().Routes() {
		if r.Path == "/openapi.json" || strings.HasPrefix(r.Path, "/swagger") || strings.HasPrefix(r.Path, "/dev/") {
			continue // the docs themselves, and development-only routes
		}
		key := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		routed[key] = true
		if r.Method == http.MethodGet {
			// Every GET answers HEAD too (middleware.HeadAsGet): documented,
			// with the same status (net/http drops the body on a real
			// connection; TestHeadIsGetWithoutABody checks that).
			head := "HEAD " + param.ReplaceAllString(r.Path, "{$1}")
			routed[head] = true
			if hop, ok := documented[head]; !ok {
				t.Errorf("%s is answered but not in the OpenAPI document", head)
			} else if resp := a.do(t, Request{Method: "HEAD", URL: param.ReplaceAllString(r.Path, "00000000-0000-0000-0000-000000000000")}); hop.Responses.Status(resp.Status) == nil {
				t.Errorf("%s: answered %d, which is not documented", head, resp.Status)
			}
		}
		op, ok := documented[key]
		if !ok {
			t.Errorf("%s is routed but not in the OpenAPI document", key)
			continue
		}
		secured := op.Security != nil && len(*op.Security) > 0
		url := param.ReplaceAllString(r.Path, "00000000-0000-0000-0000-000000000000")
		probe := func(name, body string, headers map[string]string) *Response {
			resp := a.do(t, Request{Method: r.Method, URL: url, Body: body, Headers: headers})
			documented := op.Responses.Status(resp.Status)
			if documented == nil {
				t.Errorf("%s %s: answered %d, which is not documented: %s", key, name, resp.Status, resp.Body)
				return resp
			}
			// Rate-limit headers are documented where a client acts on them:
			// success answers and 429 (every answer carries them, the API
			// description says so). Retry-After wherever it is sent.
			carried := []string{"Retry-After"}
			if resp.Status < 300 || resp.Status == http.StatusTooManyRequests {
				carried = append(carried, "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy")
			}
			for _, h := range carried {
				if resp.Header.Get(h) != "" && documented.Value.Headers[h] == nil {
					t.Errorf("%s %s: the %d answer carries %s, which is not documented", key, name, resp.Status, h)
				}
			}
			return resp
		}
		// An operation documenting a 429 promises the rate-limit headers on
		// every answer (the API description says so); one that does not
		// promises none. Checked on the caller it is limited as: a viewer
		// for a route that needs a token (admins skip the per-user limit),
		// anyone for the rest. A route that lost its limiter fails here.
		limited := op.Responses.Status(http.StatusTooManyRequests) != nil
		promised := func(name string, resp *Response) {
			for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy"} {
				if got := resp.Header.Get(h) != ""; got != limited {
					t.Errorf("%s %s: documented 429 %v, but the %d answer carries %s: %v", key, name, limited, resp.Status, h, got)
				}
			}
		}
		resp := probe("without a token", "{}", nil)
		if !secured {
			promised("without a token", resp)
		}
		needsToken := resp.Status == http.StatusUnauthorized && strings.Contains(resp.Body, `"authentication_required"`)
		if secured != needsToken {
			t.Errorf("%s: documented security %v, but without a token it answers %d %s", key, secured, resp.Status, resp.Body)
		}
		if secured {
			promised("as a viewer", probe("as a viewer", "{}", bearer(viewer)))
			probe("as an admin", "{}", bearer(admin))
			// The documented scope is the one the route requires: a key
			// lacking it is refused for it, a key holding it is not. Routes
			// documented without one take no key at all.
			scope := ""
			for _, req := range *op.Security {
				if s, ok := req[openapi.OAuth2Scheme]; ok && len(s) == 1 {
					scope = s[0]
				}
			}
			if scope == "" {
				resp := probe("with an API key", "{}", keyHeader(keyFor(t, a, admin, made, "")))
				if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, `"user_token_required"`) {
					t.Errorf("%s: documented for user tokens only, but a key gets %d %s", key, resp.Status, resp.Body)
				}
			} else {
				resp := probe("with a key lacking "+scope, "{}", keyHeader(keyFor(t, a, admin, made, "-"+scope)))
				if resp.Status != http.StatusForbidden || !strings.Contains(resp.Body, `"insufficient_scope"`) {
					t.Errorf("%s: documented scope %s, but a key without it gets %d %s", key, scope, resp.Status, resp.Body)
				}
				resp = probe("with a key holding "+scope, "{}", keyHeader(keyFor(t, a, admin, made, scope)))
				if resp.Status == http.StatusUnauthorized || strings.Contains(resp.Body, `"insufficient_scope"`) {
					t.Errorf("%s: documented scope %s, but a key with it gets %d %s", key, scope, resp.Status, resp.Body)
				}
			}
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPatch {
			probe("with a 2 MiB body", huge, bearer(admin))
			probe("with a text body", "{}", map[string]string{"Content-Type": "text/plain", "Authorization": admin.Bearer()})
		}
	}
	for key := range documented {
		if !routed[key] {
			t.Errorf("%s is documented but not routed", key)
		}
	}
	mustf(t, len(routed) >= 15, "only %d routes walked", len(routed))
}

// docs/schemas/ is exported from the OpenAPI components, compiles as JSON
// Schema 2020-12 and accepts what the API really sends and takes.
func TestJSONSchemasStayInStepWithOpenAPI(t *testing.T) {
	parallelTest(t)
	doc, err := openapi.Document()
	mustf(t, err == nil, "document: %v", err)
	want, err := openapi.JSONSchemas(doc)
	mustf(t, err == nil, "export: %v", err)
	files, _ := filepath.Glob("../docs/schemas/*.json")
	mustf(t, len(files) == len(want), "docs/schemas has %d files, the export %d: run go generate ./docs", len(files), len(want))

	compiler := jsonschema.NewCompiler()
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join("../docs/schemas", name))
		mustf(t, err == nil && bytes.Equal(got, b), "docs/schemas/%s is not what the components export: run go generate ./docs", name)
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(got))
		mustf(t, err == nil, "%s: %v", name, err)
		mustf(t, compiler.AddResource(name, v) == nil, "add %s", name)
	}
	compile := func(name string) *jsonschema.Schema {
		s, err := compiler.Compile(name)
		mustf(t, err == nil, "compile %s: %v", name, err)
		return s
	}

	a := newApp(t)
	u := a.user(t, "viewer", "free")
	check := func(schema string, body string, valid bool) {
		t.Helper()
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
		mustf(t, err == nil, "%s: %v", body, err)
		err = compile(schema).Validate(v)
		mustf(t, (err == nil) == valid, "%s against %s: valid=%v, want %v (%v)", body, schema, err == nil, valid, err)
	}
	login := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	check("token-pair.json", login.Body, true)
	refresh := a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: map[string]string{"refresh_token": field(t, login, "refresh_token")}})
	check("token-pair.json", refresh.Body, true)
	bad := a.do(t, Request{Method: "POST", URL: "/auth/register", Body: map[string]string{"email": "nope"}})
	check("error.json", bad.Body, true)
	check("register.json", `{"email":"marta@example.com","password":"Correct-Horse-9"}`, true)
	check("register.json", `{"email":"marta@example.com"}`, false)
	check("login.json", `{"email":"marta@example.com","password":"x"}`, true)
	check("refresh.json", `{"refresh_token":"abc"}`, true)
	check("refresh.json", `{}`, true) // a cookie session's refresh: the token is the cookie
	check("refresh.json", `{"refresh_token":7}`, false)
	check("login.json", `{"email":"marta@example.com","password":"x","session":"cookie"}`, true)
	check("login.json", `{"email":"marta@example.com","password":"x","session":"jar"}`, false)
	check("token-pair.json", `{"access_token":"x"}`, false)
	check("error.json", `{"error":"x"}`, false)

	var example map[string]any
	mustf(t, json.Unmarshal(want["token-pair.json"], &example) == nil, "token-pair.json is not JSON")
	mustf(t, example["$schema"] == openapi.SchemaDialect, "token-pair.json declares %v", example["$schema"])
}

// Swagger UI lists operations in document order: the auth flow comes first,
// in the order a person goes through it.
func TestOpenAPIPathsFollowTheFlow(t *testing.T) {
	parallelTest(t)
	raw, err := os.ReadFile("../docs/openapi.json")
	mustf(t, err == nil, "%v", err)
	var doc struct {
		Paths json.RawMessage `json:"paths"`
	}
	mustf(t, json.Unmarshal(raw, &doc) == nil, "decode")
	dec := json.NewDecoder(bytes.NewReader(doc.Paths))
	var order []string
	_, _ = dec.Token() // {
	for dec.More() {
		tok, err := dec.Token()
		mustf(t, err == nil, "%v", err)
		order = append(order, tok.(string))
		var skip json.RawMessage
		mustf(t, dec.Decode(&skip) == nil, "skip")
	}
	want := []string{"/auth/register", "/auth/verify", "/auth/verify/resend", "/auth/login", "/auth/mfa/verify", "/auth/refresh", "/auth/logout",
		"/auth/password/forgot", "/auth/password/reset"}
	mustf(t, len(order) > len(want) && slices.Equal(order[:len(want)], want), "paths in order %v", order)
}

// keyFor returns an admin's API key holding scope ("": every scope;
// "-x": every scope but x), made once per app (kept in made).
func keyFor(t testing.TB, a *App, admin *User, made map[string]string, scope string) string {
	if k, ok := made[scope]; ok {
		return k
	}
	var scopes []string
	for _, s := range caller.AllScopes() {
		if scope == "" || string(s) == scope || (strings.HasPrefix(scope, "-") && string(s) != scope[1:]) {
			scopes = append(scopes, string(s))
		}
	}
	k, _ := a.makeKey(t, admin, map[string]any{"name": "probe " + scope, "scopes": scopes})
	made[scope] = k
	return k
}

// Handler annotations say only what is particular to an operation; what
// follows from its shape is added when the document is built
// (openapi.addStandardFailures and the global media types). They stay
// under a third of the handlers' code.
func TestHandlerAnnotationsStayUnderAThird(t *testing.T) {
	files, err := filepath.Glob("../handlers/*.go")
	mustf(t, err == nil && len(files) > 0, "handlers: %v", err)
	annotations, code := 0, 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		mustf(t, err == nil, "read %s: %v", f, err)
		for _, line := range strings.Split(string(raw), "\n") {
			switch l := strings.TrimSpace(line); {
			case strings.HasPrefix(l, "//\t@") || strings.HasPrefix(l, "// @"):
				annotations++
			case l != "" && !strings.HasPrefix(l, "//"):
				code++
			}
		}
	}
	mustf(t, annotations*3 < code, "%d annotation lines against %d lines of code in handlers/ (%.0f%%): say less, or let openapi/ add it",
		annotations, code, 100*float64(annotations)/float64(code))
}
