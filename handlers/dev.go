package handlers

import (
	"io/fs"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/services"
)

// Dev serves the development-only routes (DEV_ROUTES). They are left out of
// the OpenAPI document: a production server does not have them.
type Dev struct {
	users  *services.Users
	outbox *services.Outbox
	// IdP is the development sign-in provider (package devidp).
	IdP     http.Handler
	example http.Handler
}

// NewDev builds the development handlers; example is the example front
// end's files.
func NewDev(users *services.Users, outbox *services.Outbox, idp http.Handler, example fs.FS) *Dev {
	return &Dev{users: users, outbox: outbox, IdP: idp, example: http.StripPrefix("/dev/example", http.FileServerFS(example))}
}

// Example serves the example front end (web/example).
func (h *Dev) Example(c *echo.Context) error {
	c.Response().Header().Set("Content-Security-Policy", PageCSP)
	h.example.ServeHTTP(c.Response(), c.Request())
	return nil
}

// DevSignedIn is where a development sign-in ends: the one-time code,
// and what to do with it.
type DevSignedIn struct {
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	Next  string `json:"next"`
}

// SignedIn shows the one-time code a sign-in with a provider ended with.
func (h *Dev) SignedIn(c *echo.Context) error {
	q := c.Request().URL.Query()
	return c.JSON(http.StatusOK, DevSignedIn{Code: q.Get("code"), Error: q.Get("error"),
		Next: `POST /auth/oauth/token {"code": "<code>"} answers the token pair (within a minute, once)`})
}

// DevUserRequest makes a verified user of any role and tier.
type DevUserRequest struct {
	Email    string `json:"email" validate:"required"`
	Password string `json:"password" validate:"required"`
	Role     string `json:"role"`
	Tier     string `json:"tier"`
}

// CreateUser makes a verified user, as `tollgate user create` does, so a
// Postman run can make its own admin.
func (h *Dev) CreateUser(c *echo.Context) error {
	var req DevUserRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	role, tier := caller.Role(req.Role), caller.Tier(req.Tier)
	if role == "" {
		role = caller.Viewer
	}
	if tier == "" {
		tier = caller.Free
	}
	u, err := h.users.Create(c.Request().Context(), services.NewUser{Email: req.Email, Password: req.Password, Role: role, Tier: tier, EmailVerified: true})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toUserInOrg(u))
}

// DevMail is one message the server queued, with its delivery state.
type DevMail struct {
	To        string    `json:"to"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	Links     []string  `json:"links"`  // every URL in the body, for scripts
	Status    string    `json:"status"` // pending, sent or abandoned
	CreatedAt time.Time `json:"created_at"`
}

var link = regexp.MustCompile(`https?://\S+`)

// Mail lists the last 20 messages queued for ?to=, newest first, straight
// from the outbox (delivered or not).
func (h *Dev) Mail(c *echo.Context) error {
	to := services.NormalizeEmail(c.QueryParam("to"))
	if to == "" {
		return validationError("to", "is required: the address whose mail to show")
	}
	mail, err := h.outbox.To(c.Request().Context(), to, 20)
	if err != nil {
		return err
	}
	out := []DevMail{}
	for _, m := range mail {
		links := link.FindAllString(m.Body, -1)
		if links == nil {
			links = []string{}
		}
		out = append(out, DevMail{To: m.ToAddress, Subject: m.Subject, Body: m.Body, Links: links, Status: m.Status, CreatedAt: m.CreatedAt})
	}
	return c.JSON(http.StatusOK, out)
}
