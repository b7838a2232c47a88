package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/services"
)

var (
	errInvalidJSON  = apperror.New(apperror.Invalid, "invalid_json", "Request body is not valid JSON")
	errEmptyBody    = apperror.New(apperror.Invalid, "invalid_json", "Request body is required")
	errTooLarge     = apperror.New(apperror.TooLarge, "request_too_large", "Request body too large (limit 1 MiB)")
	errUnsupported  = apperror.New(apperror.Unsupported, "unsupported_media_type", "Content-Type must be application/json")
	errMalformedID  = apperror.New(apperror.Invalid, "invalid_id", "Malformed id: expected a UUID")
	errNotAnObject  = apperror.New(apperror.Invalid, "invalid_json", "Request body must be a JSON object")
	errTrailingData = apperror.New(apperror.Invalid, "invalid_json", "Request body has data after the JSON value")
)

// Validator adapts go-playground/validator to Echo, naming fields by their
// JSON names so error details match what the client sent.
type Validator struct{ v *validator.Validate }

// NewValidator builds the validator Echo uses for c.Validate.
func NewValidator() *Validator {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name := strings.SplitN(f.Tag.Get("json"), ",", 2)[0]
		if name == "-" {
			return ""
		}
		return name
	})
	return &Validator{v: v}
}

// Validate checks i's `validate` tags and returns a 400 with details.
func (cv *Validator) Validate(i any) error {
	err := cv.v.Struct(i)
	var verrs validator.ValidationErrors
	if errors.As(err, &verrs) {
		details := map[string]string{}
		for _, fe := range verrs {
			details[fe.Field()] = message(fe)
		}
		return apperror.Validation(details)
	}
	if err != nil {
		return apperror.Wrap(err, "validate")
	}
	return nil
}

func message(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "email":
		return "must be a valid email address"
	case "max":
		return "must be at most " + fe.Param() + " characters"
	case "min":
		return "must be at least " + fe.Param() + " characters"
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	default:
		return "is invalid (" + fe.Tag() + ")"
	}
}

// bind decodes a JSON body into dst strictly (one object, right types) and
// validates it.
func bind(c *echo.Context, dst any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != echo.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
			return errUnsupported
		}
	}
	dec := json.NewDecoder(req.Body)
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if echo.StatusCode(err) == http.StatusRequestEntityTooLarge {
			return errTooLarge
		}
		return errTrailingData
	}
	return c.Validate(dst)
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case echo.StatusCode(err) == http.StatusRequestEntityTooLarge:
		return errTooLarge
	case errors.Is(err, io.EOF):
		return errEmptyBody
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return errNotAnObject
		}
		return apperror.Validation(map[string]string{typeErr.Field: "must be a " + jsonType(typeErr.Type)})
	default:
		return errInvalidJSON
	}
}

func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Slice:
		return "array"
	default:
		return "object"
	}
}

// pathID parses the :id path parameter.
func pathID(c *echo.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return uuid.Nil, errMalformedID
	}
	return id, nil
}

// Pagination defaults.
const defaultPerPage = 20

// pageParams reads ?page and ?per_page.
func pageParams(c *echo.Context) (services.Page, error) {
	p := services.Page{Number: 1, PerPage: defaultPerPage}
	details := map[string]string{}
	if raw := c.QueryParam("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			details["page"] = "must be a whole number from 1"
		}
		p.Number = n
	}
	if raw := c.QueryParam("per_page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > services.MaxPerPage {
			details["per_page"] = fmt.Sprintf("must be a whole number from 1 to %d", services.MaxPerPage)
		}
		p.PerPage = n
	}
	if len(details) > 0 {
		return p, apperror.Validation(details)
	}
	return p, nil
}

// Paginated is the shape of every list answer.
type Paginated[T any] struct {
	Data    []T   `json:"data"`
	Page    int   `json:"page" example:"1"`
	PerPage int   `json:"per_page" example:"20"`
	Total   int64 `json:"total" example:"42"`
}

func paginate[M, T any](items []M, p services.Page, total int64, convert func(*M) T) Paginated[T] {
	out := Paginated[T]{Data: make([]T, 0, len(items)), Page: p.Number, PerPage: p.PerPage, Total: total}
	for i := range items {
		out.Data = append(out.Data, convert(&items[i]))
	}
	return out
}

// claims returns the verified claims RequireAuth put on the request.
func claims(c *echo.Context) (*services.Claims, error) {
	cl, ok := services.ClaimsFrom(c.Request().Context())
	if !ok {
		// A route that reads claims was registered without RequireAuth.
		return nil, apperror.ErrAuthRequired
	}
	return cl, nil
}

func validationError(field, msg string) error {
	return apperror.Validation(map[string]string{field: msg})
}

// The list answers under the names the API docs give them.
type (
	ProjectPage = Paginated[ProjectResponse]
	UserPage    = Paginated[UserResponse]
)
