package middleware

import (
	"context"
	"log/slog"

	"github.com/labstack/echo/v5"
	echomw "github.com/labstack/echo/v5/middleware"

	"github.com/tollgate/tollgate/caller"
)

// RequestLog logs one structured line per request. It logs the path without
// the query string (verification tokens travel there) and never headers or
// bodies, so no password, token or Authorization header reaches the log.
func RequestLog(log *slog.Logger) echo.MiddlewareFunc {
	return echomw.RequestLoggerWithConfig(echomw.RequestLoggerConfig{
		HandleError:  true,
		LogLatency:   true,
		LogMethod:    true,
		LogURIPath:   true,
		LogStatus:    true,
		LogRequestID: true,
		LogRemoteIP:  true,
		LogValuesFunc: func(c *echo.Context, v echomw.RequestLoggerValues) error {
			attrs := []slog.Attr{
				slog.String("request_id", v.RequestID),
				slog.String("method", v.Method),
				slog.String("path", v.URIPath),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
				slog.String("ip", v.RemoteIP),
			}
			if who, ok := caller.From(c.Request().Context()); ok {
				attrs = append(attrs, slog.String("user_id", who.ID.String()))
			}
			level := slog.LevelInfo
			switch {
			case v.Status == 503 || v.Status == 504:
				// Outages and timeouts: the fault itself is logged once
				// where it is detected; each refused request is routine.
				level = slog.LevelWarn
			case v.Status >= 500:
				level = slog.LevelError
			}
			log.LogAttrs(context.Background(), level, "request", attrs...)
			return nil
		},
	})
}

// RequestInfo puts where the request comes from (client IP, user agent,
// request id) on its context, for the audit log (caller.RequestFrom).
func RequestInfo(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		info := caller.Request{IP: c.RealIP(), UserAgent: req.UserAgent(), ID: c.Response().Header().Get(echo.HeaderXRequestID)}
		c.SetRequest(req.WithContext(caller.WithRequest(req.Context(), info)))
		return next(c)
	}
}
