package services

import (
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate/tollgate/clock"
)

// A login for an unknown email compares against a dummy hash; it must have
// the configured cost, or unknown emails would answer measurably faster.
func TestDummyHashHasTheConfiguredCost(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, 10} {
		a, err := NewAuth(nil, clock.System{}, nil, nil, NewHasher(cost, 1, time.Second), nil, nil, nil, nil, AuthConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := bcrypt.Cost(a.dummyHash); err != nil || got != cost {
			t.Fatalf("dummy hash cost %d (%v), want %d", got, err, cost)
		}
	}
}
