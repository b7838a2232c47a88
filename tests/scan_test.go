package tests

import (
	"reflect"
	"sync"
	"testing"

	"gorm.io/gorm/schema"

	"github.com/tollgate/tollgate/models"
)

// scannable lists every model that implements scan.Scannable (the
// fast scan path): add yours here.
var scannable = []interface {
	Columns() []string
	Fields() []any
}{
	&models.User{},
	&models.Project{},
}

// A Scannable model's Columns must be exactly its GORM columns, in field
// order, and Fields must point at those fields: a column added to the struct
// but not to Columns would silently be left zero in every list.
func TestScannableModelsMatchTheirSchema(t *testing.T) {
	for _, m := range scannable {
		sch, err := schema.Parse(m, &sync.Map{}, schema.NamingStrategy{})
		if err != nil {
			t.Fatal(err)
		}
		if cols := m.Columns(); !reflect.DeepEqual(cols, sch.DBNames) {
			t.Errorf("%s: Columns() = %v, the schema has %v", sch.Name, cols, sch.DBNames)
			continue
		}
		v := reflect.ValueOf(m).Elem()
		fields := m.Fields()
		if len(fields) != len(sch.DBNames) {
			t.Errorf("%s: %d Fields for %d columns", sch.Name, len(fields), len(sch.DBNames))
			continue
		}
		for i, col := range sch.DBNames {
			want := v.FieldByIndex(sch.FieldsByDBName[col].StructField.Index).Addr().Interface()
			if fields[i] != want {
				t.Errorf("%s: Fields()[%d] does not point at the %s field", sch.Name, i, col)
			}
		}
	}
}
