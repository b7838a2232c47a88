package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/product"
)

// client registers an OAuth client as admin and returns its client_id,
// secret and row id.
func (a *App) client(t testing.TB, admin *User, body map[string]any) (id, secret, rowID string) {
	t.Helper()
	r := a.do(t, Request{Method: "POST", URL: "/admin/oauth/clients", Headers: bearer(admin), Body: body})
	mustf(t, r.Status == 201, "register client: %d %s", r.Status, r.Body)
	return field(t, r, "client_id"), field(t, r, "client_secret"), field(t, r, "id")
}

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// formRequest posts a form to an OAuth endpoint.
func formRequest(path string, form url.Values, headers map[string]string) Request {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range headers {
		h[k] = v
	}
	return Request{Method: "POST", URL: path, Body: form.Encode(), Headers: h}
}

// token gets a client token with Basic authentication.
func (a *App) token(t testing.TB, id, secret, scope string) string {
	t.Helper()
	f := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		f.Set("scope", scope)
	}
	r := a.do(t, formRequest("/oauth/token", f, map[string]string{"Authorization": basicAuth(id, secret)}))
	mustf(t, r.Status == 200, "token: %d %s", r.Status, r.Body)
	return field(t, r, "access_token")
}

// withClient makes an admin and a client of body; {admin} is the admin's
// token, {client_id}, {secret}, {client} the client's.
func withClient(body map[string]any) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		admin := a.user(t, caller.Admin, caller.Free)
		id, secret, row := a.client(t, admin, body)
		return map[string]string{"token": admin.Access, "admin": admin.Access, "admin_id": admin.ID, "client_id": id, "secret": secret, "client": row,
			"basic": basicAuth(id, secret)}
	}
}

var readClient = map[string]any{"name": "reader", "scopes": []string{"analytics:read", "users:read"}}

func tokenForm(extra ...string) string {
	f := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f.Encode()
}

var formType = "application/x-www-form-urlencoded"

func TestOAuthClientRegistration(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "an admin registers a client and sees its secret once", Method: "POST", URL: "/admin/oauth/clients", Headers: auth, Setup: asRole("admin"),
			Body:           map[string]any{"name": "sync", "scopes": []string{"users:read", "analytics:read"}},
			ExpectedStatus: 201, ExpectedContent: []string{`"client_id":"` + product.ClientIDPrefix, `"client_secret":"`, `"scopes":["analytics:read","users:read"]`,
				`"access_token_ttl":900`, `"token_endpoint_auth_method":"client_secret_basic"`, `"audience":"` + product.ID + `-api"`},
			ExpectedHeaders: map[string]string{"Cache-Control": "no-store"},
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, strings.Contains(a.Logs.String(), `"event":"oauth_client.registered"`), "no security event")
				mustf(t, !strings.Contains(a.Logs.String(), field(t, r, "client_secret")), "the secret was logged")
			}},
		{Name: "the list never shows secrets", Method: "GET", URL: "/admin/oauth/clients", Headers: auth, Setup: withClient(readClient),
			ExpectedStatus: 200, ExpectedContent: []string{`"client_id":"{client_id}"`, `"id":"{client}"`}, NotExpected: []string{"{secret}", "secret_hash"}},
		{Name: "others may not register clients", Method: "POST", URL: "/admin/oauth/clients", Headers: auth, Setup: asRole("editor"),
			Body: readClient, ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
		{Name: "nor may an admin's API key", Method: "POST", URL: "/admin/oauth/clients", Headers: map[string]string{"X-API-Key": "{key}"},
			Setup: withKey(caller.Admin, map[string]any{"name": "all", "scopes": caller.AllScopes()}), Body: readClient,
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"user_token_required"`}},
		{Name: "bad fields are named", Method: "POST", URL: "/admin/oauth/clients", Headers: auth, Setup: asRole("admin"),
			Body:           map[string]any{"name": "x", "scopes": []string{}, "access_token_ttl": 5, "token_endpoint_auth_method": "private_key_jwt"},
			ExpectedStatus: 400, ExpectedContent: []string{`"scopes":`, `"access_token_ttl":`, `"token_endpoint_auth_method":`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

func TestOAuthTokenEndpoint(t *testing.T) {
	parallelTest(t)
	basic := map[string]string{"Authorization": "{basic}", "Content-Type": formType}
	scenarios := []Scenario{
		{Name: "client_secret_basic gets an RFC 9068 token", Method: "POST", URL: "/oauth/token", Headers: basic, Body: tokenForm(),
			Setup: withClient(readClient), ExpectedStatus: 200,
			ExpectedContent: []string{`"token_type":"Bearer"`, `"expires_in":900`, `"scope":"analytics:read users:read"`},
			NotExpected:     []string{"refresh_token"},
			ExpectedHeaders: map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache"},
			After: func(t testing.TB, a *App, r *Response) {
				parts := strings.Split(field(t, r, "access_token"), ".")
				var head, claims map[string]any
				h, _ := base64.RawURLEncoding.DecodeString(parts[0])
				c, _ := base64.RawURLEncoding.DecodeString(parts[1])
				mustf(t, json.Unmarshal(h, &head) == nil && json.Unmarshal(c, &claims) == nil, "decode")
				mustf(t, head["typ"] == "at+jwt" && head["alg"] == "RS256" && head["kid"] != "", "header %v", head)
				for _, k := range []string{"iss", "sub", "client_id", "aud", "exp", "iat", "jti", "scope"} {
					mustf(t, claims[k] != nil, "claim %s missing: %v", k, claims)
				}
				mustf(t, claims["sub"] == claims["client_id"] && claims["exp"].(float64)-claims["iat"].(float64) == 900, "claims %v", claims)
			}},
		{Name: "client_secret_post gets a token", Method: "POST", URL: "/oauth/token", Headers: map[string]string{"Content-Type": formType},
			Body:           "grant_type=client_credentials&client_id={client_id}&client_secret={secret}",
			Setup:          withClient(map[string]any{"name": "p", "scopes": []string{"users:read"}, "token_endpoint_auth_method": "client_secret_post"}),
			ExpectedStatus: 200, ExpectedContent: []string{`"scope":"users:read"`}},
		{Name: "the registered method is required", Method: "POST", URL: "/oauth/token", Headers: basic, Body: tokenForm(),
			Setup:          withClient(map[string]any{"name": "p", "scopes": []string{"users:read"}, "token_endpoint_auth_method": "client_secret_post"}),
			ExpectedStatus: 401, ExpectedContent: []string{`"error":"invalid_client"`, `"error_description":"Client authentication failed"`},
			ExpectedHeaders: map[string]string{"WWW-Authenticate": `Basic realm="` + product.ID + `"`, "Cache-Control": "no-store"}},
		{Name: "a wrong secret is invalid_client", Method: "POST", URL: "/oauth/token", Headers: map[string]string{"Content-Type": formType, "Authorization": "{wrong}"},
			Body: tokenForm(),
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withClient(readClient)(t, a)
				v["wrong"] = basicAuth(v["client_id"], v["secret"]+"x")
				return v
			},
			ExpectedStatus: 401, ExpectedContent: []string{`"error":"invalid_client"`}},
		{Name: "an unknown client is invalid_client", Method: "POST", URL: "/oauth/token",
			Headers: map[string]string{"Content-Type": formType, "Authorization": basicAuth(product.ClientIDPrefix+"nobody", "secret")}, Body: tokenForm(),
			ExpectedStatus: 401, ExpectedContent: []string{`"error":"invalid_client"`}},
		{Name: "no credentials is invalid_client", Method: "POST", URL: "/oauth/token", Headers: map[string]string{"Content-Type": formType},
			Body: tokenForm(), ExpectedStatus: 401, ExpectedContent: []string{`"error":"invalid_client"`}},
		{Name: "two methods at once is invalid_request", Method: "POST", URL: "/oauth/token", Headers: basic,
			Body: "grant_type=client_credentials&client_id={client_id}&client_secret={secret}", Setup: withClient(readClient),
			ExpectedStatus: 400, ExpectedContent: []string{`"error":"invalid_request"`}},
		{Name: "grant_type is required", Method: "POST", URL: "/oauth/token", Headers: basic, Body: "scope=users:read",
			Setup: withClient(readClient), ExpectedStatus: 400, ExpectedContent: []string{`"error":"invalid_request"`, `grant_type is required`}},
		{Name: "other grants are unsupported_grant_type", Method: "POST", URL: "/oauth/token", Headers: basic, Body: "grant_type=password",
			Setup: withClient(readClient), ExpectedStatus: 400, ExpectedContent: []string{`"error":"unsupported_grant_type"`}},
		{Name: "a JSON body is invalid_request", Method: "POST", URL: "/oauth/token", Headers: map[string]string{"Authorization": "{basic}"},
			Body: map[string]string{"grant_type": "client_credentials"}, Setup: withClient(readClient),
			ExpectedStatus: 400, ExpectedContent: []string{`"error":"invalid_request"`, `application/x-www-form-urlencoded`}},
		{Name: "repeated parameters are invalid_request", Method: "POST", URL: "/oauth/token", Headers: basic,
			Body: "grant_type=client_credentials&grant_type=client_credentials", Setup: withClient(readClient),
			ExpectedStatus: 400, ExpectedContent: []string{`"error":"invalid_request"`}},
		{Name: "a subset of the client's scopes", Method: "POST", URL: "/oauth/token", Headers: basic, Body: tokenForm("scope", "users:read"),
			Setup: withClient(readClient), ExpectedStatus: 200, ExpectedContent: []string{`"scope":"users:read"`}},
		{Name: "a scope the client lacks is invalid_scope", Method: "POST", URL: "/oauth/token", Headers: basic, Body: tokenForm("scope", "users:read admin"),
			Setup: withClient(readClient), ExpectedStatus: 400, ExpectedContent: []string{`"error":"invalid_scope"`}},
		{Name: "an unknown scope is invalid_scope", Method: "POST", URL: "/oauth/token", Headers: basic, Body: tokenForm("scope", "root"),
			Setup: withClient(readClient), ExpectedStatus: 400, ExpectedContent: []string{`"error":"invalid_scope"`}},
		{Name: "a demoted owner leaves the client nothing: invalid_grant", Method: "POST", URL: "/oauth/token", Headers: basic, Body: tokenForm(),
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withClient(map[string]any{"name": "a", "scopes": []string{"analytics:read"}})(t, a)
				demote(t, a, v["admin_id"])
				return v
			},
			ExpectedStatus: 400, ExpectedContent: []string{`"error":"invalid_grant"`}},
		{Name: "a disabled client is invalid_client", Method: "POST", URL: "/oauth/token", Headers: basic, Body: tokenForm(),
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withClient(readClient)(t, a)
				r := a.do(t, Request{Method: "DELETE", URL: "/admin/oauth/clients/" + v["client"], Headers: map[string]string{"Authorization": "Bearer " + v["admin"]}})
				mustf(t, r.Status == 204, "disable: %d %s", r.Status, r.Body)
				return v
			},
			ExpectedStatus: 401, ExpectedContent: []string{`"error":"invalid_client"`}},
		{Name: "the metadata describes the server", Method: "GET", URL: "/.well-known/oauth-authorization-server", ExpectedStatus: 200,
			ExpectedContent: []string{`"issuer":"http://tollgate.test"`, `"token_endpoint":"http://tollgate.test/oauth/token"`, `"revocation_endpoint":"http://tollgate.test/oauth/revoke"`,
				`"introspection_endpoint":"http://tollgate.test/oauth/introspect"`, `"jwks_uri":"http://tollgate.test/.well-known/jwks.json"`,
				`"grant_types_supported":["client_credentials"]`, `"token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"]`,
				`"scopes_supported":["admin","analytics:read",`, `"users:read"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

// demote makes the user a viewer, as an admin of the same app would.
func demote(t testing.TB, a *App, userID string) {
	t.Helper()
	other := a.user(t, caller.Admin, caller.Free)
	r := a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + userID, Headers: bearer(other), Body: map[string]string{"role": "viewer"}})
	mustf(t, r.Status == 200, "demote: %d %s", r.Status, r.Body)
}

// withClientToken adds {ctoken}, a token of the client for scope.
func withClientToken(body map[string]any, scope string) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		v := withClient(body)(t, a)
		v["ctoken"] = a.token(t, v["client_id"], v["secret"], scope)
		return v
	}
}

func TestOAuthClientTokensAtTheRoutes(t *testing.T) {
	parallelTest(t)
	ctoken := map[string]string{"Authorization": "Bearer {ctoken}"}
	scenarios := []Scenario{
		{Name: "a client token reads with its scope", Method: "GET", URL: "/analytics", Headers: ctoken,
			Setup: withClientToken(readClient, ""), ExpectedStatus: 200},
		{Name: "acts for its owner", Method: "GET", URL: "/users/me", Headers: ctoken,
			Setup: withClientToken(readClient, ""), ExpectedStatus: 200, ExpectedContent: []string{`"id":"{admin_id}"`}},
		{Name: "cannot pass an admin route without its scope", Method: "GET", URL: "/admin/users", Headers: ctoken,
			Setup: withClientToken(readClient, ""), ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_scope"`},
			ExpectedHeaders: map[string]string{"WWW-Authenticate": `Bearer error="insufficient_scope", error_description="The credential lacks the scope this route needs", scope="admin"`}},
		{Name: "nor a scope left out of its token", Method: "GET", URL: "/users/me", Headers: ctoken,
			Setup: withClientToken(readClient, "analytics:read"), ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_scope"`}},
		{Name: "nor manage API keys", Method: "GET", URL: "/api-keys", Headers: ctoken,
			Setup: withClientToken(readClient, ""), ExpectedStatus: 403, ExpectedContent: []string{`"code":"user_token_required"`}},
		{Name: "a user-token route check cannot be fooled by a client token's claims", Method: "PATCH", URL: "/admin/users/{admin_id}", Headers: ctoken,
			Body: map[string]string{"tier": "paid"}, Setup: withClientToken(readClient, ""), ExpectedStatus: 403,
			ExpectedContent: []string{`"code":"insufficient_scope"`}},
		{Name: "a client with the scope writes as its owner", Method: "PATCH", URL: "/admin/users/{admin_id}", Headers: ctoken, Body: map[string]string{"tier": "paid"},
			Setup:          withClientToken(map[string]any{"name": "w", "scopes": []string{"admin"}}, ""),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{admin_id}"`, `"tier":"paid"`}},
		{Name: "a demoted owner's client loses the scope at once", Method: "GET", URL: "/analytics", Headers: ctoken,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withClientToken(readClient, "")(t, a)
				demote(t, a, v["admin_id"])
				r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + v["ctoken"]}})
				mustf(t, r.Status == 200, "reading still allowed: %d", r.Status)
				return v
			},
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_scope"`}},
		{Name: "a disabled client's tokens die at once", Method: "GET", URL: "/users/me", Headers: ctoken,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withClientToken(readClient, "")(t, a)
				a.do(t, Request{Method: "DELETE", URL: "/admin/oauth/clients/" + v["client"], Headers: map[string]string{"Authorization": "Bearer " + v["admin"]}})
				return v
			},
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"invalid_token"`}},
		{Name: "an expired client token", Method: "GET", URL: "/users/me", Headers: ctoken,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withClientToken(readClient, "")(t, a)
				a.Clock.Advance(15 * time.Minute)
				return v
			},
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"token_expired"`}},
		{Name: "a revoked token is refused", Method: "GET", URL: "/users/me", Headers: ctoken,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withClientToken(readClient, "")(t, a)
				r := a.do(t, formRequest("/oauth/revoke", url.Values{"token": {v["ctoken"]}, "token_type_hint": {"access_token"}}, map[string]string{"Authorization": v["basic"]}))
				mustf(t, r.Status == 200, "revoke: %d %s", r.Status, r.Body)
				return v
			},
			ExpectedStatus: 401, ExpectedContent: []string{`"code":"invalid_token"`}},
		{Name: "another client cannot revoke it", Method: "GET", URL: "/users/me", Headers: ctoken,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withClientToken(readClient, "")(t, a)
				admin := a.user(t, caller.Admin, caller.Free)
				id, secret, _ := a.client(t, admin, readClient)
				r := a.do(t, formRequest("/oauth/revoke", url.Values{"token": {v["ctoken"]}}, map[string]string{"Authorization": basicAuth(id, secret)}))
				mustf(t, r.Status == 200, "a foreign revoke still answers 200: %d", r.Status)
				return v
			},
			ExpectedStatus: 200},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

func TestOAuthIntrospectionAndRevocation(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	admin := a.user(t, caller.Admin, caller.Free)
	id, secret, _ := a.client(t, admin, readClient)
	tok := a.token(t, id, secret, "users:read")
	introspect := func(token string, auth map[string]string) *Response {
		return a.do(t, formRequest("/oauth/introspect", url.Values{"token": {token}}, auth))
	}
	basic := map[string]string{"Authorization": basicAuth(id, secret)}

	r := introspect(tok, basic)
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"active":true`) && strings.Contains(r.Body, `"scope":"users:read"`) &&
		strings.Contains(r.Body, `"client_id":"`+id+`"`) && strings.Contains(r.Body, `"token_type":"Bearer"`), "active client token: %s", r.Body)
	mustf(t, r.Header.Get("Cache-Control") == "no-store", "introspection cached")
	r = introspect(admin.Access, basic)
	mustf(t, strings.Contains(r.Body, `"active":true`) && strings.Contains(r.Body, `"sub":"`+admin.ID+`"`), "user token: %s", r.Body)
	for _, junk := range []string{"nonsense", admin.Access + "x"} {
		r = introspect(junk, basic)
		mustf(t, r.Status == 200 && r.Body == `{"active":false}`+"\n" || r.Body == `{"active":false}`, "junk token: %q", r.Body)
	}
	r = introspect(tok, map[string]string{"Authorization": basicAuth(id, "wrong")})
	mustf(t, r.Status == 401 && strings.Contains(r.Body, `"error":"invalid_client"`), "introspection needs a client: %d %s", r.Status, r.Body)
	r = a.do(t, formRequest("/oauth/introspect", url.Values{}, basic))
	mustf(t, r.Status == 400 && strings.Contains(r.Body, `"error":"invalid_request"`), "no token: %d %s", r.Status, r.Body)

	r = a.do(t, formRequest("/oauth/revoke", url.Values{"token": {tok}}, basic))
	mustf(t, r.Status == 200, "revoke: %d", r.Status)
	r = introspect(tok, basic)
	mustf(t, strings.Contains(r.Body, `"active":false`) && !strings.Contains(r.Body, "scope"), "revoked token: %s", r.Body)
	r = a.do(t, formRequest("/oauth/revoke", url.Values{"token": {"unknown"}}, basic))
	mustf(t, r.Status == 200, "revoking an unknown token: %d", r.Status)

	other := a.token(t, id, secret, "")
	a.Clock.Advance(15 * time.Minute)
	r = introspect(other, basic)
	mustf(t, strings.Contains(r.Body, `"active":false`), "expired token: %s", r.Body)
}

// Both secrets work while a rotation overlaps; then only the new one.
func TestOAuthSecretRotation(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	admin := a.user(t, caller.Admin, caller.Free)
	id, old, row := a.client(t, admin, readClient)
	r := a.do(t, Request{Method: "POST", URL: "/admin/oauth/clients/" + row + "/rotate-secret", Headers: bearer(admin), Body: map[string]int{"grace_period": 600}})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"previous_secret_expires_at":"2026-03-02T09:10:00Z"`), "rotate: %d %s", r.Status, r.Body)
	fresh := field(t, r, "client_secret")
	a.token(t, id, old, "")
	a.token(t, id, fresh, "")
	a.Clock.Advance(10 * time.Minute)
	r = a.do(t, formRequest("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": basicAuth(id, old)}))
	mustf(t, r.Status == 401, "old secret after the overlap: %d", r.Status)
	a.token(t, id, fresh, "")
}

// Failed client authentication counts like a failed login, and the token
// endpoint is limited per client_id.
func TestOAuthTokenEndpointLimits(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_TOKEN", "3/1m")
	admin := a.user(t, caller.Admin, caller.Free)
	id, secret, _ := a.client(t, admin, readClient)
	var got []int
	for range 4 {
		got = append(got, a.do(t, formRequest("/oauth/token", url.Values{"grant_type": {"client_credentials"}},
			map[string]string{"Authorization": basicAuth(id, secret), "X-Forwarded-For": "203.0.113.9"})).Status)
	}
	mustf(t, got[2] == 200 && got[3] == 429, "per client_id: %v", got)

	b := newApp(t)
	admin = b.user(t, caller.Admin, caller.Free)
	id, _, _ = b.client(t, admin, readClient)
	got = nil
	for range 6 {
		got = append(got, b.do(t, formRequest("/oauth/token", url.Values{"grant_type": {"client_credentials"}},
			map[string]string{"Authorization": basicAuth(id, "wrong")})).Status)
	}
	mustf(t, got[4] == 401 && got[5] == 429, "failed client authentication, counted like failed logins: %v", got)
}

// The standard Go client gets a token and calls a protected route with it.
func TestOAuthInteropWithGolangOAuth2(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	admin := a.user(t, caller.Admin, caller.Free)
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		id, secret, _ := a.client(t, admin, map[string]any{"name": method, "scopes": []string{"users:read"}, "token_endpoint_auth_method": method})
		style := oauth2.AuthStyleInHeader
		if method == "client_secret_post" {
			style = oauth2.AuthStyleInParams
		}
		cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: srv.URL + "/oauth/token", Scopes: []string{"users:read"}, AuthStyle: style}
		tok, err := cfg.Token(context.Background())
		mustf(t, err == nil && tok.TokenType == "Bearer" && tok.Expiry.After(time.Now()), "%s token: %v %+v", method, err, tok)
		resp, err := cfg.Client(context.Background()).Get(srv.URL + "/users/me")
		mustf(t, err == nil && resp.StatusCode == http.StatusOK, "%s call: %v %v", method, err, resp)
		resp.Body.Close()
	}
	// And its error parsing sees RFC 6749 errors.
	cfg := clientcredentials.Config{ClientID: product.ClientIDPrefix + "nobody", ClientSecret: "x", TokenURL: srv.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	_, err := cfg.Token(context.Background())
	var re *oauth2.RetrieveError
	mustf(t, errors.As(err, &re) && re.ErrorCode == "invalid_client", "error: %v", err)
}

// On Redis, a revocation on one instance is seen by the others at once.
func TestOAuthRevocationAcrossInstances(t *testing.T) {
	parallelTest(t)
	url := sharedRedis(t)
	prefix := randomName("test:") + ":"
	first := newApp(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix, "RATE_LIMIT_REDIS_TIMEOUT", "5s")
	second := first.sibling(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix, "RATE_LIMIT_REDIS_TIMEOUT", "5s")
	admin := first.user(t, caller.Admin, caller.Free)
	id, secret, _ := first.client(t, admin, readClient)
	tok := first.token(t, id, secret, "")
	h := map[string]string{"Authorization": "Bearer " + tok}
	mustf(t, second.do(t, Request{Method: "GET", URL: "/users/me", Headers: h}).Status == 200, "before revocation")
	r := first.do(t, formRequest("/oauth/revoke", urlValues("token", tok), map[string]string{"Authorization": basicAuth(id, secret)}))
	mustf(t, r.Status == 200, "revoke: %d", r.Status)
	mustf(t, second.do(t, Request{Method: "GET", URL: "/users/me", Headers: h}).Status == 401, "revoked on the first, accepted by the second")
}

func urlValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// A client secret made under an old pepper still authenticates after the
// pepper rotates, and moves to the new one.
func TestOAuthClientPepperRotation(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	admin := a.user(t, caller.Admin, caller.Free)
	id, secret, row := a.client(t, admin, readClient)
	next := a.sibling(t, "API_KEY_PEPPER", testPepper+"-next", "API_KEY_PEPPER_VERSION", "2", "API_KEY_PREVIOUS_PEPPERS", "1:"+testPepper)
	next.token(t, id, secret, "")
	var version int
	mustf(t, next.Rows(t).Raw("SELECT pepper_version FROM oauth_clients WHERE id = ?", row).Scan(&version).Error == nil && version == 2, "moved: %d", version)
	only := a.sibling(t, "API_KEY_PEPPER", testPepper+"-next", "API_KEY_PEPPER_VERSION", "2")
	only.token(t, id, secret, "")
}

// Naming a client_id does not spend its budget: only requests whose client
// authenticated count. An attacker without the secret, from many
// addresses, cannot make the real client get a 429; from one address its
// failures are refused after a few.
func TestAnAttackerCannotSpendAClientsBudget(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_TOKEN", "5/1m")
	admin := a.user(t, caller.Admin, caller.Free)
	id, secret, _ := a.client(t, admin, readClient)
	grant := urlValues("grant_type", "client_credentials")
	for i := range 30 {
		// A fresh address each time: the per-IP limits are not what is tested.
		req := formRequest("/oauth/token", grant, map[string]string{"Authorization": basicAuth(id, "wrong-secret")})
		req.RemoteAddr = fmt.Sprintf("203.0.113.%d:1234", i+1)
		r := a.do(t, req)
		mustf(t, r.Status == 401 && strings.Contains(r.Body, "invalid_client"), "attempt %d without the secret: %d %s", i, r.Status, r.Body)
	}
	for i := range 5 {
		req := formRequest("/oauth/token", grant, map[string]string{"Authorization": basicAuth(id, secret)})
		req.RemoteAddr = "198.51.100.50:1234"
		r := a.do(t, req)
		mustf(t, r.Status == 200, "the real client's token %d after the attack: %d %s", i, r.Status, r.Body)
	}
	// Its own requests do count: the sixth in the minute is refused.
	req := formRequest("/oauth/token", grant, map[string]string{"Authorization": basicAuth(id, secret)})
	req.RemoteAddr = "198.51.100.50:1234"
	mustf(t, a.do(t, req).Status == 429, "the client's own budget is not counted")
	// One address guessing the secret is refused after the login budget.
	a.Clock.Advance(2 * time.Minute) // the client's own minute is over
	statuses := map[int]int{}
	for range 8 {
		req := formRequest("/oauth/token", grant, map[string]string{"Authorization": basicAuth(id, "guess")})
		req.RemoteAddr = "192.0.2.77:1234"
		statuses[a.do(t, req).Status]++
	}
	mustf(t, statuses[401] == 5 && statuses[429] == 3, "one address guessing: %v", statuses)
}

// withOrgClient makes a team whose admin registers a client of it (body),
// and another team with a client of its own. It gives asTeam(role)'s
// values and {client}, {client_id}, {secret}, {ctoken} (a token of the
// client), {their_org}, {their_client}.
func withOrgClient(role string, body map[string]any) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		tm, them := a.team(t, randomSlug()), a.team(t, randomSlug())
		by := map[string]*User{"owner": tm.Owner, "admin": tm.Admin, "editor": tm.Editor, "viewer": tm.Viewer}
		reg := func(team *Team) *Response {
			r := a.do(t, Request{Method: "POST", URL: "/orgs/" + team.ID + "/clients", Headers: bearer(team.Admin), Body: body})
			mustf(t, r.Status == 201, "register: %d %s", r.Status, r.Body)
			return r
		}
		mine, theirs := reg(tm), reg(them)
		v := map[string]string{"org": tm.ID, "token": by[role].Access, "user_id": by[role].ID, "admin_id": tm.Admin.ID, "owner": tm.Owner.Access,
			"client": field(t, mine, "id"), "client_id": field(t, mine, "client_id"), "secret": field(t, mine, "client_secret"),
			"their_org": them.ID, "their_client": field(t, theirs, "id"), "their_client_id": field(t, theirs, "client_id")}
		v["ctoken"] = a.token(t, v["client_id"], v["secret"], "")
		return v
	}
}

var orgClient = map[string]any{"name": "sync", "scopes": []string{"analytics:read", "users:read"}}

func TestOrgClients(t *testing.T) {
	parallelTest(t)
	ctoken := map[string]string{"Authorization": "Bearer {ctoken}"}
	scenarios := []Scenario{
		{Name: "an org admin registers a client of the org", Method: "POST", URL: "/orgs/{org}/clients", Headers: auth, Setup: asTeam("admin"),
			Body: orgClient, ExpectedStatus: 201, ExpectedContent: []string{`"org_id":"{org}"`, `"owner_id":"{user_id}"`, `"client_secret":"`, `"scopes":["analytics:read","users:read"]`},
			ExpectedHeaders: map[string]string{"Cache-Control": "no-store"}},
		{Name: "so does its owner", Method: "POST", URL: "/orgs/{org}/clients", Headers: auth, Setup: asTeam("owner"),
			Body: orgClient, ExpectedStatus: 201, ExpectedContent: []string{`"org_id":"{org}"`}},
		{Name: "an editor may not", Method: "POST", URL: "/orgs/{org}/clients", Headers: auth, Setup: asTeam("editor"),
			Body: orgClient, ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
		{Name: "a non-member gets 404", Method: "POST", URL: "/orgs/{their_org}/clients", Headers: auth, Setup: withOrgClient("admin", orgClient),
			Body: orgClient, ExpectedStatus: 404, ExpectedContent: []string{`"code":"org_not_found"`}},
		{Name: "a platform operator outside the org cannot own its client", Method: "POST", URL: "/orgs/{org}/clients",
			Headers: map[string]string{"Authorization": "Bearer {platform}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				v := asTeam("owner")(t, a)
				v["platform"] = a.user(t, caller.Admin, caller.Free).Access
				return v
			}, Body: orgClient, ExpectedStatus: 403, ExpectedContent: []string{`"code":"membership_required"`}},
		{Name: "an unknown scope is 400", Method: "POST", URL: "/orgs/{org}/clients", Headers: auth, Setup: asTeam("admin"),
			Body: map[string]any{"name": "x", "scopes": []string{"projects:everything"}}, ExpectedStatus: 400, ExpectedContent: []string{`"code":"validation_failed"`}},
		{Name: "a client token cannot register clients", Method: "POST", URL: "/orgs/{org}/clients", Headers: ctoken, Setup: withOrgClient("admin", orgClient),
			Body: orgClient, ExpectedStatus: 403, ExpectedContent: []string{`"code":"user_token_required"`}},
		{Name: "admins list the org's clients, not another org's", Method: "GET", URL: "/orgs/{org}/clients", Headers: auth, Setup: withOrgClient("admin", orgClient),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{client}"`, `"has_more":false`}, NotExpected: []string{"{their_client}", `"client_secret"`}},
		{Name: "viewers may not list them", Method: "GET", URL: "/orgs/{org}/clients", Headers: auth, Setup: withOrgClient("viewer", orgClient),
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_permissions"`}},
		{Name: "another org's client through one's own org is 404", Method: "POST", URL: "/orgs/{org}/clients/{their_client}/rotate-secret", Headers: auth,
			Setup: withOrgClient("admin", orgClient), ExpectedStatus: 404, ExpectedContent: []string{`"code":"client_not_found"`}},
		{Name: "an admin rotates the secret", Method: "POST", URL: "/orgs/{org}/clients/{client}/rotate-secret", Headers: auth,
			Setup: withOrgClient("admin", orgClient), Body: map[string]int{"grace_period": 0}, ExpectedStatus: 200,
			ExpectedContent: []string{`"client_secret":"`}, NotExpected: []string{`"client_secret":"{secret}"`},
			After: func(t testing.TB, a *App, r *Response) {
				old := a.do(t, formRequest("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": basicAuth(r.vals["client_id"], r.vals["secret"])}))
				mustf(t, old.Status == 401, "the old secret after a rotation without grace: %d %s", old.Status, old.Body)
				a.token(t, r.vals["client_id"], field(t, r, "client_secret"), "")
			}},
		{Name: "a malformed client id is 400", Method: "DELETE", URL: "/orgs/{org}/clients/not-a-uuid", Headers: auth,
			Setup: asTeam("admin"), ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_id"`}},
		{Name: "an admin disables it, and its tokens stop", Method: "DELETE", URL: "/orgs/{org}/clients/{client}", Headers: auth,
			Setup: withOrgClient("admin", orgClient), ExpectedStatus: 204,
			After: func(t testing.TB, a *App, r *Response) {
				got := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + r.vals["ctoken"]}})
				mustf(t, got.Status == 401, "a disabled client's token: %d %s", got.Status, got.Body)
			}},
		{Name: "its token acts in its org, for its owner", Method: "GET", URL: "/users/me", Headers: ctoken, Setup: withOrgClient("admin", orgClient),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{admin_id}"`, `"org_id":"{org}"`, `"role":"admin"`}},
		{Name: "its owner demoted in the org: the client loses what the role lost", Method: "GET", URL: "/analytics", Headers: ctoken,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withOrgClient("admin", orgClient)(t, a)
				got := a.do(t, Request{Method: "GET", URL: "/analytics", Headers: map[string]string{"Authorization": "Bearer " + v["ctoken"]}})
				mustf(t, got.Status == 200, "an admin's client reads the report: %d %s", got.Status, got.Body)
				r := a.do(t, Request{Method: "PATCH", URL: "/orgs/" + v["org"] + "/members/" + v["admin_id"], Headers: map[string]string{"Authorization": "Bearer " + v["owner"]},
					Body: map[string]string{"role": "viewer"}})
				mustf(t, r.Status == 200, "demote: %d %s", r.Status, r.Body)
				got = a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + v["ctoken"]}})
				mustf(t, got.Status == 200 && strings.Contains(got.Body, `"role":"viewer"`), "a viewer's client still reads the account: %d %s", got.Status, got.Body)
				return v
			},
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"insufficient_scope"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}
