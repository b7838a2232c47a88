package middleware

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// HeadAsGet routes a HEAD request to the GET route of its path (RFC 9110:
// HEAD is GET without the body). The request is copied, not changed in
// place: net/http holds the original and, seeing HEAD there, discards the
// body the handler writes while keeping its headers (Content-Length too).
// Register it with Echo's Pre, before routing.
func HeadAsGet(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if r := c.Request(); r.Method == http.MethodHead {
			get := *r
			get.Method = http.MethodGet
			c.SetRequest(&get)
		}
		return next(c)
	}
}
