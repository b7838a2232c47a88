package handlers

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/services"
)

var (
	errInvalidJSON  = apperror.Define(apperror.Invalid, "invalid_json", "Request body is not valid JSON")
	errEmptyBody    = apperror.Define(apperror.Invalid, "invalid_json", "Request body is required")
	errTooLarge     = apperror.Define(apperror.TooLarge, "request_too_large", "Request body too large (limit 1 MiB)")
	errUnsupported  = apperror.Define(apperror.Unsupported, "unsupported_media_type", "Content-Type must be application/json")
	errMalformedID  = apperror.Define(apperror.Invalid, "invalid_id", "Malformed id: expected a UUID")
	errNotAnObject  = apperror.Define(apperror.Invalid, "invalid_json", "Request body must be a JSON object")
	errTrailingData = apperror.Define(apperror.Invalid, "invalid_json", "Request body has data after the JSON value")
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
	// role and tier accept what caller.Roles and caller.Tiers list, so a
	// role or tier added there is accepted everywhere at once.
	_ = v.RegisterValidation("role", func(fl validator.FieldLevel) bool { return caller.Role(fl.Field().String()).Valid() })
	_ = v.RegisterValidation("default_role", func(fl validator.FieldLevel) bool {
		return slices.Contains(caller.DefaultOrgRoles(), caller.Role(fl.Field().String()))
	})
	_ = v.RegisterValidation("tier", func(fl validator.FieldLevel) bool { return caller.Tier(fl.Field().String()).Valid() })
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
	case "role":
		return "must be one of: " + caller.Join(caller.Roles(), ", ")
	case "default_role":
		return "must be one of: " + caller.Join(caller.DefaultOrgRoles(), ", ")
	case "tier":
		return "must be one of: " + caller.Join(caller.Tiers(), ", ")
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
	if details := nulFields(reflect.ValueOf(dst), "", map[string]string{}); len(details) > 0 {
		e := apperror.Validation(details)
		e.Err = errNUL
		return e
	}
	return c.Validate(dst)
}

// errNUL marks a body refused for NUL characters. JSON allows "\u0000" and
// SQLite would store it, but PostgreSQL refuses it in text: one rule for
// every request struct keeps both backends answering 400, never 500.
// (Invalid UTF-8 never gets this far: encoding/json turns it into U+FFFD.)
var errNUL = errors.New("NUL character in a string")

// nulFields names every string in v (structs, pointers, slices, maps)
// that holds a NUL character, by its JSON name.
func nulFields(v reflect.Value, name string, out map[string]string) map[string]string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			nulFields(v.Elem(), name, out)
		}
	case reflect.String:
		if strings.IndexByte(v.String(), 0) >= 0 {
			out[cmp.Or(name, "body")] = "must not contain NUL characters"
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				json, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				nulFields(v.Field(i), cmp.Or(json, f.Name), out)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			nulFields(v.Index(i), name, out)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			nulFields(it.Key(), name, out)
			nulFields(it.Value(), name, out)
		}
	}
	return out
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
func pathID(c *echo.Context) (uuid.UUID, error) { return pathUUID(c, "id") }

// pathUUID is the uuid path parameter name (400 invalid_id when malformed).
func pathUUID(c *echo.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, errMalformedID
	}
	return id, nil
}

// Pagination defaults.
const defaultPerPage = 20

// pageParams reads ?per_page and either ?cursor (the next_cursor of the
// previous answer) or ?page.
func pageParams(c *echo.Context) (services.Page, error) {
	p := services.Page{Number: 1, PerPage: defaultPerPage}
	details := map[string]string{}
	if raw := c.QueryParam("per_page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > services.MaxPerPage {
			details["per_page"] = fmt.Sprintf("must be a whole number from 1 to %d", services.MaxPerPage)
		}
		p.PerPage = n
	}
	rawPage, rawCursor := c.QueryParam("page"), c.QueryParam("cursor")
	switch {
	case rawPage != "" && rawCursor != "":
		details["cursor"] = "give cursor or page, not both"
	case rawCursor != "":
		cur, err := services.ParseCursor(rawCursor)
		if err != nil {
			return p, err
		}
		p.After = cur
	case rawPage != "":
		n, err := strconv.Atoi(rawPage)
		if err != nil || n < 1 {
			details["page"] = "must be a whole number from 1"
		} else if _, ok := details["per_page"]; !ok && n-1 > services.MaxOffset/p.PerPage {
			// Checked by division: (n-1)*per_page could overflow.
			details["page"] = fmt.Sprintf("reaches past row %d: follow next_cursor instead", services.MaxOffset)
		}
		p.Number = n
	}
	if len(details) > 0 {
		return p, apperror.Validation(details)
	}
	return p, nil
}

// Paginated is the shape of every list answer. Follow next_cursor (as
// ?cursor=) for the next page; it is absent on the last one.
type Paginated[T any] struct {
	Data       []T    `json:"data"`
	PerPage    int    `json:"per_page" example:"20"`
	Page       int    `json:"page,omitempty" example:"1"` // only when asked by ?page
	HasMore    bool   `json:"has_more" example:"true"`
	NextCursor string `json:"next_cursor,omitempty" example:"MThmOGE2YjJjMDAwMC4xYjRlMjhiYS0yZmExLTExZDItODgzZi0wMDE2ZDNjY2E0Mjc"`
}

func paginate[M, T any](page services.PageOf[M], p services.Page, convert func(*M) T) Paginated[T] {
	out := Paginated[T]{Data: make([]T, 0, len(page.Items)), PerPage: p.PerPage, HasMore: page.Next != nil}
	if p.After == nil {
		out.Page = p.Number
	}
	if page.Next != nil {
		out.NextCursor = page.Next.String()
	}
	for i := range page.Items {
		out.Data = append(out.Data, convert(&page.Items[i]))
	}
	return out
}

// who returns the caller RequireAuth put on the request.
func who(c *echo.Context) (*caller.Caller, error) {
	cl, ok := caller.From(c.Request().Context())
	if !ok {
		// A route that reads the caller was registered without RequireAuth.
		return nil, apperror.ErrAuthRequired
	}
	return cl, nil
}

// whoAndID returns the caller and the :id of a route about one resource.
func whoAndID(c *echo.Context) (*caller.Caller, uuid.UUID, error) {
	cl, err := who(c)
	if err != nil {
		return nil, uuid.Nil, err
	}
	id, err := pathID(c)
	return cl, id, err
}

func validationError(field, msg string) error {
	return apperror.Validation(map[string]string{field: msg})
}

// The list answers under the names the API docs give them (each
// resource's file names its own, as handlers/projects.go does).
type (
	UserPage   = Paginated[UserResponse]
	APIKeyPage = Paginated[APIKeyResponse]
)
