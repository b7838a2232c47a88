package services

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

func testTokens(t testing.TB, clk clock.Clock) *Tokens {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
	if err := GenerateKeyPair(priv, pub, false); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeySet(priv, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewTokens(keys, clk, "tollgate", "tollgate-api", 15*time.Minute)
}

// A cached token answers like a fresh verification: same claims, and
// expiry is checked again on every hit.
func TestVerifiedCacheRechecksExpiry(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tokens := testTokens(t, clk)
	raw, err := tokens.Issue(&models.User{ID: uuid.New(), Role: caller.Viewer, Tier: caller.Free})
	if err != nil {
		t.Fatal(err)
	}
	first, err := tokens.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	first.Role = "admin" // callers get copies: the cache cannot be changed through them
	again, err := tokens.Verify(raw)
	if err != nil || caller.Role(again.Role) != caller.Viewer || again.Subject != first.Subject {
		t.Fatalf("cached verify: %+v %v", again, err)
	}
	clk.Advance(15 * time.Minute)
	if _, err := tokens.Verify(raw); err == nil {
		t.Fatal("an expired token passed through the cache")
	}
	if _, err := tokens.Verify(raw[:len(raw)-2] + "xx"); err == nil {
		t.Fatal("a tampered token verified")
	}
}

// BenchmarkVerify compares a full RS256 verification with a cache hit.
func BenchmarkVerify(b *testing.B) {
	tokens := testTokens(b, clock.System{})
	raw, err := tokens.Issue(&models.User{ID: uuid.New(), Role: caller.Viewer, Tier: caller.Free})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rs256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tokens.verify(raw); err != nil {
				b.Fatal(err)
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
}
