package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/browser"
	"github.com/tollgate/tollgate/services"
)

// Session modes of a login: tokens in the answer (the default), or an
// HttpOnly session cookie for a browser app.
const sessionCookie = "cookie"

// CookieSessionResponse is a cookie-mode login's answer: the session is in
// the HttpOnly cookie, never in the body, so no script can read it.
type CookieSessionResponse struct {
	Session string `json:"session" example:"cookie"`
	// CSRFToken goes in the X-CSRF-Token header of every unsafe request
	// (also readable from the CSRF cookie after a reload).
	CSRFToken string `json:"csrf_token" example:"k3J9...43 characters"`
	// ExpiresIn is how long the session cookie lives, in seconds.
	ExpiresIn int64        `json:"expires_in" example:"604800"`
	User      UserResponse `json:"user"`
}

// cookieMode answers logins, refreshes and logouts of cookie sessions.
type cookieMode struct {
	cookies  browser.Cookies
	sessions *services.BrowserSessions
}

// start checks that a cookie login comes from an allowed origin (a
// forged cross-site login would sign the victim in as the attacker).
func (m cookieMode) start(c *echo.Context, mode string) error {
	if mode == sessionCookie && !m.cookies.OriginAllowed(c.Request()) {
		return browser.ErrOrigin
	}
	return nil
}

// answer writes s as the login's answer in mode.
func (m cookieMode) answer(c *echo.Context, s *services.Session, mode string) error {
	if mode != sessionCookie {
		return c.JSON(http.StatusOK, toTokens(s))
	}
	csrf := m.sessions.CSRFToken(s.ID)
	m.cookies.Set(c.Response(), s.RefreshToken, csrf, s.RefreshExpiresIn)
	return c.JSON(http.StatusOK, CookieSessionResponse{Session: sessionCookie, CSRFToken: csrf,
		ExpiresIn: int64(s.RefreshExpiresIn.Seconds()), User: toUser(s.User, s.Standing.OrgID, s.Standing.Role)})
}

// presented is the refresh token a refresh or logout acts on: the body's,
// or the session cookie's once its origin and CSRF token are checked
// (mode says which). Never both.
func (m cookieMode) presented(c *echo.Context, body string) (raw, mode string, err error) {
	req := c.Request()
	ck := m.cookies.Session(req)
	switch {
	case body != "" && ck != "":
		return "", "", browser.ErrAmbiguous
	case body != "":
		return body, "", nil
	case ck == "":
		return "", "", validationError("refresh_token", "is required (or the session cookie)")
	case !m.cookies.OriginAllowed(req):
		return "", "", browser.ErrOrigin
	}
	ok, err := m.sessions.CheckCSRF(req.Context(), ck, req.Header.Get(browser.CSRFHeader))
	if err != nil {
		m.cookies.Clear(c.Response()) // a session that is gone: the cookie is worth nothing
		return "", sessionCookie, err
	}
	if !ok {
		return "", "", browser.ErrCSRF
	}
	return ck, sessionCookie, nil
}
