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
		a, err := NewAccounts(AccountDeps{Clock: clock.System{}, Hasher: NewHasher(cost, 1, time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := bcrypt.Cost(a.Login.throttle.dummyHash); err != nil || got != cost {
			t.Fatalf("dummy hash cost %d (%v), want %d", got, err, cost)
		}
	}
}
