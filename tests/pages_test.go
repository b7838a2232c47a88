package tests

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/caller"
)

// A browser that follows a mail's link asks for HTML first.
var browserAccept = map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

// withVerification registers an address: {token} is its verification link's.
func withVerification(t testing.TB, a *App) map[string]string {
	email := randomName("page-") + "@example.com"
	mustf(t, register(t, a, email).Status == 202, "register")
	return map[string]string{"token": a.lastToken(t, email), "email": email}
}

func formHeaders() map[string]string {
	return map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": browserAccept["Accept"]}
}

func TestLinkPages(t *testing.T) {
	parallelTest(t)
	const fresh = "Brand-New-Pass-7"
	html := map[string]string{"Content-Type": "text/html", "Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store"}
	for _, s := range []Scenario{
		{Name: "a browser verifies its address and sees a page", Method: "GET", URL: "/auth/verify?token={token}", Headers: browserAccept,
			Setup: withVerification, ExpectedStatus: 200, ExpectedContent: []string{"<h1>Email verified</h1>", "log in"}, ExpectedHeaders: html,
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, !strings.Contains(a.Logs.String(), r.vals["token"]), "the token was logged")
				mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": r.vals["email"], "password": testPassword}}).Status == 200, "login after the page")
			}},
		{Name: "an API client still gets JSON", Method: "GET", URL: "/auth/verify?token={token}", Setup: withVerification,
			ExpectedStatus: 200, ExpectedContent: []string{`{"message":"Email verified"}`}, ExpectedHeaders: map[string]string{"Content-Type": "application/json"}},
		{Name: "a used link, in a browser", Method: "GET", URL: "/auth/verify?token={token}", Headers: browserAccept,
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withVerification(t, a)
				mustf(t, a.do(t, Request{Method: "GET", URL: "/auth/verify?token=" + v["token"]}).Status == 200, "first use")
				return v
			}, ExpectedStatus: 400, ExpectedContent: []string{"This link did not work", "already been used", "new verification link"}, ExpectedHeaders: html},
		{Name: "markup in a token is shown as text", Method: "GET", URL: "/auth/verify?token=%22%3E%3Cscript%3Ealert(1)%3C/script%3E", Headers: browserAccept,
			ExpectedStatus: 400, ExpectedContent: []string{"invalid"}, NotExpected: []string{"<script>"}},
		{Name: "the reset link shows a form carrying the token", Method: "GET", URL: "/auth/password/reset?token={reset}", Headers: browserAccept,
			Setup: withReset, ExpectedStatus: 200, ExpectedHeaders: html,
			ExpectedContent: []string{`<form method="post" action="/auth/password/reset">`, `name="token" value="{reset}"`, `type="password" name="password"`}},
		{Name: "an app asks whether a reset link works, without using it", Method: "GET", URL: "/auth/password/reset?token={reset}",
			Setup: withReset, ExpectedStatus: 200, ExpectedContent: []string{`"expires_at"`},
			After: func(t testing.TB, a *App, r *Response) {
				again := a.do(t, Request{Method: "POST", URL: "/auth/password/reset", Body: map[string]string{"token": r.vals["reset"], "password": fresh}})
				mustf(t, again.Status == 200, "the check used the token: %d %s", again.Status, again.Body)
			}},
		{Name: "an unknown reset link in a browser", Method: "GET", URL: "/auth/password/reset?token=nope", Headers: browserAccept,
			ExpectedStatus: 400, ExpectedContent: []string{"This link did not work", "new reset link"}, NotExpected: []string{"<form"}},
		{Name: "an unknown reset link for an app", Method: "GET", URL: "/auth/password/reset?token=nope",
			ExpectedStatus: 400, ExpectedContent: []string{`"code":"reset_token_invalid"`}},
		{Name: "the page's form sets the password", Method: "POST", URL: "/auth/password/reset", Headers: formHeaders(), Setup: withReset,
			Body: "token={reset}&password=" + fresh, ExpectedStatus: 200, ExpectedContent: []string{"<h1>Password changed</h1>"}, ExpectedHeaders: html,
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": r.vals["email"], "password": fresh}}).Status == 200, "login with the new password")
				mustf(t, refresh(t, a, r.vals["refresh"]).Status == 401, "a session survived the reset")
			}},
		{Name: "a weak password on the form: the form again, with why", Method: "POST", URL: "/auth/password/reset", Headers: formHeaders(), Setup: withReset,
			Body: "token={reset}&password=password1", ExpectedStatus: 400, ExpectedContent: []string{"The password was not changed", "password", `name="token" value="{reset}"`}},
		{Name: "a used token on the form", Method: "POST", URL: "/auth/password/reset", Headers: formHeaders(),
			Setup: func(t testing.TB, a *App) map[string]string {
				v := withReset(t, a)
				mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/password/reset", Body: map[string]string{"token": v["reset"], "password": fresh}}).Status == 200, "first use")
				return v
			}, Body: "token={reset}&password=" + fresh, ExpectedStatus: 400, ExpectedContent: []string{"already been used"}, NotExpected: []string{"<form"}},
		{Name: "a form with a NUL", Method: "POST", URL: "/auth/password/reset", Headers: formHeaders(), Setup: withReset,
			Body: "token={reset}&password=Brand%00New-Pass-7", ExpectedStatus: 400, ExpectedContent: []string{"NUL"}},
	} {
		s.Run(t)
	}
}

// With front end pages configured, the mails link there, the token in the
// fragment (never sent to a server), and the front end calls the API.
func TestLinksToTheFrontEnd(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "VERIFY_EMAIL_URL", "https://app.example.com/verify", "RESET_PASSWORD_URL", "https://app.example.com/reset")
	email := randomName("front-") + "@example.com"
	mustf(t, register(t, a, email).Status == 202, "register")
	u := a.user(t, caller.Viewer, caller.Free)
	mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": u.Email}}).Status == 202, "forgot")
	links := map[string]*regexp.Regexp{
		email:   regexp.MustCompile(`https://app\.example\.com/verify#token=([0-9a-f]{64})\s`),
		u.Email: regexp.MustCompile(`https://app\.example\.com/reset#token=([0-9a-f]{64})\s`),
	}
	for _, m := range a.sent(t) {
		re, ok := links[m.To]
		if !ok {
			continue
		}
		found := re.FindStringSubmatch(m.Body)
		mustf(t, found != nil, "mail to %s lacks the front end link: %s", m.To, m.Body)
		mustf(t, !strings.Contains(m.Body, "?token="), "the token is in a query: %s", m.Body)
		if m.To == email {
			r := a.do(t, Request{Method: "GET", URL: "/auth/verify?token=" + found[1]})
			mustf(t, r.Status == 200, "the front end verifies with the fragment's token: %d %s", r.Status, r.Body)
		}
		delete(links, m.To)
	}
	mustf(t, len(links) == 0, "mail missing for %v", links)
	r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
	mustf(t, r.Status == 200, "%d", r.Status)
}
