package middleware

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/services"
)

// IPDecider says whether a client address is blocked, and by what.
type IPDecider interface {
	Blocked(ip string) (bool, string)
}

// IPFilter refuses blocked client addresses (403 ip_blocked) before any
// other work, except on the probes orchestrators call (exempt).
func IPFilter(rules IPDecider, exempt ...string) echo.MiddlewareFunc {
	skip := map[string]bool{}
	for _, p := range exempt {
		skip[p] = true
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			if !skip[c.Request().URL.Path] {
				if blocked, _ := rules.Blocked(c.RealIP()); blocked {
					return services.ErrIPBlocked
				}
			}
			return next(c)
		}
	}
}
