// Package docs holds the API's documents, generated from the handlers'
// annotations (go generate ./docs): swag's Swagger 2.0 (swagger.json,
// swagger.yaml), and the OpenAPI 3.0 document and JSON Schemas the app
// derives from it (openapi.json, schemas/). The guides sit beside them.
package docs

import _ "embed"

// Swagger is the Swagger 2.0 document swag generates from the annotations.
// It is embedded rather than read through swag's generated docs.go, which
// would link swag's parser (go/types, x/tools) into every binary.
//
//go:embed swagger.json
var Swagger []byte
