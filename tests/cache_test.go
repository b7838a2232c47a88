package tests

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/cache"
	"github.com/tollgate/tollgate/clock"
)

func TestMapStaysBoundedAndEvictsWhatExpiresFirst(t *testing.T) {
	parallelTest(t)
	m := cache.NewMap[string](100, func(v int64) int64 { return v })
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
	m2 := cache.NewMap[string](2, func(v int64) int64 { return v })
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

// Go maps never shrink: a sweep that leaves a quarter of the peak or less
// must rebuild the map, or a burst of keys would hold its memory for good.
// Not parallel: the heap is measured, so nothing else may allocate.
func TestMapSweepRemovesExpiredAndGivesMemoryBack(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		_, _ = sqliteTemplate() // TestMain's migration must not allocate meanwhile
	}
	heap := func() int64 {
		var s runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&s)
		return int64(s.HeapAlloc)
	}
	m := cache.NewMap[int](100_000, func(v int64) int64 { return v })
	for i := range 100_000 {
		m.Put(i, 50, 0)
	}
	m.Put(-1, 500, 0) // replaces an entry: the bound holds
	full := heap()
	m.Sweep(100)
	if m.Len() != 1 {
		t.Fatalf("%d entries after the sweep, want the one live", m.Len())
	}
	swept := heap()
	runtime.KeepAlive(m)
	m = nil
	gone := heap()
	if size := full - gone; swept-gone > size/4 {
		t.Fatalf("the sweep kept %d of the %d bytes the map took", swept-gone, size)
	}
}

func TestCacheExpiresOnItsClock(t *testing.T) {
	parallelTest(t)
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := cache.New[string, string](10, clk)
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
