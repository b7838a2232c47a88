package tests

import (
	"io/fs"
	"reflect"
	"regexp"
	"testing"

	"github.com/tollgate/tollgate/migrations"
)

// Both dialects must carry the same versions, or a database moved between
// them would end up with a different schema.
func TestDialectsHaveTheSameVersions(t *testing.T) {
	name := regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.sql$`)
	versions := func(dialect string) []string {
		fsys, err := migrations.FS(dialect)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			m := name.FindStringSubmatch(e.Name())
			if m == nil {
				t.Fatalf("%s/%s: not named NNNNN_description.sql", dialect, e.Name())
			}
			out = append(out, e.Name())
		}
		return out
	}
	pg, lite := versions(migrations.Postgres), versions(migrations.SQLite)
	if len(pg) == 0 {
		t.Fatal("no migrations found")
	}
	if !reflect.DeepEqual(pg, lite) {
		t.Fatalf("migration files differ between dialects:\npostgres: %v\nsqlite:   %v", pg, lite)
	}
}
