package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tollgate/tollgate/product"

	"github.com/tollgate/tollgate/openapi"
)

// writeDocs writes the OpenAPI 3 document and the auth JSON Schemas derived
// from the swag output compiled into this binary.
func writeDocs(args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: " + product.ID + " docs DIR")
	}
	dir := args[0]
	doc, err := openapi.Document()
	if err != nil {
		return err
	}
	spec, err := openapi.JSON(doc)
	if err != nil {
		return err
	}
	schemas, err := openapi.JSONSchemas(doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "schemas"), 0o755); err != nil {
		return err
	}
	files := map[string][]byte{"openapi.json": spec}
	for name, b := range schemas {
		files[filepath.Join("schemas", name)] = b
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "wrote %s/openapi.json and %d schemas\n", dir, len(schemas))
	return nil
}
