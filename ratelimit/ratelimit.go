// Package ratelimit counts requests per key in a sliding window with
// bounded memory, in Redis (shared by every instance) or in memory (one
// instance, and the fallback when Redis fails).
//
// The window of length W is split into Slots sub-windows. A request is
// allowed when the requests already counted in every sub-window that
// overlaps [now-W, now] are fewer than the limit. The oldest sub-window is
// counted whole even when only part of it is inside the window, so the
// check is conservative: in ANY interval of length W at most limit requests
// are allowed, across fixed-window boundaries too, while memory stays at
// Slots+1 counters per key whatever the limit.
package ratelimit

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Slots is the number of sub-windows per window. A client that spent its
// whole limit waits at most W + W/Slots for the first request to come back.
const Slots = 30

// Policy is a limit per window, e.g. 100 per minute.
type Policy struct {
	Name   string
	Limit  int64
	Window time.Duration
}

// String renders the policy as it is configured: "100/1m0s".
func (p Policy) String() string { return fmt.Sprintf("%d/%s", p.Limit, p.Window) }

// ParsePolicy reads "LIMIT/WINDOW", e.g. "100/1m" or "5/15m".
func ParsePolicy(name, s string) (Policy, error) {
	limit, window, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Policy{}, fmt.Errorf("%q is not LIMIT/WINDOW such as 100/1m", s)
	}
	n, err := strconv.ParseInt(limit, 10, 64)
	if err != nil || n < 1 {
		return Policy{}, fmt.Errorf("%q: limit must be a whole number from 1", s)
	}
	d, err := time.ParseDuration(window)
	if err != nil || d < time.Second {
		return Policy{}, fmt.Errorf("%q: window must be a duration of at least 1s such as 1m", s)
	}
	return Policy{Name: name, Limit: n, Window: d}, nil
}

// slotMillis is the sub-window length in milliseconds.
func (p Policy) slotMillis() int64 {
	w := p.Window.Milliseconds()
	return (w + Slots - 1) / Slots
}

// Result is the outcome of one check.
type Result struct {
	Allowed    bool
	Limit      int64
	Remaining  int64
	Reset      time.Time     // when Remaining next goes up
	RetryAfter time.Duration // when refused: wait this long and a retry is allowed
	// At is when the store counted the request (its clock): what Give
	// needs to find the sub-window it was counted in.
	At time.Time
	// local: decided by Fallback's local store, not the shared one.
	local bool
}

// Store counts requests.
type Store interface {
	// Take counts one request for key under p, if p allows it.
	Take(ctx context.Context, key string, p Policy) (Result, error)
	// Peek reports whether p would allow a request for key now, counting
	// nothing (the failed-login policy peeks first and counts failures
	// after the fact, so nothing ever needs to be given back).
	Peek(ctx context.Context, key string, p Policy) (Result, error)
	// Give takes back a request Take counted and allowed (taken is what
	// Take returned), if its sub-window is still in the window: an attempt
	// reserved before a check whose outcome proved it free (a right
	// password). Reserving first is what makes a cap exact under
	// concurrency; a Give that is lost costs one attempt, never more.
	Give(ctx context.Context, key string, p Policy, taken Result) error
	// TakeAll counts one request under every limit, atomically: under all
	// of them or, when any refuses, none (every result then has Allowed
	// false; the refusing ones carry RetryAfter). On Redis it is one call,
	// so the limits must share a hash slot on a Cluster: give them one Tag.
	TakeAll(ctx context.Context, limits []Limit) ([]Result, error)
}

// Limit is one key under one policy, for TakeAll. Tag, when set, is the
// Redis hash tag the key is stored under (its slot on a Cluster) instead
// of the key itself: a credential's bucket tagged with its owner's id
// shares a slot with the owner's bucket.
type Limit struct {
	Key    string
	Policy Policy
	Tag    string
}

// storeKey is the key a Limit counts under, tag included.
func (l Limit) storeKey() string {
	if l.Tag == "" {
		return l.Key
	}
	return l.Tag + ":" + l.Key
}

// bucket is one sub-window's count.
type bucket struct {
	idx int64
	n   int64
}

// evaluate turns the buckets counted for a key (after this request, if
// allowed) into a Result. Both stores share it so they agree exactly.
func evaluate(p Policy, nowMs int64, allowed bool, buckets []bucket) Result {
	slot := p.slotMillis()
	window := p.Window.Milliseconds()
	slices.SortFunc(buckets, func(a, b bucket) int { return cmp.Compare(a.idx, b.idx) })
	var count int64
	for _, b := range buckets {
		count += b.n
	}
	// A bucket stops counting once now-W has passed its end.
	leaves := func(idx int64) int64 { return (idx+1)*slot + window }
	r := Result{Allowed: allowed, Limit: p.Limit, Remaining: max(p.Limit-count, 0)}
	reset := nowMs + window
	for _, b := range buckets {
		if b.n > 0 {
			reset = leaves(b.idx)
			break
		}
	}
	if !allowed {
		// Earliest time enough old buckets have left for one more request.
		left := count
		for _, b := range buckets {
			left -= b.n
			if left < p.Limit {
				reset = leaves(b.idx)
				break
			}
		}
		r.RetryAfter = time.Duration(reset-nowMs) * time.Millisecond
	}
	r.Reset = time.UnixMilli(reset)
	r.At = time.UnixMilli(nowMs)
	return r
}

// UnmarshalText reads LIMIT/WINDOW, keeping p's name: a policy is a
// setting type (settings.Config names each one when it is loaded).
func (p *Policy) UnmarshalText(b []byte) error {
	q, err := ParsePolicy(p.Name, string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
