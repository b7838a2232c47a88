package openapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// AuthSchemas names the exported JSON Schema files after the component
// each one is made from: the payloads a client of the auth endpoints, and a
// machine client (API keys, OAuth client credentials), handles.
var AuthSchemas = map[string]string{
	"register.json":   "RegisterRequest",
	"login.json":      "LoginRequest",
	"token-pair.json": "TokenResponse",
	"refresh.json":    "RefreshRequest",
	"error.json":      "ErrorResponse",
	// Machine clients.
	"api-key-create.json":      "CreateAPIKeyRequest",
	"api-key-secret.json":      "APIKeySecretResponse",
	"api-key.json":             "APIKeyResponse",
	"oauth-client-create.json": "CreateClientRequest",
	"oauth-client-secret.json": "ClientSecretResponse",
	"oauth-token.json":         "ClientTokenResponse",
	"oauth-error.json":         "OAuthErrorResponse",
	"oauth-introspection.json": "Introspection",
}

// SchemaDialect is the JSON Schema version the exported files declare.
const SchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// JSONSchemas exports AuthSchemas from the document's components, file name
// to content. Components they reference are copied under $defs, so each file
// stands alone; OpenAPI's "example" becomes JSON Schema's "examples".
func JSONSchemas(doc *openapi3.T) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, file := range slices.Sorted(maps.Keys(AuthSchemas)) {
		name := AuthSchemas[file]
		root, err := component(doc, name)
		if err != nil {
			return nil, err
		}
		defs := map[string]any{}
		if err := collectRefs(doc, root, defs); err != nil {
			return nil, err
		}
		root["$schema"] = SchemaDialect
		root["title"] = name
		if len(defs) > 0 {
			root["$defs"] = defs
		}
		b, err := indent(root)
		if err != nil {
			return nil, err
		}
		out[file] = b
	}
	return out, nil
}

const componentPrefix = "#/components/schemas/"

// component returns a components/schemas entry as generic JSON.
func component(doc *openapi3.T, name string) (map[string]any, error) {
	ref, ok := doc.Components.Schemas[name]
	if !ok || ref.Value == nil {
		return nil, fmt.Errorf("openapi: no component schema %q", name)
	}
	raw, err := json.Marshal(ref.Value)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}

// collectRefs rewrites component references to $defs in place and copies
// each referenced component (and what it references) into defs.
func collectRefs(doc *openapi3.T, node any, defs map[string]any) error {
	switch n := node.(type) {
	case map[string]any:
		if ex, ok := n["example"]; ok {
			delete(n, "example")
			n["examples"] = []any{ex}
		}
		if ref, ok := n["$ref"].(string); ok && strings.HasPrefix(ref, componentPrefix) {
			name := strings.TrimPrefix(ref, componentPrefix)
			n["$ref"] = "#/$defs/" + name
			if _, seen := defs[name]; !seen {
				sub, err := component(doc, name)
				if err != nil {
					return err
				}
				defs[name] = sub
				if err := collectRefs(doc, sub, defs); err != nil {
					return err
				}
			}
		}
		for k, v := range n {
			if k == "$ref" {
				continue
			}
			if err := collectRefs(doc, v, defs); err != nil {
				return err
			}
		}
	case []any:
		for _, v := range n {
			if err := collectRefs(doc, v, defs); err != nil {
				return err
			}
		}
	}
	return nil
}
