package openapi

import (
	"github.com/getkin/kin-openapi/openapi3"
)

// pagePaths answer a small HTML page to a browser (Accept preferring
// text/html) beside their JSON (handlers/pages.go).
var pagePaths = []string{"/auth/verify", "/auth/password/reset"}

// addPages documents the pages: text/html beside JSON on the links' GET
// answers, and the reset form's urlencoded post, which a page answers.
func addPages(doc *openapi3.T) {
	html := openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema().WithFormat("html"))
	for _, path := range pagePaths {
		item := doc.Paths.Value(path)
		if item == nil {
			continue
		}
		ops := []*openapi3.Operation{item.Get}
		if path == "/auth/password/reset" && item.Post != nil {
			ops = append(ops, item.Post)
			if body := item.Post.RequestBody; body != nil && body.Value != nil {
				if mt := body.Value.Content.Get("application/json"); mt != nil {
					body.Value.Content["application/x-www-form-urlencoded"] = openapi3.NewMediaType().WithSchemaRef(mt.Schema)
				}
			}
		}
		for _, op := range ops {
			if op == nil {
				continue
			}
			for _, status := range []string{"200", "400"} {
				if r := op.Responses.Value(status); r != nil && r.Value != nil && r.Value.Content != nil {
					r.Value.Content["text/html"] = html
				}
			}
		}
	}
}
