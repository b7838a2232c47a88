package handlers

import (
	"bytes"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
)

// The small pages a person sees after clicking a link in a mail, when no
// front end page is configured (VERIFY_EMAIL_URL, RESET_PASSWORD_URL): what
// happened and what to do next. API clients asking for JSON get JSON.

// PageCSP is the Content-Security-Policy of the pages the server shows
// people (the example app, the verification and reset pages): their own
// scripts, styles and API calls only.
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// page is one of them: a title, what happened, what to do next, and for
// the reset page its form.
type page struct {
	Title, Message, Next string
	Form                 *resetForm
	Error                string // what the form's last submission got wrong
}

type resetForm struct{ Token string }

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}}</title></head>
<body>
<main>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Error}}<p role="alert"><strong>{{.Error}}</strong></p>{{end}}
{{with .Form}}<form method="post" action="/auth/password/reset">
<input type="hidden" name="token" value="{{.Token}}">
<p><label>New password<br><input type="password" name="password" autocomplete="new-password" required minlength="10" maxlength="72"></label></p>
<p><label><input type="checkbox" name="revoke_api_keys" value="true"> Also revoke every API key and OAuth client of the account</label></p>
<p><button type="submit">Set the new password</button></p>
</form>{{end}}
{{if .Next}}<p>{{.Next}}</p>{{end}}
</main>
</body>
</html>
`))

// wantsPage reports whether the request prefers HTML to JSON (a browser
// that followed a link).
func wantsPage(c *echo.Context) bool {
	return Negotiate(c, mediaJSON, mediaHTML) == mediaHTML
}

// showPage writes p with status, under the pages' CSP, never cached (it
// may carry a token).
func showPage(c *echo.Context, status int, p page) error {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, p); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", PageCSP)
	h.Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, b.Bytes())
}

// failedPage shows err as a page: the status and message the JSON answer
// would carry (ErrorHandler's mapping), and next.
func failedPage(c *echo.Context, title string, err error, next string, form *resetForm) error {
	status, body := describe(err)
	if status >= http.StatusInternalServerError {
		return err // the error handler logs it and answers as always
	}
	p := page{Title: title, Next: next, Form: form}
	if form != nil {
		p.Error = body.Error
		for field, problem := range body.Details {
			p.Error += ": " + field + " " + problem
		}
	} else {
		p.Message = body.Error + "."
	}
	return showPage(c, status, p)
}

// isForm reports whether the request body is an HTML form's.
func isForm(c *echo.Context) bool {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	return mt == echo.MIMEApplicationForm
}

// resetFromPage is the reset page's form posted: the same reset, answered
// with a page.
func (h *Auth) resetFromPage(c *echo.Context) error {
	var req ResetRequest
	form, err := formValues(c)
	if err == nil {
		req = ResetRequest{Token: form.Get("token"), Password: form.Get("password"), RevokeAPIKeys: form.Get("revoke_api_keys") == "true"}
		err = c.Validate(&req)
	}
	if err == nil && (strings.ContainsRune(req.Token, 0) || strings.ContainsRune(req.Password, 0)) {
		err = validationError("password", "must not contain NUL characters")
	}
	if err == nil {
		err = h.passwords.Reset(c.Request().Context(), req.Token, req.Password, req.RevokeAPIKeys)
	}
	if err != nil {
		var again *resetForm
		if ae, ok := apperror.As(err); ok && ae.Kind == apperror.Invalid && ae.Code == apperror.ErrValidation.Code && req.Token != "" {
			again = &resetForm{Token: req.Token} // a password the policy refuses: try another
		}
		return failedPage(c, "The password was not changed", err, "", again)
	}
	return showPage(c, http.StatusOK, page{Title: "Password changed", Message: "Every session of the account was signed out.",
		Next: "Log in with the new password."})
}

// formValues parses an urlencoded body, refusing repeated fields.
func formValues(c *echo.Context) (url.Values, error) {
	if err := c.Request().ParseForm(); err != nil {
		return nil, validationError("body", "is not a valid form")
	}
	return c.Request().PostForm, nil
}
