package tests

import (
	"strings"
	"testing"
)

// The development-only routes let a script (the Postman collection) make
// what it needs from the base URL alone; with DEV_ROUTES off they do not
// exist at all.
// local is a client on this machine: the only one development routes answer.
const local = "127.0.0.1:4321"

func TestDevRoutes(t *testing.T) {
	parallelTest(t)
	const pw = "Correct-Horse-9"
	scenarios := []Scenario{
		{Name: "makes a verified admin who can log in", Method: "POST", URL: "/dev/users", RemoteAddr: local,
			Body:           map[string]any{"email": "Boss@Example.com", "password": pw, "role": "admin", "tier": "paid"},
			ExpectedStatus: 201, ExpectedContent: []string{`"email":"boss@example.com"`, `"role":"admin"`, `"tier":"paid"`, `"email_verified":true`},
			NotExpected: []string{pw, "password"},
			After: func(t testing.TB, a *App, r *Response) {
				login := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: `{"email":"boss@example.com","password":"` + pw + `"}`})
				mustf(t, login.Status == 200, "login %d %s", login.Status, login.Body)
				admins := a.do(t, Request{Method: "GET", URL: "/admin/users", Headers: map[string]string{"Authorization": "Bearer " + field(t, login, "access_token")}})
				mustf(t, admins.Status == 200, "admin route %d", admins.Status)
			}},
		{Name: "defaults to a free viewer", Method: "POST", URL: "/dev/users", RemoteAddr: local, Body: map[string]any{"email": "v@example.com", "password": pw},
			ExpectedStatus: 201, ExpectedContent: []string{`"role":"viewer"`, `"tier":"free"`}},
		{Name: "applies the account rules", Method: "POST", URL: "/dev/users", RemoteAddr: local,
			Body:           map[string]any{"email": "nope", "password": "short", "role": "root"},
			ExpectedStatus: 400, ExpectedContent: []string{`"code":"validation_failed"`, `"email":`, `"password":`, `"role":`}},
		{Name: "needs an email and a password", Method: "POST", URL: "/dev/users", RemoteAddr: local, Body: map[string]any{},
			ExpectedStatus: 400, ExpectedContent: []string{`"email":"is required"`, `"password":"is required"`}},
		{Name: "shows the verification mail with its link", Method: "GET", URL: "/dev/mail?to=NEW@example.com", RemoteAddr: local,
			Setup: func(t testing.TB, a *App) map[string]string {
				r := a.do(t, Request{Method: "POST", URL: "/auth/register", Body: `{"email":"new@example.com","password":"` + pw + `"}`})
				mustf(t, r.Status == 202, "register %d %s", r.Status, r.Body)
				return nil
			},
			ExpectedStatus: 200, ExpectedContent: []string{`"to":"new@example.com"`, `"subject":"Verify your email address"`, `"links":["http://tollgate.test/auth/verify?token=`, `"status":"pending"`},
			After: func(t testing.TB, a *App, r *Response) {
				link := r.Body[strings.Index(r.Body, `"links":["`)+len(`"links":["`):]
				link = strings.TrimPrefix(link[:strings.IndexByte(link, '"')], "http://tollgate.test")
				v := a.do(t, Request{Method: "GET", URL: link})
				mustf(t, v.Status == 200, "following the link: %d %s", v.Status, v.Body)
			}},
		{Name: "mail of nobody is an empty list", Method: "GET", URL: "/dev/mail?to=nobody@example.com", RemoteAddr: local,
			ExpectedStatus: 200, ExpectedContent: []string{`[]`}},
		{Name: "mail needs an address", Method: "GET", URL: "/dev/mail", RemoteAddr: local, ExpectedStatus: 400, ExpectedContent: []string{`"to":"is required`}},
		{Name: "off: no such route", Method: "POST", URL: "/dev/users", RemoteAddr: local, Env: []string{"DEV_ROUTES", "false"},
			Body: map[string]any{"email": "boss@example.com", "password": pw, "role": "admin"}, ExpectedStatus: 404},
		{Name: "off: no mail", Method: "GET", URL: "/dev/mail?to=a@example.com", RemoteAddr: local, Env: []string{"DEV_ROUTES", "false"}, ExpectedStatus: 404},
		{Name: "no admins for a client on the network", Method: "POST", URL: "/dev/users", RemoteAddr: "192.0.2.7:1234",
			Body: map[string]any{"email": "boss@example.com", "password": pw, "role": "admin"}, ExpectedStatus: 403, ExpectedContent: []string{`"code":"loopback_only"`}},
		{Name: "no mail for a client on the network", Method: "GET", URL: "/dev/mail?to=a@example.com", RemoteAddr: "[2001:db8::1]:1234",
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"loopback_only"`}},
		{Name: "nor through a proxy on this machine", Method: "GET", URL: "/dev/mail?to=a@example.com", RemoteAddr: local,
			Env: []string{"TRUSTED_PROXIES", "127.0.0.1/32"}, Headers: map[string]string{"X-Forwarded-For": "198.51.100.4"},
			ExpectedStatus: 403, ExpectedContent: []string{`"code":"loopback_only"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}
