package handlers

import (
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v5"
	swaggerFiles "github.com/swaggo/files/v2"
)

// Docs serves the OpenAPI 3 document and Swagger UI.
type Docs struct {
	spec []byte
}

// NewDocs serves spec (the OpenAPI 3 document as JSON) and a Swagger UI
// that reads it.
func NewDocs(spec []byte) *Docs { return &Docs{spec: spec} }

// OpenAPI serves the OpenAPI 3.0 document.
func (h *Docs) OpenAPI(c *echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, h.spec)
}

// swaggerCSP runs Swagger UI with no inline script (its page loads only
// files from here; the start-up script below is a file too); React sets
// inline styles, so styles may be inline. The rest of the API keeps the
// strict default-src 'none'.
const swaggerCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// swaggerInit starts Swagger UI on the one OpenAPI document (relative, so
// it also works behind a path prefix). Tokens typed into Authorize live in
// the page only: persistAuthorization would keep them in localStorage,
// where any script on this origin could read them.
const swaggerInit = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "../openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
`

// SwaggerUI serves Swagger UI's page and assets under /swagger/.
func (h *Docs) SwaggerUI(c *echo.Context) error {
	name := strings.TrimPrefix(c.Request().URL.Path, "/swagger")
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		return c.Redirect(http.StatusMovedPermanently, "/swagger/index.html")
	}
	c.Response().Header().Set("Content-Security-Policy", swaggerCSP)
	if name == "swagger-initializer.js" {
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", []byte(swaggerInit))
	}
	// Only Swagger UI's own files, and no plain-text 404s, so every error
	// keeps the API's shape.
	body, err := fs.ReadFile(swaggerFiles.FS, name)
	if err != nil {
		return echo.ErrNotFound
	}
	kind := mime.TypeByExtension(path.Ext(name))
	if kind == "" {
		kind = http.DetectContentType(body)
	}
	return c.Blob(http.StatusOK, kind, body)
}
