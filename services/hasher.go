package services

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate/tollgate/apperror"
)

// Hasher runs bcrypt with a bound on how many hashes run at once. One
// bcrypt at cost 12 keeps a core busy for a few hundred milliseconds;
// unbounded, 64 concurrent logins took /public/status from 6 ms to 1.8 s
// at p99 on two cores. With the bound, excess logins queue for at most
// maxWait and then answer 503 with Retry-After, and the rest of the API
// keeps its cores.
type Hasher struct {
	counted  *prometheus.CounterVec // nil: not counted
	cost     int
	slots    chan struct{}
	maxWait  time.Duration
	inFlight atomic.Int64
	waiting  atomic.Int64
}

// NewHasher builds a hasher running at most concurrency hashes at once.
func NewHasher(cost, concurrency int, maxWait time.Duration) *Hasher {
	return &Hasher{cost: cost, slots: make(chan struct{}, max(concurrency, 1)), maxWait: maxWait}
}

// WithMetrics counts every hash and comparison by cost in c.
func (h *Hasher) WithMetrics(c *prometheus.CounterVec) *Hasher {
	h.counted = c
	return h
}

func (h *Hasher) count(cost int) {
	if h.counted != nil {
		h.counted.WithLabelValues(strconv.Itoa(cost)).Inc()
	}
}

// Cost is the bcrypt cost new hashes get.
func (h *Hasher) Cost() int { return h.cost }

// MaxWait is how long a check may queue for a turn.
func (h *Hasher) MaxWait() time.Duration { return h.maxWait }

// InFlight is how many hashes are running now (a metrics gauge).
func (h *Hasher) InFlight() int64 { return h.inFlight.Load() }

// Waiting is how many requests wait for a turn (a metrics gauge).
func (h *Hasher) Waiting() int64 { return h.waiting.Load() }

// Hash hashes password.
func (h *Hasher) Hash(ctx context.Context, password string) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	h.count(h.cost)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	if err != nil {
		return nil, apperror.Wrap(err, "hash password")
	}
	return hash, nil
}

// Matches reports whether password matches hash.
func (h *Hasher) Matches(ctx context.Context, hash []byte, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	cost, err := bcrypt.Cost(hash)
	if err == nil {
		h.count(cost)
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil, nil
}

// Stale reports whether hash was made at a lower cost than new hashes get
// (BCRYPT_COST was raised since).
func (h *Hasher) Stale(hash []byte) bool {
	cost, err := bcrypt.Cost(hash)
	return err == nil && cost < h.cost
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		h.inFlight.Add(1)
		return nil
	default:
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		h.inFlight.Add(1)
		return nil
	case <-t.C:
		return apperror.ErrBusy
	case <-ctx.Done():
		return apperror.ErrTimeout.WithCause(ctx.Err())
	}
}

func (h *Hasher) release() {
	h.inFlight.Add(-1)
	<-h.slots
}
