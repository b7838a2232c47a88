package ratelimit

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/clock"
)

const shards = 64

// DefaultMaxKeys bounds a Memory store built without a bound.
const DefaultMaxKeys = 100_000

// evictSample is how many keys a full shard looks at to pick the one to
// evict (the one whose requests leave the window first), as Redis does
// for its own approximate LRU: O(1) per insert, whatever the shard size.
const evictSample = 8

// Memory is the in-process store: safe for concurrent use, sharded so there
// is no global lock on the hot path, swept so idle keys vanish, and bounded
// so a flood of distinct keys (every address of a botnet, say) cannot grow
// it past maxKeys: a full shard evicts the key closest to expiry.
type Memory struct {
	clock    clock.Clock
	seed     maphash.Seed
	perShard int
	shards   [shards]shard
	stop     chan struct{}
	once     sync.Once
}

type shard struct {
	mu      sync.Mutex
	keys    map[memKey]*entry
	peak    int   // most keys held since the map was last rebuilt
	evicted int64 // keys dropped to stay under the bound
}

// memKey is a struct, not a joined string, so a lookup allocates nothing.
type memKey struct{ policy, key string }

type entry struct {
	buckets []bucket // at most Slots+1, oldest first
	expires int64    // unix ms after which every bucket is out of the window
}

// NewMemory builds a memory store holding at most maxKeys keys (0: the
// default) and starts its sweeper; Close stops it.
func NewMemory(clk clock.Clock, maxKeys int) *Memory {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	m := &Memory{clock: clk, seed: maphash.MakeSeed(), perShard: max(maxKeys/shards, 1), stop: make(chan struct{})}
	for i := range m.shards {
		m.shards[i].keys = map[memKey]*entry{}
	}
	go m.sweepEvery(time.Minute)
	return m
}

// Close stops the sweeper.
func (m *Memory) Close() { m.once.Do(func() { close(m.stop) }) }

func (m *Memory) shard(key string) *shard {
	return &m.shards[maphash.String(m.seed, key)%shards]
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string, p Policy) (Result, error) {
	return m.take(key, p, modeTake), nil
}

// Peek implements Store.
func (m *Memory) Peek(_ context.Context, key string, p Policy) (Result, error) {
	return m.take(key, p, modePeek), nil
}

// Give implements Store.
func (m *Memory) Give(_ context.Context, key string, p Policy, taken Result) error {
	idx := taken.At.UnixMilli() / p.slotMillis()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.keys[memKey{p.Name, key}]
	if e == nil {
		return nil
	}
	for i := range e.buckets {
		if e.buckets[i].idx == idx && e.buckets[i].n > 0 {
			e.buckets[i].n--
			break
		}
	}
	return nil
}

// Record counts a request another store admitted, whatever p's limit says
// (Fallback's local copy of the shared counts).
func (m *Memory) Record(key string, p Policy) { m.take(key, p, modeRecord) }

// What take does with the request.
const (
	modeTake   = iota // count it if allowed
	modePeek          // count nothing
	modeRecord        // count it
)

func (m *Memory) take(key string, p Policy, mode int) Result {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.takeLocked(s, memKey{p.Name, key}, p, mode, m.clock.Now().UnixMilli())
}

// TakeAll implements Store: the shards of every limit are locked (in
// shard order, so two calls cannot deadlock), every limit checked, and the
// request counted under all or none.
func (m *Memory) TakeAll(_ context.Context, limits []Limit) ([]Result, error) {
	now := m.clock.Now().UnixMilli()
	idx := make([]int, 0, len(limits))
	for _, l := range limits {
		i := int(maphash.String(m.seed, l.storeKey()) % shards)
		if !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		m.shards[i].mu.Lock()
	}
	defer func() {
		for _, i := range idx {
			m.shards[i].mu.Unlock()
		}
	}()
	out := make([]Result, len(limits))
	all := true
	for i, l := range limits {
		out[i] = m.takeLocked(m.shard(l.storeKey()), memKey{l.Policy.Name, l.storeKey()}, l.Policy, modePeek, now)
		all = all && out[i].Allowed
	}
	if !all {
		for i := range out {
			out[i].Allowed = false
		}
		return out, nil
	}
	for i, l := range limits {
		out[i] = m.takeLocked(m.shard(l.storeKey()), memKey{l.Policy.Name, l.storeKey()}, l.Policy, modeTake, now)
	}
	return out, nil
}

// takeLocked is take with s locked, at now.
func (m *Memory) takeLocked(s *shard, k memKey, p Policy, mode int, now int64) Result {
	dry := mode == modePeek
	slot := p.slotMillis()
	cur, min := now/slot, (now-p.Window.Milliseconds())/slot
	e := s.keys[k]
	if e == nil {
		if dry {
			return evaluate(p, now, true, nil)
		}
		if len(s.keys) >= m.perShard {
			s.evict(now)
		}
		e = &entry{}
		s.keys[k] = e
		s.peak = max(s.peak, len(s.keys))
	}
	// Drop buckets that left the window.
	kept := e.buckets[:0]
	var count int64
	for _, b := range e.buckets {
		if b.idx >= min {
			kept = append(kept, b)
			count += b.n
		}
	}
	e.buckets = kept
	allowed := count < p.Limit || mode == modeRecord
	if allowed && !dry {
		if n := len(e.buckets); n > 0 && e.buckets[n-1].idx == cur {
			e.buckets[n-1].n++
		} else {
			e.buckets = append(e.buckets, bucket{idx: cur, n: 1})
		}
		e.expires = now + p.Window.Milliseconds() + slot
	}
	return evaluate(p, now, allowed, e.buckets)
}

// evict makes room in a full shard: an expired key if the sample holds
// one, else the sampled key whose requests leave the window first.
func (s *shard) evict(now int64) {
	var victim memKey
	var soonest int64 = 1<<63 - 1
	seen := 0
	for k, e := range s.keys { // map order is random: a fair sample
		if e.expires <= now {
			victim = k
			break
		}
		if e.expires < soonest {
			victim, soonest = k, e.expires
		}
		if seen++; seen == evictSample {
			break
		}
	}
	delete(s.keys, victim)
	s.evicted++
}

// Len is the number of keys held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += len(m.shards[i].keys)
		m.shards[i].mu.Unlock()
	}
	return n
}

// Evicted is how many keys were dropped to stay under the bound.
func (m *Memory) Evicted() int64 {
	var n int64
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += m.shards[i].evicted
		m.shards[i].mu.Unlock()
	}
	return n
}

// Sweep removes keys whose every request has left its window. Go maps
// never give memory back, so a shard that shrank to a quarter of its peak
// is copied into a new map and the old one left to the garbage collector.
func (m *Memory) Sweep() {
	now := m.clock.Now().UnixMilli()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for k, e := range s.keys {
			if e.expires <= now {
				delete(s.keys, k)
			}
		}
		if s.peak >= 16 && len(s.keys) <= s.peak/4 {
			fresh := make(map[memKey]*entry, len(s.keys))
			for k, e := range s.keys {
				fresh[k] = e
			}
			s.keys, s.peak = fresh, len(fresh)
		}
		s.mu.Unlock()
	}
}

func (m *Memory) sweepEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Sweep()
		}
	}
}
