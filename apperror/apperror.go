// Package apperror holds the one error type that services and middleware
// return. The HTTP layer turns its Kind into a status code in one place
// (handlers.ErrorHandler); nothing else writes error JSON.
package apperror

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds, each mapped to exactly one HTTP status by the HTTP layer.
const (
	Internal        Kind = iota // 500: never shows its cause to a client
	Invalid                     // 400
	Unauthenticated             // 401
	Forbidden                   // 403
	NotFound                    // 404
	Conflict                    // 409
	TooLarge                    // 413
	Unsupported                 // 415
	TooManyRequests             // 429
	Unavailable                 // 503: try again after RetryAfter
	Timeout                     // 504: the request's deadline passed
)

// Error is a domain error with a stable machine code and a human message.
type Error struct {
	Kind    Kind
	Code    string            // stable snake_case identifier clients may switch on
	Message string            // safe to show to a client
	Details map[string]string // field -> problem, for validation errors
	Err     error             // cause, logged but never sent
	// RetryAfter, when set, is sent as the Retry-After header (whole seconds).
	RetryAfter time.Duration
	// OAuth errors are written as RFC 6749 section 5.2 asks:
	// {"error": Code, "error_description": Message}.
	OAuth bool
	// Policies names the rate-limit policies a 429 exceeded (the IETF
	// RateLimit draft's violated-policies).
	Policies []string
}

// NewOAuth builds an error of the OAuth endpoints (RFC 6749 section 5.2),
// recorded in the OAuth catalog (the first definition of a code is shown).
func NewOAuth(kind Kind, code, message string) *Error {
	e := &Error{Kind: kind, Code: code, Message: message, OAuth: true}
	catalog.Lock()
	defer catalog.Unlock()
	if _, ok := catalog.oauth[code]; !ok {
		catalog.oauth[code] = e
	}
	return e
}

// OAuthCatalog returns every OAuth error by code.
func OAuthCatalog() map[string]*Error {
	catalog.Lock()
	defer catalog.Unlock()
	out := make(map[string]*Error, len(catalog.oauth))
	for k, v := range catalog.oauth {
		out[k] = v
	}
	return out
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New builds an Error.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// catalog holds the errors defined at package level with Define: the API
// documentation shows each documented code with its real message.
var catalog = struct {
	sync.Mutex
	byCode map[string]*Error
	oauth  map[string]*Error
}{byCode: map[string]*Error{}, oauth: map[string]*Error{}}

// Define builds an Error for a package-level variable and records it in
// the catalog (the first definition of a code is the one shown).
func Define(kind Kind, code, message string) *Error {
	return register(New(kind, code, message))
}

func register(e *Error) *Error {
	catalog.Lock()
	defer catalog.Unlock()
	if _, ok := catalog.byCode[e.Code]; !ok {
		catalog.byCode[e.Code] = e
	}
	return e
}

// Catalog returns every defined error by code.
func Catalog() map[string]*Error {
	catalog.Lock()
	defer catalog.Unlock()
	out := make(map[string]*Error, len(catalog.byCode))
	for k, v := range catalog.byCode {
		out[k] = v
	}
	return out
}

// WithMessage returns a copy of e with another message (the same code).
func (e *Error) WithMessage(message string) *Error {
	c := *e
	c.Message = message
	return &c
}

// Validation builds a 400 with per-field details.
func Validation(details map[string]string) *Error {
	return &Error{Kind: Invalid, Code: "validation_failed", Message: "Validation failed", Details: details}
}

// Wrap marks err as an internal failure; its text is logged, never sent.
// An *Error already in err's chain (a database outage classified at the
// source, say) is kept as it is: wrapping never hides a domain answer.
func Wrap(err error, what string) *Error {
	if ae, ok := As(err); ok {
		return ae
	}
	return &Error{Kind: Internal, Code: "internal_error", Message: "Internal server error", Err: fmt.Errorf("%s: %w", what, err)}
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Errors shared by several layers.
var (
	ErrAuthRequired = Define(Unauthenticated, "authentication_required", "Authentication required")
	ErrTokenExpired = Define(Unauthenticated, "token_expired", "Token expired")
	ErrInvalidToken = Define(Unauthenticated, "invalid_token", "Invalid token")
	ErrForbidden    = Define(Forbidden, "insufficient_permissions", "Insufficient permissions")
	// ErrValidation stands for every validation error in the catalog (the
	// details differ each time; see Validation).
	ErrValidation = Define(Invalid, "validation_failed", "Validation failed")
	// ErrUnavailable: a dependency (the database) cannot be reached.
	ErrUnavailable = register(&Error{Kind: Unavailable, Code: "service_unavailable",
		Message: "Service temporarily unavailable; try again shortly", RetryAfter: 5 * time.Second})
	// ErrTimeout: the request ran past its deadline.
	ErrTimeout = register(&Error{Kind: Timeout, Code: "request_timeout", Message: "The request took too long; try again"})
	// ErrBusy: too many password hashes waiting; the server sheds load.
	ErrBusy = register(&Error{Kind: Unavailable, Code: "server_busy",
		Message: "The server is busy; try again shortly", RetryAfter: time.Second})
)

// WithPolicies returns a copy of e naming the rate-limit policies it
// exceeded.
func (e *Error) WithPolicies(names ...string) *Error {
	c := *e
	c.Policies = names
	return &c
}

// WithCause returns a copy of e carrying cause (for the log).
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}
