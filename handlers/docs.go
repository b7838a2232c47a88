package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"
	echoSwagger "github.com/swaggo/echo-swagger/v2"
	swaggerFiles "github.com/swaggo/files/v2"
)

// Docs serves the OpenAPI 3 document and Swagger UI.
type Docs struct {
	spec []byte
	ui   echo.HandlerFunc
}

// NewDocs serves spec (the OpenAPI 3 document as JSON) and a Swagger UI
// that reads it.
func NewDocs(spec []byte) *Docs {
	return &Docs{
		spec: spec,
		ui: echoSwagger.EchoWrapHandler(
			// Relative, so the UI also works behind a path prefix; only the
			// OpenAPI 3 document, whose bearer scheme asks for the bare token.
			func(c *echoSwagger.Config) { c.URLs = []string{"../openapi.json"} },
			echoSwagger.PersistAuthorization(true),
		),
	}
}

// OpenAPI serves the OpenAPI 3.0 document.
func (h *Docs) OpenAPI(c *echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, h.spec)
}

// swaggerCSP lets Swagger UI's inline bootstrap script and styles run; the
// rest of the API keeps the strict default-src 'none'.
const swaggerCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// SwaggerUI serves Swagger UI's page and assets under /swagger/.
func (h *Docs) SwaggerUI(c *echo.Context) error {
	name := strings.TrimPrefix(c.Request().URL.Path, "/swagger")
	name = strings.TrimPrefix(name, "/")
	switch name {
	case "":
		return c.Redirect(http.StatusMovedPermanently, "/swagger/index.html")
	case "index.html":
	default:
		// Only Swagger UI's own files: not the wrapped handler's doc.json
		// (the Swagger 2.0 document; /openapi.json is the one document), and
		// no plain-text 404s from it, so every error keeps the API's shape.
		f, err := swaggerFiles.FS.Open(name)
		if err != nil {
			return echo.ErrNotFound
		}
		f.Close()
	}
	c.Response().Header().Set("Content-Security-Policy", swaggerCSP)
	return h.ui(c)
}
