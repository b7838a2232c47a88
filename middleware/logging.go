package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v5"
	echomw "github.com/labstack/echo/v5/middleware"

	"github.com/tollgate/tollgate/caller"
)

// RequestLog logs one structured line per request. It logs the path without
// the query string (verification tokens travel there) and never headers or
// bodies, so no password, token or Authorization header reaches the log.
//
// It hands a handler's error to the error handler itself (so the line
// carries the final status) and then reports it handled: passed on, Echo
// would hand the same error to the error handler a second time, which
// finds the answer sent and logs it as a failure after the answer (one
// extra line per 401, 404 or 429).
func RequestLog(log *slog.Logger) echo.MiddlewareFunc {
	logged := requestLogger(log)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		h := logged(next)
		return func(c *echo.Context) error {
			err := h(c)
			if err != nil {
				if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
					return nil
				}
			}
			return err
		}
	}
}

func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
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
				slog.String("method", KnownMethod(v.Method)),
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

// safeRequestID is the shape of an X-Request-Id a client may choose: what
// tracing systems send (UUIDs, hex, W3C-style ids), bounded, nothing that
// could forge a log line or a header.
var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// ClientRequestID keeps a client's X-Request-Id only in a safe shape;
// otherwise the header is dropped and Echo's RequestID makes a new one. It
// must run before RequestID (e.Pre).
func ClientRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		switch {
		case id == "":
		case safeRequestID.MatchString(id) && len(req.Header.Values(echo.HeaderXRequestID)) == 1:
			c.Set(clientRequestIDKey, true)
		default:
			req.Header.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

const clientRequestIDKey = "tollgate.client_request_id"

// RequestInfo puts where the request comes from (client IP, user agent,
// request id, and whether the client chose that id) on its context, for
// the audit log (caller.RequestFrom).
func RequestInfo(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		fromClient, _ := c.Get(clientRequestIDKey).(bool)
		info := caller.Request{IP: c.RealIP(), UserAgent: req.UserAgent(), ID: c.Response().Header().Get(echo.HeaderXRequestID), IDFromClient: fromClient}
		c.SetRequest(req.WithContext(caller.WithRequest(req.Context(), info)))
		return next(c)
	}
}

// KnownMethod is method when it is one of HTTP's own (RFC 9110, and PATCH),
// else "OTHER": a made-up method must not become a metric label value (one
// series each, without bound) or fill the log with the client's text.
func KnownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}
