package tests

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/samlidp"
	"github.com/google/uuid"
	"github.com/oauth2-proxy/mockoidc"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/tollgate/tollgate/models"
)

// Enterprise SSO: an organization's SAML connection against an in-process
// IdP (crewjam/saml's samlidp: users, the login form, signed assertions)
// and its OpenID Connect connection against mockoidc; domains proven by
// TXT records of a fake resolver; and the SAML attacks, each a test.

// fakeDNS answers TXT lookups from a map.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]string
}

func (d *fakeDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.records[name]; ok {
		return r, nil
	}
	return nil, errors.New("no such host")
}

func (d *fakeDNS) set(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records[name] = append(d.records[name], value)
}

// selfSigned is a key and certificate valid around the tests' clock.
func selfSigned(t *testing.T, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	mustf(t, err == nil, "key: %v", err)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: Start.AddDate(-1, 0, 0), NotAfter: Start.AddDate(10, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	mustf(t, err == nil, "certificate: %v", err)
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

// testIdP is a samlidp server on its own loopback port, on the tests' clock.
type testIdP struct {
	URL  string
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newSAMLIdP(t *testing.T) *testIdP {
	t.Helper()
	key, cert := selfSigned(t, "idp.test")
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	s, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	mustf(t, err == nil, "samlidp: %v", err)
	s.IDP.Clock = dsig.NewFakeClockAt(Start)
	handler = s
	return &testIdP{URL: srv.URL, key: key, cert: cert}
}

func (p *testIdP) call(t *testing.T, method, path, body string) string {
	t.Helper()
	req, _ := http.NewRequest(method, p.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	mustf(t, err == nil, "idp %s: %v", path, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	mustf(t, resp.StatusCode < 300, "idp %s %s: %d %s", method, path, resp.StatusCode, b)
	return string(b)
}

func (p *testIdP) addUser(t *testing.T, name, email string, groups ...string) {
	t.Helper()
	g := `[]`
	if len(groups) > 0 {
		g = `["` + strings.Join(groups, `","`) + `"]`
	}
	p.call(t, "PUT", "/users/"+name, `{"name":"`+name+`","email":"`+email+`","password":"pw","common_name":"`+name+` Example","groups":`+g+`}`)
}

var formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// ssoOrg is an organization with a verified domain and a SAML connection
// to idp, whose SP is registered at idp.
type ssoOrg struct {
	*Team
	domain, conn string
	idp          *testIdP
}

func (a *App) ssoOrg(t *testing.T, idp *testIdP, extra map[string]any) *ssoOrg {
	t.Helper()
	o := &ssoOrg{Team: a.team(t, randomSlug()), domain: strings.ToLower(randomName("acme-")) + ".test", idp: idp}
	r := a.do(t, Request{Method: "POST", URL: "/orgs/" + o.ID + "/domains", Headers: bearer(o.Admin), Body: map[string]string{"domain": o.domain}})
	mustf(t, r.Status == http.StatusCreated, "claim domain: %d %s", r.Status, r.Body)
	a.DNS.set(field(t, r, "txt_name"), field(t, r, "txt_value"))
	r = a.do(t, Request{Method: "POST", URL: "/orgs/" + o.ID + "/domains/" + field(t, r, "id") + "/verify", Headers: bearer(o.Admin)})
	mustf(t, r.Status == http.StatusOK && strings.Contains(r.Body, `"verified":true`), "verify domain: %d %s", r.Status, r.Body)
	body := map[string]any{"kind": "saml", "name": "Acme IdP", "metadata_url": idp.URL + "/metadata",
		"role_mapping": map[string]string{"admins": "admin", "engineers": "editor"}}
	for k, v := range extra {
		body[k] = v
	}
	r = a.do(t, Request{Method: "POST", URL: "/orgs/" + o.ID + "/sso/connections", Headers: bearer(o.Admin), Body: body})
	mustf(t, r.Status == http.StatusCreated, "connection: %d %s", r.Status, r.Body)
	o.conn = field(t, r, "id")
	md := a.do(t, Request{Method: "GET", URL: "/auth/sso/" + o.conn + "/metadata"})
	mustf(t, md.Status == http.StatusOK && strings.Contains(md.Body, "EntityDescriptor"), "sp metadata: %d %s", md.Status, md.Body)
	idp.call(t, "PUT", "/services/"+o.conn, md.Body)
	return o
}

// samlFlow is one browser's SAML sign-in: the start (its cookie and
// RelayState), the IdP's login, and the response it would post.
type samlFlow struct {
	cookie, relay, response string
	location                string // the IdP's SSO URL with the AuthnRequest
}

func (a *App) samlStart(t *testing.T, o *ssoOrg) *samlFlow {
	t.Helper()
	r := a.do(t, Request{Method: "GET", URL: "/auth/sso/" + o.conn + "/start?redirect_uri=" + url.QueryEscape(frontEnd)})
	mustf(t, r.Status == http.StatusFound, "start: %d %s", r.Status, r.Body)
	f := &samlFlow{}
	for _, c := range r.Header.Values("Set-Cookie") {
		f.cookie, _, _ = strings.Cut(c, ";")
	}
	loc, _ := url.Parse(r.Header.Get("Location"))
	f.relay = loc.Query().Get("RelayState")
	mustf(t, strings.HasPrefix(loc.String(), o.idp.URL+"/sso?") && f.relay != "" && f.cookie != "", "to the IdP: %s", loc)
	f.location = loc.String()
	return f
}

// login signs user in at the IdP and keeps the response it answers.
func (f *samlFlow) login(t *testing.T, o *ssoOrg, user string) *samlFlow {
	t.Helper()
	resp, err := http.Get(f.location)
	mustf(t, err == nil, "idp sso: %v", err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := hiddenFields(string(page))
	form.Set("user", user)
	form.Set("password", "pw")
	action := formAction.FindStringSubmatch(string(page))
	mustf(t, action != nil, "no login form: %s", page)
	to, _ := url.Parse(o.idp.URL)
	to, _ = to.Parse(html.UnescapeString(action[1]))
	req, _ := http.NewRequest("POST", to.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", o.idp.URL)
	resp, err = http.DefaultClient.Do(req)
	mustf(t, err == nil, "idp login: %v", err)
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	out := hiddenFields(string(page))
	f.response = out.Get("SAMLResponse")
	mustf(t, f.response != "" && out.Get("RelayState") == f.relay, "idp answered no response: %d %s", resp.StatusCode, page)
	return f
}

// post sends the browser's form post to the ACS (as this browser unless
// cookie is ""), with response and relay.
func (a *App) acs(t *testing.T, o *ssoOrg, cookie, relay, response string) *Response {
	t.Helper()
	form := url.Values{"SAMLResponse": {response}, "RelayState": {relay}}
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if cookie != "" {
		h["Cookie"] = cookie
	}
	return a.do(t, Request{Method: "POST", URL: "/auth/sso/" + o.conn + "/acs", Body: form.Encode(), Headers: h})
}

// redirected is where an ACS or callback answer sends the browser: the
// front end's page with code or error.
func redirected(t *testing.T, r *Response) url.Values {
	t.Helper()
	mustf(t, r.Status == http.StatusSeeOther || r.Status == http.StatusFound, "not a redirect: %d %s", r.Status, r.Body)
	u, err := url.Parse(r.Header.Get("Location"))
	mustf(t, err == nil && strings.HasPrefix(u.String(), frontEnd+"?"), "sent to %s", r.Header.Get("Location"))
	return u.Query()
}

// samlSignIn runs a whole sign-in as user and answers the token exchange.
func (a *App) samlSignIn(t *testing.T, o *ssoOrg, user string) *Response {
	t.Helper()
	f := a.samlStart(t, o).login(t, o, user)
	q := redirected(t, a.acs(t, o, f.cookie, f.relay, f.response))
	mustf(t, q.Get("code") != "", "no code: %v", q)
	return a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": q.Get("code")}})
}

func ssoApp(t *testing.T, env ...string) *App {
	_, oidcEnv := provider(t)
	return newApp(t, append(append(oidcEnv, "SSO_ALLOW_PRIVATE_NETWORKS", "true"), env...)...)
}

func TestSAMLSignIn(t *testing.T) {
	parallelTest(t)
	a := ssoApp(t)
	idp := newSAMLIdP(t)
	o := a.ssoOrg(t, idp, nil)
	email := "marta@" + o.domain
	idp.addUser(t, "marta", email, "engineers")

	// Discovery names the connection for an address in the verified domain.
	d := a.do(t, Request{Method: "POST", URL: "/auth/sso/discover", Body: map[string]string{"email": "Marta@" + strings.ToUpper(o.domain)}})
	mustf(t, d.Status == http.StatusOK && field(t, d, "connection_id") == o.conn && strings.Contains(d.Body, `"kind":"saml"`), "discover: %d %s", d.Status, d.Body)
	nd := a.do(t, Request{Method: "POST", URL: "/auth/sso/discover", Body: map[string]string{"email": "someone@elsewhere.test"}})
	mustf(t, nd.Status == http.StatusNotFound && strings.Contains(nd.Body, "sso_not_found"), "no sso: %d %s", nd.Status, nd.Body)

	// Just-in-time: a verified member of the org, with the mapped role and
	// the IdP's name, in a session of that org.
	r := a.samlSignIn(t, o, "marta")
	mustf(t, r.Status == http.StatusOK, "token: %d %s", r.Status, r.Body)
	claims := decodeClaims(t, field(t, r, "access_token"))
	mustf(t, claims["org_id"] == o.ID && claims["org_role"] == "editor", "claims: %v", claims)
	me := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + field(t, r, "access_token")}})
	mustf(t, strings.Contains(me.Body, `"email_verified":true`) && strings.Contains(me.Body, `"name":"marta Example"`), "me: %s", me.Body)

	// The next sign-in is the same person; the role follows the IdP's
	// groups (removed from "engineers": the default, viewer).
	idp.addUser(t, "marta", email)
	r = a.samlSignIn(t, o, "marta")
	claims = decodeClaims(t, field(t, r, "access_token"))
	mustf(t, claims["sub"] == field(t, me, "id") && claims["org_role"] == "viewer", "second sign-in: %v", claims)
	var n int64
	a.DB.Model(&models.Identity{}).Where("provider = ?", "sso:"+o.conn).Count(&n)
	mustf(t, n == 1, "identities: %d", n)

	// With no default role, a person in no mapped group is refused and
	// leaves the org.
	p := a.do(t, Request{Method: "PATCH", URL: "/orgs/" + o.ID + "/sso/connections/" + o.conn, Headers: bearer(o.Admin), Body: map[string]any{"default_role": ""}})
	mustf(t, p.Status == http.StatusOK, "patch: %d %s", p.Status, p.Body)
	f := a.samlStart(t, o).login(t, o, "marta")
	q := redirected(t, a.acs(t, o, f.cookie, f.relay, f.response))
	mustf(t, q.Get("error") == "sso_no_role", "no role: %v", q)
	var m int64
	a.DB.Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", o.ID, field(t, me, "id")).Count(&m)
	mustf(t, m == 0, "still a member")
	// Nor is an account made for a newcomer the org does not admit.
	idp.addUser(t, "nobody", "nobody@"+o.domain)
	f = a.samlStart(t, o).login(t, o, "nobody")
	mustf(t, redirected(t, a.acs(t, o, f.cookie, f.relay, f.response)).Get("error") == "sso_no_role", "newcomer in no group")
	var made int64
	a.DB.Model(&models.User{}).Where("email = ?", "nobody@"+o.domain).Count(&made)
	mustf(t, made == 0, "an account was made for someone with no role")

	// An address outside the org's verified domains is refused: this IdP
	// cannot speak for another organization's people.
	victim := a.user(t, "viewer", "free")
	idp.addUser(t, "mallory", victim.Email, "admins")
	f = a.samlStart(t, o).login(t, o, "mallory")
	q = redirected(t, a.acs(t, o, f.cookie, f.relay, f.response))
	mustf(t, q.Get("error") == "sso_domain_not_verified", "foreign address: %v", q)
	mustf(t, auditCount(t, a, "auth.sso_failed", "") >= 2, "rejections audited")
	for _, action := range []string{"sso.domain_added", "sso.domain_verified", "sso.connection_created", "sso.connection_updated", "identity.linked", "auth.registered"} {
		mustf(t, auditCount(t, a, action, "") >= 1, "%s not audited", action)
	}
	mustf(t, auditCount(t, a, "auth.login", "sso:"+o.conn) >= 2, "SSO sign-ins audited")
}

func TestSSOEnforcement(t *testing.T) {
	parallelTest(t)
	a := ssoApp(t)
	idp := newSAMLIdP(t)
	o := a.ssoOrg(t, idp, nil)
	// A member with a password, in the org's domain.
	u := a.user(t, "viewer", "free")
	u.Email = "member@" + o.domain
	mustf(t, a.DB.Model(&models.User{}).Where("id = ?", u.ID).Update("email", u.Email).Error == nil, "move the member into the domain")
	r := a.do(t, Request{Method: "POST", URL: "/orgs/" + o.ID + "/invitations", Headers: bearer(o.Admin), Body: map[string]string{"email": u.Email, "role": "editor"}})
	mustf(t, r.Status == http.StatusCreated, "invite: %d %s", r.Status, r.Body)
	token := invitationToken(t, a, u.Email)
	mustf(t, a.do(t, Request{Method: "POST", URL: "/invitations/accept", Headers: bearer(u), Body: map[string]string{"token": token}}).Status == http.StatusOK, "accept")

	// Logged in with a password before enforcement.
	before := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	mustf(t, before.Status == http.StatusOK, "login before: %d %s", before.Status, before.Body)
	off := a.do(t, Request{Method: "PATCH", URL: "/orgs/" + o.ID, Headers: bearer(o.Admin), Body: map[string]any{"sso_enforced": true}})
	mustf(t, off.Status == http.StatusOK && strings.Contains(off.Body, `"sso_enforced":true`), "enforce: %d %s", off.Status, off.Body)
	login := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	mustf(t, login.Status == http.StatusForbidden && strings.Contains(login.Body, "sso_required"), "password login of an enforced member: %d %s", login.Status, login.Body)
	// The session begun before it ended with it: no refresh, no access.
	ref := a.do(t, Request{Method: "POST", URL: "/auth/refresh", Body: map[string]string{"refresh_token": field(t, before, "refresh_token")}})
	mustf(t, ref.Status == http.StatusUnauthorized, "refresh of a pre-enforcement session: %d %s", ref.Status, ref.Body)
	old := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer " + field(t, before, "access_token")}})
	mustf(t, old.Status == http.StatusUnauthorized, "access token of a pre-enforcement session: %d %s", old.Status, old.Body)
	// The member still signs in through SSO.
	idp.addUser(t, "member", u.Email)
	mustf(t, a.samlSignIn(t, o, "member").Status == http.StatusOK, "SSO sign-in of the enforced member")
	// Owners keep their password: a broken IdP cannot lock the org out.
	owner := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": o.Owner.Email, "password": o.Owner.Password}})
	mustf(t, owner.Status == http.StatusOK, "owner login: %d %s", owner.Status, owner.Body)

	// Enforcing needs a connection and a verified domain.
	other := a.team(t, randomSlug())
	e := a.do(t, Request{Method: "PATCH", URL: "/orgs/" + other.ID, Headers: bearer(other.Admin), Body: map[string]any{"sso_enforced": true}})
	mustf(t, e.Status == http.StatusConflict && strings.Contains(e.Body, "sso_connection_required"), "enforce without sso: %d %s", e.Status, e.Body)
	mustf(t, auditCount(t, a, "sso.enforcement_changed", "") == 1, "audited")
}

func TestSSOConnectionsAndDomains(t *testing.T) {
	parallelTest(t)
	idp := newSAMLIdP(t)
	var md string
	for _, s := range []Scenario{
		{Name: "a SAML connection from metadata XML", Method: "POST", URL: "/orgs/{org}/sso/connections", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: teamSetup(func(t testing.TB, a *App) map[string]string {
				md = idp.call(t.(*testing.T), "GET", "/metadata", "")
				quoted, _ := json.Marshal(md)
				return map[string]string{"md": string(quoted)}
			}),
			Body: `{"kind":"saml","name":"Okta","metadata_xml":{md}}`, ExpectedStatus: http.StatusCreated,
			ExpectedContent: []string{`"kind":"saml"`, `"idp_entity_id":"` + idp.URL + `/metadata"`, `/acs"`, `"default_role":"viewer"`}, NotExpected: []string{`,"client_secret"`}},
		{Name: "not metadata", Method: "POST", URL: "/orgs/{org}/sso/connections", Headers: map[string]string{"Authorization": "Bearer {admin}"}, Setup: teamSetup(nil),
			Body: `{"kind":"saml","name":"x","metadata_xml":"<nope/>"}`, ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{"sso_connection_invalid"}},
		{Name: "a loopback metadata URL without SSO_ALLOW_PRIVATE_NETWORKS", Method: "POST", URL: "/orgs/{org}/sso/connections", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: teamSetup(nil), Body: `{"kind":"saml","name":"x","metadata_url":"http://127.0.0.1:9/metadata"}`,
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{"sso_connection_invalid", "https"}},
		{Name: "an OIDC issuer on the server's own network (refused at connect time)", Method: "POST", URL: "/orgs/{org}/sso/connections", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: teamSetup(nil), Body: `{"kind":"oidc","name":"x","issuer":"https://127.0.0.1:9","client_id":"c","client_secret":"s"}`,
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{"sso_discovery_failed"},
			// Refused by the dialer's guard, not merely a closed port.
			After: func(t testing.TB, a *App, _ *Response) {
				mustf(t, strings.Contains(a.Logs.String(), "private network"), "not refused by the guard: %s", a.Logs.String())
			}},
		{Name: "owner role cannot be mapped", Method: "POST", URL: "/orgs/{org}/sso/connections", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: teamSetup(nil), Body: `{"kind":"saml","name":"x","metadata_xml":"<x/>","role_mapping":{"root":"owner"}}`,
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{"role_mapping"}},
		{Name: "an editor cannot add one", Method: "POST", URL: "/orgs/{org}/sso/connections", Headers: map[string]string{"Authorization": "Bearer {editor}"},
			Setup: teamSetup(nil), Body: `{"kind":"saml","name":"x","metadata_xml":"<x/>"}`, ExpectedStatus: http.StatusForbidden},
		{Name: "a domain answers its TXT record", Method: "POST", URL: "/orgs/{org}/domains", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: teamSetup(nil), Body: `{"domain":"Example.COM."}`, ExpectedStatus: http.StatusCreated,
			ExpectedContent: []string{`"domain":"example.com"`, `"verified":false`, `"txt_name":"_tollgate-challenge.example.com"`, `"txt_value":"tollgate-domain-verification=`}},
		{Name: "not a domain", Method: "POST", URL: "/orgs/{org}/domains", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: teamSetup(nil), Body: `{"domain":"http://x"}`, ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{"invalid_domain"}},
		{Name: "a domain without its record stays unverified", Method: "POST", URL: "/orgs/{org}/domains/{domain}/verify", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: teamSetup(func(t testing.TB, a *App) map[string]string {
				return map[string]string{"domain": a.claimDomain(t, "unproven.test")}
			}),
			ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{"domain_not_verified"}},
		{Name: "a bad connection id", Method: "GET", URL: "/orgs/{org}/sso/connections/nope", Headers: map[string]string{"Authorization": "Bearer {admin}"},
			Setup: teamSetup(nil), ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{"invalid_id"}},
		{Name: "an unknown connection's metadata", Method: "GET", URL: "/auth/sso/" + uuid.NewString() + "/metadata", ExpectedStatus: http.StatusNotFound,
			ExpectedContent: []string{"sso_connection_not_found"}},
		{Name: "discover with no address", Method: "POST", URL: "/auth/sso/discover", Body: `{}`, ExpectedStatus: http.StatusBadRequest, ExpectedContent: []string{"validation_failed"}},
	} {
		s.Run(t)
	}
}

// teamSetup makes a team ({org}, {admin}, {editor}) and runs more.
func teamSetup(more func(t testing.TB, a *App) map[string]string) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		tm := a.team(t, randomSlug())
		a.currentTeam = tm
		out := map[string]string{"org": tm.ID, "admin": tm.Admin.Access, "editor": tm.Editor.Access}
		if more != nil {
			for k, v := range more(t, a) {
				out[k] = v
			}
		}
		return out
	}
}

func (a *App) claimDomain(t testing.TB, domain string) string {
	r := a.do(t, Request{Method: "POST", URL: "/orgs/" + a.currentTeam.ID + "/domains", Headers: bearer(a.currentTeam.Admin), Body: map[string]string{"domain": domain}})
	mustf(t, r.Status == http.StatusCreated, "claim: %d %s", r.Status, r.Body)
	return field(t, r, "id")
}

func TestDomainVerifiedByOneOrganization(t *testing.T) {
	parallelTest(t)
	a := ssoApp(t)
	first, second := a.team(t, randomSlug()), a.team(t, randomSlug())
	for i, tm := range []*Team{first, second} {
		r := a.do(t, Request{Method: "POST", URL: "/orgs/" + tm.ID + "/domains", Headers: bearer(tm.Admin), Body: map[string]string{"domain": "shared.test"}})
		mustf(t, r.Status == http.StatusCreated, "claim: %d %s", r.Status, r.Body)
		a.DNS.set(field(t, r, "txt_name"), field(t, r, "txt_value"))
		v := a.do(t, Request{Method: "POST", URL: "/orgs/" + tm.ID + "/domains/" + field(t, r, "id") + "/verify", Headers: bearer(tm.Admin)})
		want := []int{http.StatusOK, http.StatusConflict}[i]
		mustf(t, v.Status == want, "verify %d: %d %s", i, v.Status, v.Body)
	}
}

// resign re-signs the response's single assertion with key (after mutate
// changed it) and drops the response's own signature.
func resign(t *testing.T, response string, key *rsa.PrivateKey, cert *x509.Certificate, mutate func(doc *etree.Document, a *etree.Element)) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(response)
	mustf(t, err == nil, "decode response")
	doc := etree.NewDocument()
	mustf(t, doc.ReadFromBytes(raw) == nil, "parse response")
	root := doc.Root()
	for _, s := range root.SelectElements("Signature") {
		root.RemoveChild(s)
	}
	a := root.SelectElement("Assertion")
	mustf(t, a != nil, "no assertion in %s", raw)
	for _, s := range a.SelectElements("Signature") {
		a.RemoveChild(s)
	}
	if mutate != nil {
		mutate(doc, a)
	}
	if key != nil {
		ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key})
		ctx := dsig.NewDefaultSigningContext(ks)
		ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
		signed, err := ctx.SignEnveloped(a)
		mustf(t, err == nil, "sign: %v", err)
		root.InsertChildAt(a.Index(), signed)
		root.RemoveChild(a)
	}
	out, err := doc.WriteToBytes()
	mustf(t, err == nil, "write response")
	return base64.StdEncoding.EncodeToString(out)
}

// signEnvelope signs the response element itself with key.
func signEnvelope(t *testing.T, response string, key *rsa.PrivateKey, cert *x509.Certificate) string {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(response)
	doc := etree.NewDocument()
	mustf(t, doc.ReadFromBytes(raw) == nil, "parse response")
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}))
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signed, err := ctx.SignEnveloped(doc.Root())
	mustf(t, err == nil, "sign: %v", err)
	doc.SetRoot(signed)
	out, _ := doc.WriteToBytes()
	return base64.StdEncoding.EncodeToString(out)
}

func TestSAMLAttacks(t *testing.T) {
	parallelTest(t)
	a := ssoApp(t)
	idp := newSAMLIdP(t)
	o := a.ssoOrg(t, idp, nil)
	idp.addUser(t, "ana", "ana@"+o.domain)
	otherKey, otherCert := selfSigned(t, "attacker")
	setEmail := func(to string) func(*etree.Document, *etree.Element) {
		return func(_ *etree.Document, as *etree.Element) {
			for _, v := range as.FindElements(".//Attribute/AttributeValue") {
				if strings.HasPrefix(v.Text(), "ana@") {
					v.SetText(to)
				}
			}
			as.FindElement(".//Subject/NameID").SetText(to)
		}
	}
	refused := func(name string, change func(f *samlFlow) (cookie, relay, response string)) {
		t.Run(name, func(t *testing.T) {
			f := a.samlStart(t, o).login(t, o, "ana")
			cookie, relay, response := change(f)
			r := a.acs(t, o, cookie, relay, response)
			if r.Status == http.StatusBadRequest {
				mustf(t, strings.Contains(r.Body, "oauth_state_invalid"), "%s: %s", name, r.Body)
				return
			}
			q := redirected(t, r)
			mustf(t, q.Get("code") == "" && q.Get("error") != "", "%s was accepted: %v", name, q)
		})
	}
	same := func(f *samlFlow) (string, string, string) { return f.cookie, f.relay, f.response }
	t.Run("the genuine response is accepted", func(t *testing.T) {
		cookie, relay, response := same(a.samlStart(t, o).login(t, o, "ana"))
		mustf(t, redirected(t, a.acs(t, o, cookie, relay, response)).Get("code") != "", "refused")
	})
	t.Run("re-signed by the IdP's key is accepted (the helper is sound)", func(t *testing.T) {
		f := a.samlStart(t, o).login(t, o, "ana")
		mustf(t, redirected(t, a.acs(t, o, f.cookie, f.relay, resign(t, f.response, idp.key, idp.cert, nil))).Get("code") != "", "refused")
	})
	refused("RelayState missing", func(f *samlFlow) (string, string, string) { return f.cookie, "", f.response })
	refused("from another browser", func(f *samlFlow) (string, string, string) { return "", f.relay, f.response })
	refused("unsigned assertion", func(f *samlFlow) (string, string, string) {
		return f.cookie, f.relay, resign(t, f.response, nil, nil, nil)
	})
	refused("a signed response around an unsigned assertion", func(f *samlFlow) (string, string, string) {
		return f.cookie, f.relay, signEnvelope(t, resign(t, f.response, nil, nil, nil), idp.key, idp.cert)
	})
	refused("signed by another key", func(f *samlFlow) (string, string, string) {
		return f.cookie, f.relay, resign(t, f.response, otherKey, otherCert, setEmail("ana@"+o.domain))
	})
	refused("content changed under the signature", func(f *samlFlow) (string, string, string) {
		raw, _ := base64.StdEncoding.DecodeString(f.response)
		return f.cookie, f.relay, base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(string(raw), "ana@"+o.domain, "boss@"+o.domain)))
	})
	refused("wrapped: signed assertion hidden, a forged one in its place", func(f *samlFlow) (string, string, string) {
		raw, _ := base64.StdEncoding.DecodeString(f.response)
		doc := etree.NewDocument()
		_ = doc.ReadFromBytes(raw)
		root := doc.Root()
		genuine := root.SelectElement("Assertion")
		forged := genuine.Copy()
		setEmail("boss@"+o.domain)(doc, forged)
		forged.CreateAttr("ID", "forged")
		ext := root.CreateElement("samlp:Extensions")
		root.RemoveChild(genuine)
		ext.AddChild(genuine)
		root.AddChild(forged)
		out, _ := doc.WriteToBytes()
		return f.cookie, f.relay, base64.StdEncoding.EncodeToString(out)
	})
	refused("two assertions", func(f *samlFlow) (string, string, string) {
		return f.cookie, f.relay, resign(t, f.response, idp.key, idp.cert, func(_ *etree.Document, as *etree.Element) {
			c := as.Copy()
			c.CreateAttr("ID", "second")
			as.Parent().AddChild(c)
		})
	})
	refused("another audience", func(f *samlFlow) (string, string, string) {
		return f.cookie, f.relay, resign(t, f.response, idp.key, idp.cert, func(_ *etree.Document, as *etree.Element) {
			as.FindElement(".//Conditions/AudienceRestriction/Audience").SetText("https://other-sp.test/metadata")
		})
	})
	refused("another recipient", func(f *samlFlow) (string, string, string) {
		return f.cookie, f.relay, resign(t, f.response, idp.key, idp.cert, func(_ *etree.Document, as *etree.Element) {
			as.FindElement(".//SubjectConfirmationData").CreateAttr("Recipient", "https://other-sp.test/acs")
		})
	})
	refused("expired", func(f *samlFlow) (string, string, string) {
		return f.cookie, f.relay, resign(t, f.response, idp.key, idp.cert, func(_ *etree.Document, as *etree.Element) {
			past := Start.Add(-time.Hour).Format(time.RFC3339)
			as.FindElement(".//Conditions").CreateAttr("NotOnOrAfter", past)
			as.FindElement(".//Conditions").CreateAttr("NotBefore", Start.Add(-2*time.Hour).Format(time.RFC3339))
		})
	})
	refused("not yet valid", func(f *samlFlow) (string, string, string) {
		return f.cookie, f.relay, resign(t, f.response, idp.key, idp.cert, func(_ *etree.Document, as *etree.Element) {
			as.FindElement(".//Conditions").CreateAttr("NotBefore", Start.Add(10*time.Minute).Format(time.RFC3339))
			as.FindElement(".//Conditions").CreateAttr("NotOnOrAfter", Start.Add(20*time.Minute).Format(time.RFC3339))
		})
	})
	refused("in response to another request", func(f *samlFlow) (string, string, string) {
		other := a.samlStart(t, o).login(t, o, "ana")
		return f.cookie, f.relay, other.response
	})
	t.Run("replayed", func(t *testing.T) {
		f := a.samlStart(t, o).login(t, o, "ana")
		mustf(t, redirected(t, a.acs(t, o, f.cookie, f.relay, f.response)).Get("code") != "", "first use refused")
		r := a.acs(t, o, f.cookie, f.relay, f.response)
		mustf(t, r.Status == http.StatusBadRequest && strings.Contains(r.Body, "oauth_state_invalid"), "replay: %d %s", r.Status, r.Body)
	})
	t.Run("unsolicited (IdP-initiated) is off by default", func(t *testing.T) {
		f := a.samlStart(t, o).login(t, o, "ana")
		unsolicited := resign(t, f.response, idp.key, idp.cert, func(doc *etree.Document, as *etree.Element) {
			doc.Root().RemoveAttr("InResponseTo")
			as.FindElement(".//SubjectConfirmationData").RemoveAttr("InResponseTo")
		})
		r := a.acs(t, o, "", "", unsolicited)
		mustf(t, r.Status == http.StatusBadRequest && strings.Contains(r.Body, "oauth_state_invalid"), "unsolicited: %d %s", r.Status, r.Body)
	})
	t.Run("a little late, within SAML_CLOCK_SKEW, is accepted", func(t *testing.T) {
		b := a.sibling(t, "OAUTH_REDIRECT_URIS", frontEnd, "SSO_ALLOW_PRIVATE_NETWORKS", "true")
		f := b.samlStart(t, o).login(t, o, "ana")
		b.Clock.Advance(2 * time.Minute) // past NotOnOrAfter (90 s after issue), within the 90 s skew
		mustf(t, redirected(t, b.acs(t, o, f.cookie, f.relay, f.response)).Get("code") != "", "refused within the skew")
	})
	t.Run("a late assertion (the clock past its window)", func(t *testing.T) {
		b := a.sibling(t, "OAUTH_REDIRECT_URIS", frontEnd, "SSO_ALLOW_PRIVATE_NETWORKS", "true")
		f := b.samlStart(t, o).login(t, o, "ana")
		b.Clock.Advance(5 * time.Minute) // past the assertion's window and the skew, within the sign-in's 10 minutes
		q := redirected(t, b.acs(t, o, f.cookie, f.relay, f.response))
		mustf(t, q.Get("error") == "saml_assertion_invalid", "late: %v", q)
	})
}

// An assertion ID is used once across instances: with IdP-initiated
// sign-in allowed (no request to answer), the same response posted to two
// instances signs in once.
func TestSAMLAssertionSingleUseAcrossInstances(t *testing.T) {
	parallelTest(t)
	a := ssoApp(t)
	idp := newSAMLIdP(t)
	o := a.ssoOrg(t, idp, map[string]any{"allow_idp_initiated": true})
	idp.addUser(t, "ana", "ana@"+o.domain)
	f := a.samlStart(t, o).login(t, o, "ana")
	unsolicited := resign(t, f.response, idp.key, idp.cert, func(doc *etree.Document, as *etree.Element) {
		doc.Root().RemoveAttr("InResponseTo")
		as.FindElement(".//SubjectConfirmationData").RemoveAttr("InResponseTo")
	})
	mustf(t, redirected(t, a.acs(t, o, "", "", unsolicited)).Get("code") != "", "IdP-initiated, allowed: refused")
	b := a.sibling(t, "OAUTH_REDIRECT_URIS", frontEnd, "SSO_ALLOW_PRIVATE_NETWORKS", "true")
	q := redirected(t, b.acs(t, o, "", "", unsolicited))
	mustf(t, q.Get("error") == "saml_assertion_invalid", "replay on another instance: %v", q)
}

func init() {
	crossTenantIDs["/orgs/{id}/sso/connections"] = theirOrg
	crossTenantIDs["/orgs/{id}/domains"] = theirOrg
	crossTenantIDs["/orgs/{id}/sso/connections/{conn}"] = func(t *testing.T, a *App, w *tenants) []map[string]string {
		now := a.Clock.Now()
		c := models.SSOConnection{ID: uuid.New(), OrgID: uuid.MustParse(w.theirs.ID), Kind: "oidc", Name: randomName("their-idp-"), Enabled: true,
			Issuer: "https://their-idp.test", ClientID: "theirs", RoleMapping: "{}", DefaultRole: "viewer", CreatedAt: now, UpdatedAt: now}
		mustf(t, a.DB.Create(&c).Error == nil, "their connection")
		w.forbid(c.Name)
		w.afterwards(func(t *testing.T) {
			var n int64
			mustf(t, a.DB.Model(&models.SSOConnection{}).Where("id = ? AND name = ?", c.ID, c.Name).Count(&n).Error == nil && n == 1, "their connection changed")
		})
		return w.inTheirsAndMine("conn", c.ID.String())
	}
	theirDomain := func(t *testing.T, a *App, w *tenants) []map[string]string {
		d := models.OrgDomain{ID: uuid.New(), OrgID: uuid.MustParse(w.theirs.ID), Domain: strings.ToLower(randomName("their-")) + ".test", Token: randomName("tok-"), CreatedAt: a.Clock.Now()}
		a.DNS.set("_tollgate-challenge."+d.Domain, "tollgate-domain-verification="+d.Token)
		mustf(t, a.DB.Create(&d).Error == nil, "their domain")
		w.forbid(d.Token)
		w.afterwards(func(t *testing.T) {
			var n int64
			mustf(t, a.DB.Model(&models.OrgDomain{}).Where("id = ? AND verified_at IS NULL", d.ID).Count(&n).Error == nil && n == 1, "their domain changed")
		})
		return w.inTheirsAndMine("domain", d.ID.String())
	}
	crossTenantIDs["/orgs/{id}/domains/{domain}"] = theirDomain
	crossTenantIDs["/orgs/{id}/domains/{domain}/verify"] = theirDomain
	crossTenantBodies["POST /orgs/{id}/sso/connections"] = `{"kind":"oidc","name":"intruder","issuer":"https://intruder.test","client_id":"c","client_secret":"s"}`
	crossTenantBodies["PATCH /orgs/{id}/sso/connections/{conn}"] = `{"name":"taken"}`
	crossTenantBodies["POST /orgs/{id}/domains"] = `{"domain":"intruder.test"}`
}

// An organization's OpenID Connect connection (mockoidc as its IdP): the
// groups claim maps to the role, and the session starts in that org.
func TestOIDCConnection(t *testing.T) {
	parallelTest(t)
	m, env := provider(t)
	a := newApp(t, append(env, "SSO_ALLOW_PRIVATE_NETWORKS", "true")...)
	tm := a.team(t, randomSlug())
	domain := strings.ToLower(randomName("corp-")) + ".test"
	r := a.do(t, Request{Method: "POST", URL: "/orgs/" + tm.ID + "/domains", Headers: bearer(tm.Admin), Body: map[string]string{"domain": domain}})
	a.DNS.set(field(t, r, "txt_name"), field(t, r, "txt_value"))
	mustf(t, a.do(t, Request{Method: "POST", URL: "/orgs/" + tm.ID + "/domains/" + field(t, r, "id") + "/verify", Headers: bearer(tm.Admin)}).Status == http.StatusOK, "verify")
	r = a.do(t, Request{Method: "POST", URL: "/orgs/" + tm.ID + "/sso/connections", Headers: bearer(tm.Admin), Body: map[string]any{"kind": "oidc", "name": "Corp",
		"issuer": m.Issuer(), "client_id": m.ClientID, "client_secret": m.ClientSecret, "scopes": []string{"groups"}, "groups_attribute": "groups", "role_mapping": map[string]string{"admins": "admin"}}})
	mustf(t, r.Status == http.StatusCreated && strings.Contains(r.Body, `"has_client_secret":true`) && !strings.Contains(r.Body, m.ClientSecret), "connection: %d %s", r.Status, r.Body)
	conn := field(t, r, "id")
	var stored models.SSOConnection
	mustf(t, a.DB.Take(&stored, "id = ?", conn).Error == nil && stored.ClientSecret != "" && !strings.Contains(stored.ClientSecret, m.ClientSecret), "secret stored encrypted")

	signIn := func(on *App, user *mockoidc.MockUser) url.Values {
		m.QueueUser(user)
		start := on.do(t, Request{Method: "GET", URL: "/auth/sso/" + conn + "/start?redirect_uri=" + url.QueryEscape(frontEnd)})
		mustf(t, start.Status == http.StatusFound, "start: %d %s", start.Status, start.Body)
		cookie, _, _ := strings.Cut(start.Header.Get("Set-Cookie"), ";")
		resp, err := noFollow.Get(start.Header.Get("Location"))
		mustf(t, err == nil && resp.StatusCode == http.StatusFound, "idp: %v", err)
		_ = resp.Body.Close()
		cb, _ := url.Parse(resp.Header.Get("Location"))
		mustf(t, cb.Path == "/auth/sso/"+conn+"/callback", "callback %s", cb)
		return redirected(t, on.do(t, Request{Method: "GET", URL: cb.Path + "?" + cb.RawQuery, Headers: map[string]string{"Cookie": cookie}}))
	}
	q := signIn(a, &mockoidc.MockUser{Subject: randomName("sub-"), Email: "lea@" + domain, Groups: []string{"admins"}})
	tok := a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": q.Get("code")}})
	mustf(t, tok.Status == http.StatusOK, "token: %d %s", tok.Status, tok.Body)
	claims := decodeClaims(t, field(t, tok, "access_token"))
	mustf(t, claims["org_id"] == tm.ID && claims["org_role"] == "admin", "claims: %v", claims)
	b := a.sibling(t, append(env, "SSO_ALLOW_PRIVATE_NETWORKS", "true")...)
	lea := &mockoidc.MockUser{Subject: randomName("sub-"), Email: "lea@" + domain, Groups: []string{"admins"}}
	role := func(on *App) any {
		q := signIn(on, lea)
		tok := on.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": q.Get("code")}})
		mustf(t, tok.Status == http.StatusOK, "token: %d %s (%v)", tok.Status, tok.Body, q)
		return decodeClaims(t, field(t, tok, "access_token"))["org_role"]
	}
	mustf(t, role(b) == "admin", "the second instance, first sign-in")
	// A change made on one instance reaches the other, which had discovered
	// the IdP already: without the groups scope mockoidc sends no groups.
	p := a.do(t, Request{Method: "PATCH", URL: "/orgs/" + tm.ID + "/sso/connections/" + conn, Headers: bearer(tm.Admin), Body: map[string]any{"scopes": []string{}}})
	mustf(t, p.Status == http.StatusOK, "patch: %d %s", p.Status, p.Body)
	mustf(t, role(b) == "viewer", "the second instance kept the old scopes")
	// Not the org's domain: refused, whatever the IdP says.
	q = signIn(a, &mockoidc.MockUser{Subject: randomName("sub-"), Email: "lea@elsewhere.test", EmailVerified: true, Groups: []string{"admins"}})
	mustf(t, q.Get("error") == "sso_domain_not_verified", "foreign address: %v", q)
}

// Over https the SAML sign-in's binding cookie is SameSite=None (the IdP
// answers with a cross-site POST, which a Lax cookie would not follow) and
// Secure; a provider's, which comes back by a redirect, stays Lax.
func TestSSOBindingCookieCrossSite(t *testing.T) {
	parallelTest(t)
	a := ssoApp(t, "APP_BASE_URL", "https://tollgate.test")
	o := a.ssoOrg(t, newSAMLIdP(t), nil)
	sso := a.do(t, Request{Method: "GET", URL: "/auth/sso/" + o.conn + "/start?redirect_uri=" + url.QueryEscape(frontEnd)}).Header.Get("Set-Cookie")
	mustf(t, strings.Contains(sso, "SameSite=None") && strings.Contains(sso, "Secure") && strings.Contains(sso, "HttpOnly") && strings.Contains(sso, "Path=/auth/sso/"), "sso cookie: %s", sso)
	social := a.do(t, Request{Method: "GET", URL: "/auth/oauth/mock/start?redirect_uri=" + url.QueryEscape(frontEnd)}).Header.Get("Set-Cookie")
	mustf(t, strings.Contains(social, "SameSite=Lax") && strings.Contains(social, "Secure"), "provider cookie: %s", social)
}

// The ACS answers its 303 only once the new member, the link and the
// one-time code are stored: a browser that drops the connection as soon as
// it has the answer's headers (over a real socket) still has a working
// code, and a fresh sign-in made the account and the membership.
func TestSAMLAnswerSurvivesHangUp(t *testing.T) {
	parallelTest(t)
	a := ssoApp(t)
	idp := newSAMLIdP(t)
	o := a.ssoOrg(t, idp, nil)
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	for i := range 3 {
		user := fmt.Sprintf("newcomer%d", i)
		idp.addUser(t, user, user+"@"+o.domain, "engineers")
		f := a.samlStart(t, o).login(t, o, user)
		form := url.Values{"SAMLResponse": {f.response}, "RelayState": {f.relay}}.Encode()
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
		mustf(t, err == nil, "dial: %v", err)
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		_, err = fmt.Fprintf(conn, "POST /auth/sso/%s/acs HTTP/1.1\r\nHost: tollgate.test\r\nCookie: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
			o.conn, f.cookie, len(form), form)
		mustf(t, err == nil, "write: %v", err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		mustf(t, err == nil && resp.StatusCode == http.StatusSeeOther, "answer: %v %v", err, resp)
		conn.Close() // at once, with the headers: the body is never read
		loc, _ := url.Parse(resp.Header.Get("Location"))
		code := loc.Query().Get("code")
		mustf(t, code != "", "no code in %s", loc)
		tok := a.do(t, Request{Method: "POST", URL: "/auth/oauth/token", Body: map[string]string{"code": code}})
		mustf(t, tok.Status == http.StatusOK, "round %d: the code after the hang-up: %d %s", i, tok.Status, tok.Body)
		claims := decodeClaims(t, field(t, tok, "access_token"))
		mustf(t, claims["org_id"] == o.ID && claims["org_role"] == "editor", "round %d: claims %v", i, claims)
	}
}
