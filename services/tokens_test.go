package services

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/models"
)

func testTokens(t testing.TB, clk clock.Clock) *Tokens { return testTokensEnding(t, clk, nil) }

func testTokensEnding(t testing.TB, clk clock.Clock, ended *EndedSessions) *Tokens {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
	if err := GenerateKeyPair(priv, pub, false); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeySet(priv, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewTokens(keys, clk, "tollgate", "tollgate-api", 15*time.Minute, ended)
}

// A cached token answers like a fresh verification: same claims, and
// expiry is checked again on every hit.
func TestVerifiedCacheRechecksExpiry(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tokens := testTokens(t, clk)
	raw, err := tokens.IssueSession(&models.User{ID: uuid.New(), Role: caller.Viewer, Tier: caller.Free}, "")
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
	raw, err := tokens.IssueSession(&models.User{ID: uuid.New(), Role: caller.Viewer, Tier: caller.Free}, "")
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
	// The same hit with the ended-session check, against a set holding
	// 10,000 ended sessions and 1,000 voided users (a busy quarter hour).
	ended := NewEndedSessions(nil, "", clock.System{}, 15*time.Minute, time.Second, slog.New(slog.DiscardHandler))
	for range 10_000 {
		ended.End(context.Background(), uuid.NewString())
	}
	for range 1_000 {
		ended.EndUser(context.Background(), uuid.NewString())
	}
	checked := testTokensEnding(b, clock.System{}, ended)
	raw, err = checked.IssueSession(&models.User{ID: uuid.New(), Role: caller.Viewer, Tier: caller.Free}, "")
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

// An ended session's tokens and a voided user's are refused; a token
// issued in the second of the void, after it, lives.
func TestEndedSessionsRefuseTokens(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC))
	ended := NewEndedSessions(nil, "", clk, 15*time.Minute, time.Second, slog.New(slog.DiscardHandler))
	tokens := testTokensEnding(t, clk, ended)
	u := &models.User{ID: uuid.New(), Role: caller.Viewer, Tier: caller.Free}
	sid := uuid.NewString()
	a, _ := tokens.IssueSession(u, sid)
	b, _ := tokens.IssueSession(u, uuid.NewString())
	ended.End(context.Background(), sid)
	if _, err := tokens.Verify(a); err == nil {
		t.Fatal("a token of an ended session verified")
	}
	if _, err := tokens.Verify(b); err != nil {
		t.Fatalf("another session's token: %v", err)
	}
	ended.EndUser(context.Background(), u.ID.String())
	if _, err := tokens.Verify(b); err == nil {
		t.Fatal("a voided user's token verified")
	}
	fresh, _ := tokens.IssueSession(u, uuid.NewString())
	if _, err := tokens.Verify(fresh); err != nil {
		t.Fatalf("a token issued after the void, in its second: %v", err)
	}
	// Past the access-token lifetime nothing is kept.
	clk.Advance(16 * time.Minute)
	ended.prune()
	if len(ended.sessions) != 0 || len(ended.notBefore) != 0 {
		t.Fatalf("kept %d sessions, %d users past their lifetime", len(ended.sessions), len(ended.notBefore))
	}
}
