package handlers

import (
	"strings"

	"github.com/labstack/echo/v5"
	"github.com/munnerz/goautoneg"
)

// Media types the API answers in besides its JSON.
const (
	mediaJSON    = "application/json"
	mediaProblem = "application/problem+json"
	mediaHTML    = "text/html"
)

// Negotiate picks the alternative the request's Accept header prefers
// (q=0 refuses a type); the first alternative when it names none of them.
func Negotiate(c *echo.Context, alternatives ...string) string {
	for _, clause := range goautoneg.ParseAccept(c.Request().Header.Get(echo.HeaderAccept)) {
		if clause.Q <= 0 {
			continue
		}
		for _, alt := range alternatives {
			typ, sub, _ := strings.Cut(alt, "/")
			if (clause.Type == typ || clause.Type == "*") && (clause.SubType == sub || clause.SubType == "*") {
				return alt
			}
		}
	}
	return alternatives[0]
}
