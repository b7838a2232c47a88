package services

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/clock"
)

// errSessionEnded: a well-signed access token of a session that ended
// (logout, password change or reset, role change, deletion).
var errSessionEnded = apperror.Define(apperror.Unauthenticated, "session_ended", "This session has ended; log in again")

// EndedSessions makes access tokens of ended sessions stop at once rather
// than when they expire. It holds the session ids (the tokens' sid) that
// ended and, per user, a "not before" time: tokens issued at or before it
// are void (password reset, role or tier change, deletion). Each entry is
// kept only while a token it voids could still be alive (ACCESS_TOKEN_TTL).
//
// Every request is checked in memory, with no database or Redis call.
// With Redis the entries are shared: each is written to one sorted set
// (member, expiry as score) and published; every instance applies what is
// published at once and reads the whole set again every ResyncEvery (for
// anything missed while it was not subscribed). An entry Redis did not take
// is retried at each resync. Without Redis, entries stay on this instance.
type EndedSessions struct {
	rdb     redis.UniversalClient // nil: this instance only
	key     string                // the sorted set
	channel string
	clock   clock.Clock
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger

	mu        sync.RWMutex
	sessions  map[string]int64    // sid -> unix ms until which it matters
	notBefore map[string]voidTill // user id -> tokens issued at or before at are void
	unshared  []entry             // written here, not yet in Redis
}

type voidTill struct{ at, until int64 } // unix seconds (as a JWT's iat), unix ms

// entry is one revocation as stored in Redis: "s:SID" or "u:USER:IAT" with
// its expiry (unix ms).
type entry struct {
	member string
	until  int64
}

// ResyncEvery is how often each instance reads the whole shared set.
const ResyncEvery = 5 * time.Second

// NewEndedSessions builds the set; rdb may be nil. ttl is the access-token
// lifetime; prefix names the Redis keys.
func NewEndedSessions(rdb redis.UniversalClient, prefix string, clk clock.Clock, ttl, timeout time.Duration, log *slog.Logger) *EndedSessions {
	return &EndedSessions{rdb: rdb, key: prefix + "ended-sessions", channel: prefix + "ended-sessions:new", clock: clk, ttl: ttl,
		timeout: timeout, log: log, sessions: map[string]int64{}, notBefore: map[string]voidTill{}}
}

// Ended reports whether a token of user in session sid issued at iat is
// void. It is on every request's path: two map reads.
func (e *EndedSessions) Ended(sid, user string, iat time.Time) bool {
	e.mu.RLock()
	until, ended := e.sessions[sid]
	nb, hasNB := e.notBefore[user]
	e.mu.RUnlock()
	if !ended && !hasNB {
		return false
	}
	now := e.clock.Now().UnixMilli()
	if ended && sid != "" && now < until {
		return true
	}
	return hasNB && now < nb.until && iat.Unix() <= nb.at
}

// End voids every access token of session sid.
func (e *EndedSessions) End(ctx context.Context, sids ...string) {
	if e == nil {
		return
	}
	until := e.clock.Now().Add(e.ttl).UnixMilli()
	var entries []entry
	for _, sid := range sids {
		if sid != "" {
			entries = append(entries, entry{member: "s:" + sid, until: until})
		}
	}
	e.record(ctx, entries)
}

// EndUser voids every access token user holds now, those issued in this
// second too (a JWT's iat counts seconds); tokens issued after it in the
// same second carry the next second as iat (IssuedAfter), so they live.
// A second void within that second covers those pushed tokens as well.
func (e *EndedSessions) EndUser(ctx context.Context, user string) {
	if e == nil {
		return
	}
	now := e.clock.Now()
	at := now.Unix()
	e.mu.RLock()
	if cur, ok := e.notBefore[user]; ok && cur.at >= at {
		at = cur.at + 1 // the iat IssuedAfter gave tokens issued since that void
	}
	e.mu.RUnlock()
	e.record(ctx, []entry{{member: "u:" + user + ":" + strconv.FormatInt(at, 10), until: now.Add(e.ttl).UnixMilli()}})
}

// IssuedAfter is the iat a token for user issued at now must carry to
// outlive a void of this same second: now, or the second after the void.
func (e *EndedSessions) IssuedAfter(user string, now time.Time) time.Time {
	if e == nil {
		return now
	}
	e.mu.RLock()
	nb, ok := e.notBefore[user]
	e.mu.RUnlock()
	if ok && nb.at >= now.Unix() {
		return time.Unix(nb.at+1, 0)
	}
	return now
}

func (e *EndedSessions) record(ctx context.Context, entries []entry) {
	if len(entries) == 0 {
		return
	}
	e.apply(entries...)
	if e.rdb == nil {
		return
	}
	if err := e.share(ctx, entries); err != nil {
		e.log.Warn("ended session not shared yet: redis failed; other instances accept its tokens until the next resync succeeds",
			"error", err)
		e.mu.Lock()
		e.unshared = append(e.unshared, entries...)
		e.mu.Unlock()
	}
}

// share writes entries to Redis and tells the other instances.
func (e *EndedSessions) share(ctx context.Context, entries []entry) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.timeout)
	defer cancel()
	members := make([]redis.Z, len(entries))
	for i, en := range entries {
		members[i] = redis.Z{Score: float64(en.until), Member: en.member}
	}
	now := e.clock.Now().UnixMilli()
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, e.key, members...)
		p.ZRemRangeByScore(ctx, e.key, "-inf", strconv.FormatInt(now, 10))
		p.PExpire(ctx, e.key, e.ttl+time.Minute)
		return nil
	})
	if err != nil {
		return err
	}
	for _, en := range entries {
		if err := e.rdb.Publish(ctx, e.channel, en.member+" "+strconv.FormatInt(en.until, 10)).Err(); err != nil {
			return err
		}
	}
	return nil
}

// apply adds entries to this instance's copy.
func (e *EndedSessions) apply(entries ...entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, en := range entries {
		kind, rest, _ := strings.Cut(en.member, ":")
		switch kind {
		case "s":
			e.sessions[rest] = max(e.sessions[rest], en.until)
		case "u":
			user, at, ok := strings.Cut(rest, ":")
			n, err := strconv.ParseInt(at, 10, 64)
			if !ok || err != nil {
				continue
			}
			cur := e.notBefore[user]
			e.notBefore[user] = voidTill{at: max(cur.at, n), until: max(cur.until, en.until)}
		}
	}
}

// Len is how many ended sessions and voided users are held.
func (e *EndedSessions) Len() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.sessions) + len(e.notBefore)
}

// prune drops what no live token can need any more.
func (e *EndedSessions) prune() {
	now := e.clock.Now().UnixMilli()
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, until := range e.sessions {
		if until <= now {
			delete(e.sessions, k)
		}
	}
	for k, nb := range e.notBefore {
		if nb.until <= now {
			delete(e.notBefore, k)
		}
	}
}

// Resync retries what Redis did not take and reads the whole shared set.
func (e *EndedSessions) Resync(ctx context.Context) error {
	e.prune()
	if e.rdb == nil {
		return nil
	}
	e.mu.Lock()
	retry := e.unshared
	e.unshared = nil
	e.mu.Unlock()
	if len(retry) > 0 {
		if err := e.share(ctx, retry); err != nil {
			e.mu.Lock()
			e.unshared = append(retry, e.unshared...)
			e.mu.Unlock()
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	now := e.clock.Now().UnixMilli()
	zs, err := e.rdb.ZRangeByScoreWithScores(ctx, e.key, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(now, 10), Max: "+inf"}).Result()
	if err != nil {
		return err
	}
	entries := make([]entry, 0, len(zs))
	for _, z := range zs {
		if m, ok := z.Member.(string); ok {
			entries = append(entries, entry{member: m, until: int64(z.Score)})
		}
	}
	e.apply(entries...)
	return nil
}

// Run keeps this instance's copy current until ctx ends: it subscribes to
// what other instances publish and resyncs every ResyncEvery.
func (e *EndedSessions) Run(ctx context.Context) {
	var msgs <-chan *redis.Message // without Redis: nil, never ready; the ticker only prunes
	if e.rdb != nil {
		sub := e.rdb.Subscribe(ctx, e.channel)
		defer sub.Close()
		msgs = sub.Channel()
		if err := e.Resync(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("ended sessions: first read from redis failed; retrying", "error", err)
		}
	}
	t := time.NewTicker(ResyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			member, until, _ := strings.Cut(m.Payload, " ")
			if n, err := strconv.ParseInt(until, 10, 64); err == nil {
				e.apply(entry{member: member, until: n})
			}
		case <-t.C:
			if err := e.Resync(ctx); err != nil && ctx.Err() == nil {
				e.log.Debug("ended sessions: resync failed", "error", err)
			}
		}
	}
}
