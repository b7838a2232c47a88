package tests

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
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
		limiter.PerUser(map[string]ratelimit.Policy{}, ratelimit.Policy{Name: "user", Limit: 1 << 40, Window: 60e9}, nil))
	tok, err := tokens.IssueSession(&models.User{ID: [16]byte{1}, Tier: caller.Free}, services.Standing{OrgID: models.DefaultOrgID, Role: caller.Viewer, Tier: caller.Free}, "")
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

// BenchmarkVerify compares a full RS256 verification with a cache hit.
func BenchmarkVerify(b *testing.B) {
	tokens := testTokens(b, clock.System{})
	raw, err := tokens.IssueSession(&models.User{ID: uuid.New(), Tier: caller.Free}, services.Standing{OrgID: models.DefaultOrgID, Role: caller.Viewer, Tier: caller.Free}, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rs256", func(b *testing.B) { // Inspect verifies afresh every time
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok := tokens.Inspect(raw); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tokens.Verify(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same hit with the ended-session check, against a set holding
	// 10,000 ended sessions and 1,000 voided users (a busy quarter hour).
	ended := services.NewEndedSessions(nil, "", clock.System{}, 15*time.Minute, time.Second, slog.New(slog.DiscardHandler))
	for range 10_000 {
		ended.End(context.Background(), uuid.NewString())
	}
	for range 1_000 {
		ended.EndUser(context.Background(), uuid.NewString())
	}
	checked := testTokensEnding(b, clock.System{}, ended)
	raw, err = checked.IssueSession(&models.User{ID: uuid.New(), Tier: caller.Free}, services.Standing{OrgID: models.DefaultOrgID, Role: caller.Viewer, Tier: caller.Free}, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached+ended-check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := checked.Verify(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
