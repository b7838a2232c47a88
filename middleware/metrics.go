package middleware

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/metrics"
)

// LoginOutcomes counts every login attempt by how it ended, whichever
// layer ended it (a limit, the hash queue, the password check). It goes
// outermost on the login route.
func LoginOutcomes(m *metrics.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			err := next(c)
			m.LoginAttempts.WithLabelValues(loginOutcome(err)).Inc()
			return err
		}
	}
}

func loginOutcome(err error) string {
	if err == nil {
		return metrics.LoginSuccess
	}
	ae, ok := apperror.As(err)
	if !ok {
		if code := echo.StatusCode(err); code >= 400 && code < 500 {
			return metrics.LoginBadRequest
		}
		return metrics.LoginServerError
	}
	switch ae.Kind {
	case apperror.Unauthenticated:
		return metrics.LoginFailed
	case apperror.Forbidden:
		return metrics.LoginUnverified
	case apperror.TooManyRequests:
		return metrics.LoginLimited
	case apperror.Invalid, apperror.TooLarge, apperror.Unsupported:
		return metrics.LoginBadRequest
	}
	if ae.Code == apperror.ErrBusy.Code {
		return metrics.LoginBusy
	}
	return metrics.LoginServerError
}
