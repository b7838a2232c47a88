package openapi

import (
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
)

// What swag's Swagger 2.0 cannot say, said in the OpenAPI 3 document so
// that a validating proxy finds no answer outside it and generated clients
// compile (oapi-codegen with its defaults).

// addLoginChallenge: a login of an account with two-factor authentication
// answers 200 with {mfa_required, mfa_token, expires_in} instead of the
// token pair: the 200 is one of the two.
func addLoginChallenge(doc *openapi3.T) {
	doc.Components.Schemas["MFAChallengeResponse"] = openapi3.NewSchemaRef("", &openapi3.Schema{
		Type:        &openapi3.Types{openapi3.TypeObject},
		Description: "The first step of a login with two-factor authentication on: no token yet; finish at POST /auth/mfa/verify.",
		Required:    []string{"mfa_required", "mfa_token", "expires_in"},
		Properties: openapi3.Schemas{
			"mfa_required": openapi3.NewSchemaRef("", &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeBoolean}, Enum: []any{true}, Example: true}),
			"mfa_token": openapi3.NewSchemaRef("", &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeString},
				Description: "for POST /auth/mfa/verify", Example: "5b1c...64 hex characters"}),
			"expires_in": openapi3.NewSchemaRef("", &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeInteger},
				Description: "seconds the mfa_token works", Example: 300}),
		},
	})
	item := doc.Paths.Value("/auth/login")
	if item == nil || item.Post == nil {
		return
	}
	ok := item.Post.Responses.Value("200")
	if ok == nil || ok.Value == nil {
		return
	}
	if mt := ok.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
		mt.Schema = openapi3.NewSchemaRef("", &openapi3.Schema{OneOf: openapi3.SchemaRefs{
			mt.Schema, openapi3.NewSchemaRef("#/components/schemas/MFAChallengeResponse", doc.Components.Schemas["MFAChallengeResponse"].Value),
		}})
	}
}

// addExportMediaType: GET /admin/audit?format=ndjson answers one event per
// line as application/x-ndjson.
func addExportMediaType(doc *openapi3.T) {
	item := doc.Paths.Value("/admin/audit")
	if item == nil || item.Get == nil {
		return
	}
	if ok := item.Get.Responses.Value("200"); ok != nil && ok.Value != nil {
		ok.Value.Content["application/x-ndjson"] = openapi3.NewMediaType().WithSchema(&openapi3.Schema{
			Type:        &openapi3.Types{openapi3.TypeString},
			Description: "with format=ndjson: every matching event, one AuditEventResponse JSON object per line",
		})
	}
}

// addSAMLMetadataType: a SAML connection's SP metadata is XML, not the
// JSON string swag would say.
func addSAMLMetadataType(doc *openapi3.T) {
	item := doc.Paths.Value("/auth/sso/{conn}/metadata")
	if item == nil || item.Get == nil {
		return
	}
	if ok := item.Get.Responses.Value("200"); ok != nil && ok.Value != nil {
		ok.Value.Content = openapi3.Content{"application/samlmetadata+xml": openapi3.NewMediaType().WithSchema(&openapi3.Schema{
			Type: &openapi3.Types{openapi3.TypeString}, Description: "the SP's EntityDescriptor",
		})}
	}
}

// addHeadOperations: every GET also answers HEAD (the same status and
// headers, no body), so the document says so.
func addHeadOperations(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		if item.Get == nil || item.Head != nil {
			continue
		}
		head := *item.Get
		head.OperationID = item.Get.OperationID + "Head"
		head.Summary = "Headers of: " + item.Get.Summary
		head.Description = "As GET, without the body."
		head.Responses = openapi3.NewResponses()
		head.Extensions = map[string]any{}
		for status, r := range item.Get.Responses.Map() {
			if r.Value == nil {
				continue
			}
			bodiless := *r.Value
			bodiless.Content = nil
			head.Responses.Set(status, &openapi3.ResponseRef{Value: &bodiless})
		}
		item.Head = &head
	}
}

// addEnumNames names every enum's values after the schema or parameter
// they belong to (x-enum-varnames): oapi-codegen otherwise names them
// after the value alone, and the actor type "client" became a constant
// Client that clashed with the generated Client type.
func addEnumNames(doc *openapi3.T) {
	var walk func(prefix string, ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool)
	walk = func(prefix string, ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
		if ref == nil || ref.Value == nil || ref.Ref != "" || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Enum) > 0 && s.Type.Is(openapi3.TypeString) {
			names := make([]string, len(s.Enum))
			for i, v := range s.Enum {
				str, _ := v.(string)
				names[i] = prefix + pascal(str)
			}
			if s.Extensions == nil {
				s.Extensions = map[string]any{}
			}
			s.Extensions["x-enum-varnames"] = names
		}
		for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
			walk(prefix+pascal(name), s.Properties[name], seen)
		}
		walk(prefix+"Item", s.Items, seen)
	}
	seen := map[*openapi3.Schema]bool{}
	for _, name := range slices.Sorted(maps.Keys(doc.Components.Schemas)) {
		walk(pascal(name), doc.Components.Schemas[name], seen)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				if p.Value != nil {
					walk(pascal(op.OperationID)+"Params"+pascal(p.Value.Name), p.Value.Schema, seen)
				}
			}
		}
	}
}

// pascal turns "api_key" or "projects:read" into "ApiKey" or "ProjectsRead".
func pascal(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 || unicode.IsDigit(rune(b.String()[0])) {
		return "V" + b.String()
	}
	return b.String()
}
