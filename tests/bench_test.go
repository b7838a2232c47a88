package tests

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/middleware"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/services"
)

// BenchmarkAuthenticatedChain measures what every authenticated request
// pays: RS256 verification plus the per-user limit check, in front of a
// handler that does nothing.
func BenchmarkAuthenticatedChain(b *testing.B) {
	keys, err := services.LoadKeySet(filepath.Join(keyDir, "private.pem"), filepath.Join(keyDir, "public.pem"), nil)
	if err != nil {
		b.Fatal(err)
	}
	clk := clock.System{}
	tokens := services.NewTokens(keys, clk, "tollgate", "tollgate-api", 15*60e9, nil)
	store := ratelimit.NewMemory(clk, 0)
	defer store.Close()
	limiter := middleware.NewRateLimiter(store, true, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(), "bench")
	e := echo.New()
	e.GET("/trivial", func(c *echo.Context) error { return c.NoContent(http.StatusNoContent) },
		middleware.NewAuth(tokens, nil, nil, nil).RequireAuth,
		limiter.PerUser(map[string]ratelimit.Policy{}, ratelimit.Policy{Name: "user", Limit: 1 << 40, Window: 60e9}))
	tok, err := tokens.IssueSession(&models.User{ID: [16]byte{1}, Role: caller.Viewer, Tier: caller.Free}, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/trivial", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			e.ServeHTTP(w, req)
			if w.Code != http.StatusNoContent {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
