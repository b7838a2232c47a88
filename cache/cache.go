// Package cache is the one bounded, expiring map the app keeps in memory:
// verified tokens, revocations, accounts seen to exist, rate-limit events
// and the per-instance rate-limit counts all live in one. Every entry has a
// time after which it no longer matters; a full map makes room by evicting
// an expired entry or else the one that expires first among a small random
// sample (as Redis does for its own approximate LRU): O(1) per insert
// whatever the size, so a flood of distinct keys cannot grow it.
package cache

import (
	"iter"
	"maps"
	"sync"
	"time"

	"github.com/tollgate/tollgate/clock"
)

// evictSample is how many entries a full map looks at to pick the one to
// evict.
const evictSample = 8

// Map holds at most its size in entries. It is not safe for concurrent use: its
// owner holds a lock of its own (the rate-limit store locks several at
// once). expires reads an entry's expiry, in unix milliseconds, from its
// value, so a value that moves its own expiry needs no second write.
type Map[K comparable, V any] struct {
	entries map[K]V
	expires func(V) int64
	max     int   // entries held at most
	peak    int   // most entries held since the map was last rebuilt
	evicted int64 // entries dropped to stay under max
}

// NewMap builds a map of at most size entries (at least 1).
func NewMap[K comparable, V any](size int, expires func(V) int64) *Map[K, V] {
	return &Map[K, V]{entries: map[K]V{}, expires: expires, max: max(size, 1)}
}

// Get returns the entry of k, expired or not.
func (m *Map[K, V]) Get(k K) (V, bool) {
	v, ok := m.entries[k]
	return v, ok
}

// Put stores v under k; a new key in a full map first evicts one (now
// decides which have expired).
func (m *Map[K, V]) Put(k K, v V, now int64) {
	if _, ok := m.entries[k]; !ok && len(m.entries) >= m.max {
		m.evict(now)
	}
	m.entries[k] = v
	m.peak = max(m.peak, len(m.entries))
}

// Delete removes k.
func (m *Map[K, V]) Delete(k K) { delete(m.entries, k) }

// Len is the number of entries held.
func (m *Map[K, V]) Len() int { return len(m.entries) }

// Evicted is how many entries were dropped to stay under the bound.
func (m *Map[K, V]) Evicted() int64 { return m.evicted }

// All yields every entry held, expired or not, in no particular order.
func (m *Map[K, V]) All() iter.Seq2[K, V] { return maps.All(m.entries) }

// evict drops an expired entry if the sample holds one, else the sampled
// entry that expires first.
func (m *Map[K, V]) evict(now int64) {
	var victim K
	var soonest int64 = 1<<63 - 1
	seen := 0
	for k, v := range m.entries { // map order is random: a fair sample
		e := m.expires(v)
		if e <= now {
			victim = k
			break
		}
		if e < soonest {
			victim, soonest = k, e
		}
		if seen++; seen == evictSample {
			break
		}
	}
	delete(m.entries, victim)
	m.evicted++
}

// Sweep removes every expired entry. Go maps never give memory back, so a
// map that shrank to a quarter of its peak is copied into a new one and the
// old one left to the garbage collector.
func (m *Map[K, V]) Sweep(now int64) {
	for k, v := range m.entries {
		if m.expires(v) <= now {
			delete(m.entries, k)
		}
	}
	if m.peak >= 16 && len(m.entries) <= m.peak/4 {
		fresh := make(map[K]V, len(m.entries))
		for k, v := range m.entries {
			fresh[k] = v
		}
		m.entries, m.peak = fresh, len(fresh)
	}
}

// Cache is a Map safe for concurrent use whose entries expire at a time
// given when they are put, read on an injected clock.
type Cache[K comparable, V any] struct {
	mu    sync.RWMutex
	m     *Map[K, timed[V]]
	clock clock.Clock
}

type timed[V any] struct {
	v     V
	until int64 // unix ms
}

// New builds a cache of at most size entries.
func New[K comparable, V any](size int, clk clock.Clock) *Cache[K, V] {
	return &Cache[K, V]{m: NewMap[K](size, func(t timed[V]) int64 { return t.until }), clock: clk}
}

// Get returns k's value while it has not expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	now := c.clock.Now().UnixMilli()
	c.mu.RLock()
	t, ok := c.m.Get(k)
	c.mu.RUnlock()
	if !ok || t.until <= now {
		var zero V
		return zero, false
	}
	return t.v, true
}

// Put stores v under k until until.
func (c *Cache[K, V]) Put(k K, v V, until time.Time) {
	now := c.clock.Now().UnixMilli()
	c.mu.Lock()
	c.m.Put(k, timed[V]{v: v, until: until.UnixMilli()}, now)
	c.mu.Unlock()
}

// Sweep removes the expired entries.
func (c *Cache[K, V]) Sweep() {
	now := c.clock.Now().UnixMilli()
	c.mu.Lock()
	c.m.Sweep(now)
	c.mu.Unlock()
}

// Len is the number of entries held, expired ones included until swept.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Len()
}
