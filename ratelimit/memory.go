package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/tollgate/tollgate/clock"
)

const shards = 64

// Memory is the in-process store: safe for concurrent use, sharded so there
// is no global lock on the hot path, and swept so idle keys vanish.
type Memory struct {
	clock  clock.Clock
	seed   maphash.Seed
	shards [shards]shard
	stop   chan struct{}
	once   sync.Once
}

type shard struct {
	mu   sync.Mutex
	keys map[memKey]*entry
}

// memKey is a struct, not a joined string, so a lookup allocates nothing.
type memKey struct{ policy, key string }

type entry struct {
	buckets []bucket // at most Slots+1, oldest first
	expires int64    // unix ms after which every bucket is out of the window
}

// NewMemory builds a memory store and starts its sweeper; Close stops it.
func NewMemory(clk clock.Clock) *Memory {
	m := &Memory{clock: clk, seed: maphash.MakeSeed(), stop: make(chan struct{})}
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
	now := m.clock.Now().UnixMilli()
	slot := p.slotMillis()
	cur, min := now/slot, (now-p.Window.Milliseconds())/slot
	s := m.shard(key)
	k := memKey{p.Name, key}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.keys[k]
	if e == nil {
		e = &entry{}
		s.keys[k] = e
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
	allowed := count < p.Limit
	if allowed {
		if n := len(e.buckets); n > 0 && e.buckets[n-1].idx == cur {
			e.buckets[n-1].n++
		} else {
			e.buckets = append(e.buckets, bucket{idx: cur, n: 1})
		}
	}
	e.expires = now + p.Window.Milliseconds() + slot
	return evaluate(p, now, allowed, cur, e.buckets), nil
}

// Refund implements Store.
func (m *Memory) Refund(_ context.Context, key string, p Policy, r Result) error {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.keys[memKey{p.Name, key}]; e != nil {
		for i := range e.buckets {
			if e.buckets[i].idx == r.slot && e.buckets[i].n > 0 {
				e.buckets[i].n--
				break
			}
		}
	}
	return nil
}

// Len is the number of keys held (for tests of eviction).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += len(m.shards[i].keys)
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
		for k, e := range s.keys {
			if e.expires <= now {
				delete(s.keys, k)
			}
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
