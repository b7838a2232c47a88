package cache

import (
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/clock"
)

func TestMapStaysBoundedAndEvictsWhatExpiresFirst(t *testing.T) {
	m := NewMap[string](100, func(v int64) int64 { return v })
	for i := range 10_000 {
		m.Put(strconv.Itoa(i), int64(i), 0) // key i expires at i
	}
	if m.Len() != 100 {
		t.Fatalf("%d entries held, bound 100", m.Len())
	}
	if m.Evicted() != 10_000-100 {
		t.Fatalf("%d evictions", m.Evicted())
	}
	// The sample drops the soonest to expire: the newest keys survive.
	if _, ok := m.Get("9999"); !ok {
		t.Fatal("the entry that expires last was evicted")
	}
	// An expired entry is dropped before any live one.
	m2 := NewMap[string](2, func(v int64) int64 { return v })
	m2.Put("old", 5, 0)
	m2.Put("live", 100, 0)
	m2.Put("new", 200, 10) // at 10, "old" has expired
	if _, ok := m2.Get("old"); ok {
		t.Fatal("the expired entry survived, a live one was evicted")
	}
	if _, ok := m2.Get("live"); !ok {
		t.Fatal("a live entry was evicted while an expired one was held")
	}
}

func TestMapSweepRemovesExpiredAndGivesMemoryBack(t *testing.T) {
	m := NewMap[int](1000, func(v int64) int64 { return v })
	for i := range 1000 {
		m.Put(i, 50, 0)
	}
	m.Put(-1, 500, 0) // replaces an entry: the bound holds
	m.Sweep(100)
	if m.Len() != 1 {
		t.Fatalf("%d entries after the sweep, want the one live", m.Len())
	}
	if m.peak != 1 {
		t.Fatalf("map not rebuilt after shrinking: peak %d", m.peak)
	}
}

func TestCacheExpiresOnItsClock(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := New[string, string](10, clk)
	c.Put("k", "v", clk.Now().Add(time.Minute))
	if v, ok := c.Get("k"); !ok || v != "v" {
		t.Fatalf("got %q %v", v, ok)
	}
	clk.Advance(time.Minute)
	if _, ok := c.Get("k"); ok {
		t.Fatal("an entry outlived its time")
	}
	c.Sweep()
	if c.Len() != 0 {
		t.Fatalf("%d entries after the sweep", c.Len())
	}
}
