// Package handlers parses and validates requests, calls the services and
// shapes their answers. ErrorHandler is the one place errors become HTTP.
package handlers

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/product"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
)

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error   string            `json:"error" example:"Validation failed"`
	Code    string            `json:"code" example:"validation_failed"`
	Details map[string]string `json:"details,omitempty"`
}

var statusByKind = map[apperror.Kind]int{
	apperror.Internal:        http.StatusInternalServerError,
	apperror.Invalid:         http.StatusBadRequest,
	apperror.Unauthenticated: http.StatusUnauthorized,
	apperror.Forbidden:       http.StatusForbidden,
	apperror.NotFound:        http.StatusNotFound,
	apperror.Conflict:        http.StatusConflict,
	apperror.TooLarge:        http.StatusRequestEntityTooLarge,
	apperror.Unsupported:     http.StatusUnsupportedMediaType,
	apperror.TooManyRequests: http.StatusTooManyRequests,
	apperror.Unavailable:     http.StatusServiceUnavailable,
	apperror.Timeout:         http.StatusGatewayTimeout,
}

// Errors Echo itself raises (routing, body limit), in our shape.
var echoErrors = map[int]*apperror.Error{
	http.StatusBadRequest:            apperror.Define(apperror.Invalid, "bad_request", "Bad request"),
	http.StatusUnauthorized:          apperror.ErrAuthRequired,
	http.StatusForbidden:             apperror.ErrForbidden,
	http.StatusNotFound:              apperror.Define(apperror.NotFound, "not_found", "Not found"),
	http.StatusMethodNotAllowed:      {Kind: apperror.Invalid, Code: "method_not_allowed", Message: "Method not allowed"},
	http.StatusRequestEntityTooLarge: apperror.Define(apperror.TooLarge, "request_too_large", "Request body too large (limit 1 MiB)"),
	http.StatusUnsupportedMediaType:  apperror.Define(apperror.Unsupported, "unsupported_media_type", "Content-Type must be application/json"),
	http.StatusTooManyRequests:       apperror.Define(apperror.TooManyRequests, "rate_limited", "Too many requests"),
}

// Classifier recognises infrastructure faults (an unreachable or slow
// database) inside an otherwise internal error and returns the answer to
// give instead of 500, or nil. It logs outages itself, once each.
type Classifier func(error) *apperror.Error

// ErrorHandler writes err as JSON. Internal errors are logged with the
// request id and answered with a generic message: no stack, SQL or cause
// ever reaches the client. Faults that classify recognises answer 503/504
// (or 400 for text the database refuses) with Retry-After where it helps.
func ErrorHandler(log *slog.Logger, classify Classifier) echo.HTTPErrorHandler {
	return func(c *echo.Context, err error) {
		if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
			// The answer is out (a streamed export, work done after a 202):
			// the error can only be logged.
			log.Warn("request failed after its answer was sent", "request_id", RequestID(c), "method", c.Request().Method,
				"path", c.Request().URL.Path, "error", err)
			return
		}
		if ae, ok := apperror.As(err); (!ok || ae.Kind == apperror.Internal) && classify != nil {
			if fault := classify(err); fault != nil {
				err = fault
			}
		}
		status, body := describe(err)
		if status == http.StatusInternalServerError {
			log.Error("request failed", "request_id", RequestID(c), "method", c.Request().Method,
				"path", c.Request().URL.Path, "error", err)
		}
		if ae, ok := apperror.As(err); ok && ae.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.RetryAfter.Seconds()))))
		}
		var out any = body
		if ae, ok := apperror.As(err); ok && ae.OAuth {
			// RFC 6749 section 5.2: its own shape (never cached: the OAuth
			// routes are mw.NoStore), and a Basic
			// challenge when the client failed to authenticate.
			out = OAuthErrorResponse{Error: ae.Code, ErrorDescription: ae.Message}
			if status == http.StatusUnauthorized {
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="`+product.ID+`"`)
			}
		} else if status == http.StatusUnauthorized {
			c.Response().Header().Set("WWW-Authenticate", challenge(c, body))
		}
		if status == http.StatusTooManyRequests && Negotiate(c, mediaJSON, mediaProblem) == mediaProblem {
			ae, _ := apperror.As(err)
			out = quotaProblem(body, ae)
			c.Response().Header().Set(echo.HeaderContentType, mediaProblem)
		}
		var werr error
		if c.Request().Method == http.MethodHead {
			werr = c.NoContent(status)
		} else {
			werr = c.JSON(status, out)
		}
		if werr != nil {
			log.Debug("write error response", "error", werr)
		}
	}
}

// QuotaProblem is a 429 as the IETF RateLimit draft's problem type
// (RFC 9457), for clients that ask for application/problem+json.
type QuotaProblem struct {
	Type             string   `json:"type" example:"https://iana.org/assignments/http-problem-types#quota-exceeded"`
	Title            string   `json:"title" example:"Request cannot be satisfied as assigned quota has been exceeded"`
	Status           int      `json:"status" example:"429"`
	Detail           string   `json:"detail" example:"Too many requests"`
	Code             string   `json:"code" example:"rate_limited"`
	ViolatedPolicies []string `json:"violated-policies" example:"user"`
}

func quotaProblem(body ErrorResponse, ae *apperror.Error) QuotaProblem {
	p := QuotaProblem{
		Type:   "https://iana.org/assignments/http-problem-types#quota-exceeded",
		Title:  "Request cannot be satisfied as assigned quota has been exceeded",
		Status: http.StatusTooManyRequests, Detail: body.Error, Code: body.Code, ViolatedPolicies: []string{},
	}
	if ae != nil && ae.Policies != nil {
		p.ViolatedPolicies = ae.Policies
	}
	return p
}

func describe(err error) (int, ErrorResponse) {
	if ae, ok := apperror.As(err); ok {
		status := statusByKind[ae.Kind]
		if ae.Kind == apperror.Internal {
			return status, ErrorResponse{Error: "Internal server error", Code: "internal_error"}
		}
		return status, ErrorResponse{Error: ae.Message, Code: ae.Code, Details: ae.Details}
	}
	if code := echo.StatusCode(err); code >= 400 && code < 500 {
		if ae, ok := echoErrors[code]; ok {
			return code, ErrorResponse{Error: ae.Message, Code: ae.Code}
		}
		return code, ErrorResponse{Error: http.StatusText(code), Code: strings.ReplaceAll(strings.ToLower(http.StatusText(code)), " ", "_")}
	}
	return http.StatusInternalServerError, ErrorResponse{Error: "Internal server error", Code: "internal_error"}
}

// challenge builds the RFC 6750 WWW-Authenticate value; error="invalid_token"
// only when the client actually sent a token.
func challenge(c *echo.Context, body ErrorResponse) string {
	h := `Bearer realm="` + product.ID + `"`
	if auth := c.Request().Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		h += `, error="invalid_token", error_description="` + body.Error + `"`
	}
	return h
}

// RequestID is the id Echo's RequestID middleware put on the response.
func RequestID(c *echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}
