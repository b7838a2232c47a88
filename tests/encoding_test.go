package tests

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"

	"github.com/tollgate/tollgate/handlers"
)

// A list page as every paged list answers it (here GET /admin/users): the
// encoder choice in handlers.JSONSerializer rests on these (go test -run
// '^$' -bench Encode -benchmem ./tests).
func encodedPage() handlers.Paginated[handlers.UserResponse] {
	out := handlers.Paginated[handlers.UserResponse]{PerPage: 20, Page: 1, HasMore: true, NextCursor: "MTd4ZGpxcjBpbTMuMWI0ZTI4YmEtMmZhMS0xMWQyLTg4M2YtMDAxNmQzY2NhNDI3"}
	now := time.Now()
	for range 20 {
		out.Data = append(out.Data, handlers.UserResponse{ID: uuid.New(), Email: "marta@example.com", Role: "viewer", Tier: "free",
			EmailVerified: true, CreatedAt: now, UpdatedAt: now})
	}
	return out
}

func BenchmarkEncodeListPage(b *testing.B) {
	for name, encode := range map[string]func(*bytes.Buffer, any) error{
		"stdlib": func(w *bytes.Buffer, v any) error { return json.NewEncoder(w).Encode(v) },
		"goccy":  func(w *bytes.Buffer, v any) error { return gojson.NewEncoder(w).Encode(v) },
	} {
		b.Run(name, func(b *testing.B) {
			page, buf := encodedPage(), new(bytes.Buffer)
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := encode(buf, page); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The two encoders must agree byte for byte on what the API answers.
func TestGoccyMatchesStdlib(t *testing.T) {
	parallelTest(t)
	for name, v := range map[string]any{
		"page": encodedPage(),
		"error": handlers.ErrorResponse{Error: "Invalid input <script>&", Code: "validation_failed",
			Details: map[string]string{"b": "x", "a": "\u2028\x00", "c": "bad \xff utf-8 \xe2\x82"}},
		"empty": handlers.Paginated[handlers.UserResponse]{},
		"any":   map[string]any{"raw": json.RawMessage(`{"k": [1, 2]}`), "n": 1.5e300, "t": time.Unix(1, 5).UTC(), "nil": nil},
	} {
		var std, fast bytes.Buffer
		if err := json.NewEncoder(&std).Encode(v); err != nil {
			t.Fatal(err)
		}
		if err := gojson.NewEncoder(&fast).Encode(v); err != nil {
			t.Fatal(err)
		}
		if std.String() != fast.String() {
			t.Errorf("%s:\nstdlib %s\ngoccy  %s", name, std.String(), fast.String())
		}
	}
}
