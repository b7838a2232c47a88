package ratelimit

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/cache"
	"github.com/tollgate/tollgate/clock"
)

const shards = 64

// DefaultMaxKeys bounds a Memory store built without a bound.
const DefaultMaxKeys = 100_000

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
	mu   sync.Mutex
	keys *cache.Map[memKey, *entry] // a full shard evicts the key whose requests leave the window first
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
		m.shards[i].keys = cache.NewMap[memKey](m.perShard, func(e *entry) int64 { return e.expires })
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
	e, ok := s.keys.Get(memKey{p.Name, key})
	if !ok {
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
	e, ok := s.keys.Get(k)
	if !ok {
		if dry {
			return evaluate(p, now, true, nil)
		}
		e = &entry{}
		s.keys.Put(k, e, now)
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

// Len is the number of keys held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += m.shards[i].keys.Len()
		m.shards[i].mu.Unlock()
	}
	return n
}

// Counters is how many window counters the store holds, its memory: at
// most Slots+1 per key whatever the limit.
func (m *Memory) Counters() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		for _, e := range m.shards[i].keys.All() {
			n += len(e.buckets)
		}
		m.shards[i].mu.Unlock()
	}
	return n
}

// Evicted is how many keys were dropped to stay under the bound.
func (m *Memory) Evicted() int64 {
	var n int64
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += m.shards[i].keys.Evicted()
		m.shards[i].mu.Unlock()
	}
	return n
}

// Sweep removes keys whose every request has left its window.
func (m *Memory) Sweep() {
	now := m.clock.Now().UnixMilli()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.keys.Sweep(now)
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
