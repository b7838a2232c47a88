package tests

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/ratelimit"
)

// eachLimitStore runs test on every rate-limit store, each on a clock of
// its own from start: memory always, Redis when TEST_REDIS_URL is set
// (under a key prefix of its own).
func eachLimitStore(t *testing.T, start time.Time, test func(t *testing.T, s ratelimit.Store, clk *clock.Manual)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		clk := clock.NewManual(start)
		mem := ratelimit.NewMemory(clk, 0)
		t.Cleanup(mem.Close)
		test(t, mem, clk)
	})
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		return
	}
	t.Run("redis", func(t *testing.T) {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		client := redis.NewClient(opts)
		t.Cleanup(func() { client.Close() })
		if err := client.Ping(context.Background()).Err(); err != nil {
			t.Fatalf("TEST_REDIS_URL unreachable: %v", err)
		}
		b := make([]byte, 6)
		_, _ = crand.Read(b)
		clk := clock.NewManual(start)
		test(t, ratelimit.NewRedis(client, "test:"+hex.EncodeToString(b)+":", time.Second).WithClock(clk), clk)
	})
}

func TestParsePolicy(t *testing.T) {
	parallelTest(t)
	p, err := ratelimit.ParsePolicy("public", "100/1m")
	if err != nil || p.Limit != 100 || p.Window != time.Minute {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{"", "100", "0/1m", "-1/1m", "x/1m", "10/0s", "10/500ms", "10/forever"} {
		if _, err := ratelimit.ParsePolicy("x", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Bursts either side of a fixed-minute boundary: a fixed window would allow
// 2x the limit within one minute.
func TestWindowBoundary(t *testing.T) {
	parallelTest(t)
	p := ratelimit.Policy{Name: "b", Limit: 10, Window: time.Minute}
	start := time.Date(2026, 1, 1, 12, 0, 59, 0, time.UTC)
	eachLimitStore(t, start, func(t *testing.T, s ratelimit.Store, clk *clock.Manual) {
		allowed := 0
		for range 15 {
			if r, _ := s.Take(context.Background(), "k", p); r.Allowed {
				allowed++
			}
		}
		clk.Advance(2 * time.Second) // 12:01:01, a new fixed minute
		for range 15 {
			if r, _ := s.Take(context.Background(), "k", p); r.Allowed {
				allowed++
			}
		}
		if allowed != 10 {
			t.Fatalf("%d allowed within 2 seconds, limit 10", allowed)
		}
	})
}

// Random traffic: in every interval one window long, never more than the
// limit, and after a quiet window the full limit is back.
func TestNeverMoreThanLimitInAnyWindow(t *testing.T) {
	parallelTest(t)
	p := ratelimit.Policy{Name: "prop", Limit: 20, Window: 10 * time.Second}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eachLimitStore(t, start, func(t *testing.T, s ratelimit.Store, clk *clock.Manual) {
		rng := rand.New(rand.NewPCG(1, 2))
		var times []time.Time
		for range 2000 {
			clk.Advance(time.Duration(rng.IntN(200)) * time.Millisecond)
			r, err := s.Take(context.Background(), "k", p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Allowed {
				times = append(times, clk.Now())
			}
			if r.Remaining < 0 || r.Remaining > p.Limit {
				t.Fatalf("remaining %d", r.Remaining)
			}
		}
		for i := range times {
			j := i
			for j < len(times) && times[j].Sub(times[i]) <= p.Window {
				j++
			}
			if j-i > int(p.Limit) {
				t.Fatalf("%d allowed in the window starting %v", j-i, times[i])
			}
		}
		// Offered load is ~5x the limit, so a sound limiter allows close to
		// limit per window+slot; far fewer means it is stricter than its policy.
		elapsed := clk.Now().Sub(start)
		floor := int(0.9 * float64(p.Limit) * float64(elapsed) / float64(p.Window+p.Window/ratelimit.Slots))
		if len(times) < floor {
			t.Fatalf("only %d allowed in %v, want at least %d", len(times), elapsed, floor)
		}
		clk.Advance(p.Window + p.Window/ratelimit.Slots)
		for i := range p.Limit {
			if r, _ := s.Take(context.Background(), "k", p); !r.Allowed {
				t.Fatalf("request %d refused after a quiet window", i)
			}
		}
	})
}

// Retry-After is honest: just before it a retry fails, at it one succeeds;
// Reset is when Remaining goes up.
func TestRetryAfterAndResetAreHonest(t *testing.T) {
	parallelTest(t)
	p := ratelimit.Policy{Name: "h", Limit: 3, Window: time.Minute}
	start := time.Date(2026, 1, 1, 0, 0, 7, 300e6, time.UTC)
	eachLimitStore(t, start, func(t *testing.T, s ratelimit.Store, clk *clock.Manual) {
		ctx := context.Background()
		first, _ := s.Take(ctx, "k", p)
		clk.Advance(20 * time.Second)
		s.Take(ctx, "k", p)
		s.Take(ctx, "k", p)
		r, _ := s.Take(ctx, "k", p)
		if r.Allowed || r.Remaining != 0 || r.RetryAfter <= 0 {
			t.Fatalf("4th request: %+v", r)
		}
		if !r.Reset.Equal(first.Reset) {
			t.Fatalf("reset moved: %v vs %v", r.Reset, first.Reset)
		}
		if got := clk.Now().Add(r.RetryAfter); !got.Equal(r.Reset) {
			t.Fatalf("retry at %v, reset at %v", got, r.Reset)
		}
		if r.RetryAfter > p.Window+p.Window/ratelimit.Slots {
			t.Fatalf("retry after %v is longer than a window and a slot", r.RetryAfter)
		}
		clk.Advance(r.RetryAfter - time.Millisecond)
		if again, _ := s.Take(ctx, "k", p); again.Allowed {
			t.Fatalf("allowed before Retry-After")
		}
		clk.Advance(time.Millisecond)
		if again, _ := s.Take(ctx, "k", p); !again.Allowed {
			t.Fatalf("refused at Retry-After: %+v", again)
		}
	})
}

// Peek answers like Take would but counts nothing: the failed-login
// policy peeks before the password check and counts only failures.
func TestPeekCountsNothing(t *testing.T) {
	parallelTest(t)
	p := ratelimit.Policy{Name: "login", Limit: 2, Window: 15 * time.Minute}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eachLimitStore(t, start, func(t *testing.T, s ratelimit.Store, clk *clock.Manual) {
		ctx := context.Background()
		for range 5 {
			r, err := s.Peek(ctx, "ip", p)
			if err != nil || !r.Allowed || r.Remaining != 2 {
				t.Fatalf("peek on a fresh key: %+v %v", r, err)
			}
		}
		s.Take(ctx, "ip", p)
		clk.Advance(time.Minute)
		s.Take(ctx, "ip", p)
		r, _ := s.Peek(ctx, "ip", p)
		if r.Allowed || r.Remaining != 0 || r.RetryAfter <= 0 {
			t.Fatalf("peek at the limit: %+v", r)
		}
		taken, _ := s.Take(ctx, "ip", p)
		if taken.Allowed || taken.RetryAfter != r.RetryAfter || !taken.Reset.Equal(r.Reset) {
			t.Fatalf("peek %+v and take %+v disagree", r, taken)
		}
		clk.Advance(r.RetryAfter)
		if r, _ := s.Peek(ctx, "ip", p); !r.Allowed || r.Remaining != 1 {
			t.Fatalf("peek after Retry-After: %+v", r)
		}
	})
}

// A peek that finds every bucket gone, then more use: a dry run that
// pruned the last bucket once left a stale sum in Redis, and the next call
// failed with a script error (the per-account login limit found it).
func TestPeekAfterTheWindowThenTake(t *testing.T) {
	parallelTest(t)
	p := ratelimit.Policy{Name: "account", Limit: 3, Window: 15 * time.Minute}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eachLimitStore(t, start, func(t *testing.T, s ratelimit.Store, clk *clock.Manual) {
		ctx := context.Background()
		for range 3 {
			s.Take(ctx, "k", p)
		}
		clk.Advance(16 * time.Minute)
		if r, err := s.Peek(ctx, "k", p); err != nil || !r.Allowed || r.Remaining != 3 {
			t.Fatalf("peek after the window: %+v %v", r, err)
		}
		for i := range 4 {
			r, err := s.Take(ctx, "k", p)
			if err != nil || r.Allowed != (i < 3) {
				t.Fatalf("take %d after the window: %+v %v", i, r, err)
			}
		}
		clk.Advance(16 * time.Minute)
		if r, err := s.Peek(ctx, "k", p); err != nil || !r.Allowed {
			t.Fatalf("second peek after the window: %+v %v", r, err)
		}
		if r, err := s.Peek(ctx, "k", p); err != nil || !r.Allowed || r.Remaining != 3 {
			t.Fatalf("third peek: %+v %v", r, err)
		}
	})
}

// Give takes back exactly the request it names, in its own sub-window,
// and nothing once that sub-window has left: reserve-then-give keeps a cap
// exact while successes cost nothing.
func TestGiveTakesBackOneRequest(t *testing.T) {
	parallelTest(t)
	p := ratelimit.Policy{Name: "account", Limit: 3, Window: 15 * time.Minute}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eachLimitStore(t, start, func(t *testing.T, s ratelimit.Store, clk *clock.Manual) {
		ctx := context.Background()
		first, _ := s.Take(ctx, "k", p)
		clk.Advance(time.Minute)
		second, _ := s.Take(ctx, "k", p)
		clk.Advance(time.Minute)
		s.Take(ctx, "k", p)
		if r, _ := s.Peek(ctx, "k", p); r.Allowed {
			t.Fatalf("3 of 3 taken, still allowed: %+v", r)
		}
		if err := s.Give(ctx, "k", p, second); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Peek(ctx, "k", p); !r.Allowed || r.Remaining != 1 {
			t.Fatalf("after one give: %+v", r)
		}
		// The oldest bucket given back too: two left.
		if err := s.Give(ctx, "k", p, first); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if r, _ := s.Take(ctx, "k", p); r.Allowed != (i < 2) {
				t.Fatalf("take %d after two gives: %+v", i, r)
			}
		}
		// A request whose sub-window has left the window gives nothing.
		clk.Advance(14*time.Minute + 30*time.Second)
		s.Give(ctx, "k", p, first)
		if r, _ := s.Peek(ctx, "k", p); r.Allowed {
			t.Fatalf("a give for a bucket already gone freed a slot: %+v", r)
		}
		// Everything given back: the key is empty, and full again.
		fresh := ratelimit.Policy{Name: "fresh", Limit: 2, Window: time.Minute}
		a, _ := s.Take(ctx, "f", fresh)
		b, _ := s.Take(ctx, "f", fresh)
		s.Give(ctx, "f", fresh, a)
		s.Give(ctx, "f", fresh, b)
		s.Give(ctx, "f", fresh, b) // one too many: nothing to take back
		if r, _ := s.Peek(ctx, "f", fresh); !r.Allowed || r.Remaining != 2 {
			t.Fatalf("after giving everything back: %+v", r)
		}
		for i := range 3 {
			if r, _ := s.Take(ctx, "f", fresh); r.Allowed != (i < 2) {
				t.Fatalf("take %d on the emptied key: %+v", i, r)
			}
		}
	})
}

// TakeAll counts one request under every limit or, when any refuses,
// under none: a credential's bucket and its owner's budget together.
func TestTakeAllCountsUnderEveryLimitOrNone(t *testing.T) {
	parallelTest(t)
	owner := ratelimit.Policy{Name: "free", Limit: 5, Window: time.Minute}
	key := ratelimit.Policy{Name: "key", Limit: 3, Window: time.Hour}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eachLimitStore(t, start, func(t *testing.T, s ratelimit.Store, clk *clock.Manual) {
		ctx := context.Background()
		both := func(cred string) []ratelimit.Limit {
			return []ratelimit.Limit{{Key: cred, Policy: key, Tag: "u1"}, {Key: "u1", Policy: owner}}
		}
		for i := range 4 {
			res, err := s.TakeAll(ctx, both("k1"))
			if err != nil || len(res) != 2 || res[0].Allowed != (i < 3) || res[1].Allowed != (i < 3) {
				t.Fatalf("take %d on k1: %+v %v", i, res, err)
			}
			if i == 3 && res[0].RetryAfter <= 0 {
				t.Fatalf("the refusing limit names no wait: %+v", res)
			}
		}
		// The refused fourth was not counted under the owner: 2 left.
		if r, _ := s.Peek(ctx, "u1", owner); r.Remaining != 2 {
			t.Fatalf("owner after a refusal: %+v", r)
		}
		// The owner's own requests and a second key share the budget.
		s.Take(ctx, "u1", owner)
		if res, _ := s.TakeAll(ctx, both("k2")); !res[0].Allowed {
			t.Fatalf("k2's first: %+v", res)
		}
		res, _ := s.TakeAll(ctx, both("k3"))
		if res[0].Allowed || res[1].Allowed || res[1].RetryAfter <= 0 {
			t.Fatalf("past the owner's budget: %+v", res)
		}
		// Once the owner's window frees, k3 has its whole bucket: the
		// refusal counted nothing under it.
		clk.Advance(2 * time.Minute)
		for i := range 4 {
			if res, _ := s.TakeAll(ctx, both("k3")); res[0].Allowed != (i < 3) {
				t.Fatalf("k3 take %d after the window: %+v", i, res)
			}
		}
	})
}

// A flood of distinct keys (2 million client addresses once took an
// instance from 40 MB to 859 MB) stays under the bound, evicting the keys
// closest to expiry; swept shards give their memory back.
func TestMemoryHoldsAtMostMaxKeys(t *testing.T) {
	parallelTest(t)
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := ratelimit.NewMemory(clk, 64*50)
	defer m.Close()
	p := ratelimit.Policy{Name: "public", Limit: 100, Window: time.Minute}
	ctx := context.Background()
	for i := range 100_000 {
		if i%1000 == 0 {
			clk.Advance(time.Millisecond)
		}
		m.Take(ctx, strconv.Itoa(i), p)
	}
	if n := m.Len(); n > 64*50 || n < 64*40 {
		t.Fatalf("%d keys held, bound %d", n, 64*50)
	}
	if m.Evicted() < 100_000-64*50 {
		t.Fatalf("only %d evictions", m.Evicted())
	}
	// The newest keys survive: eviction takes those closest to expiry.
	if r, _ := m.Peek(ctx, "99999", p); r.Remaining != 99 {
		t.Fatalf("newest key lost: %+v", r)
	}
	clk.Advance(p.Window + p.Window/ratelimit.Slots)
	m.Sweep()
	if m.Len() != 0 {
		t.Fatalf("%d keys after sweep", m.Len())
	}
}

// Memory per key stays at Slots+1 counters whatever the limit.
func TestMemoryIsBoundedAndSwept(t *testing.T) {
	parallelTest(t)
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := ratelimit.NewMemory(clk, 0)
	defer m.Close()
	p := ratelimit.Policy{Name: "enterprise", Limit: 3000, Window: time.Minute}
	for range 3000 {
		clk.Advance(20 * time.Millisecond)
		m.Take(context.Background(), "k", p)
	}
	if n := m.Counters(); n > ratelimit.Slots+1 {
		t.Fatalf("%d counters for one key", n)
	}
	m.Take(context.Background(), "other", p)
	clk.Advance(p.Window + p.Window/ratelimit.Slots)
	m.Sweep()
	if m.Len() != 0 {
		t.Fatalf("%d idle keys left after sweep", m.Len())
	}
}

func BenchmarkMemoryTake(b *testing.B) {
	m := ratelimit.NewMemory(clock.System{}, 0)
	defer m.Close()
	p := ratelimit.Policy{Name: "user", Limit: 1 << 40, Window: time.Minute}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "user-" + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i), byte(i >> 8)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Take(context.Background(), keys[i%len(keys)], p)
			i++
		}
	})
}

// benchRedis connects to TEST_REDIS_URL, or skips the benchmark.
func benchRedis(b *testing.B) *redis.Client {
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		b.Skip("TEST_REDIS_URL not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	client := redis.NewClient(opts)
	b.Cleanup(func() { client.Close() })
	return client
}

func BenchmarkRedisTake(b *testing.B) {
	client := benchRedis(b)
	s := ratelimit.NewRedis(client, "bench:", time.Second)
	p := ratelimit.Policy{Name: "user", Limit: 1 << 40, Window: time.Minute}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Take(context.Background(), "k", p); err != nil {
			b.Fatal(err)
		}
	}
	client.Del(context.Background(), "bench:rl:user:k")
}

// BenchmarkRedisScriptCPU reports the Redis CPU the script costs per call
// (INFO commandstats), with steady traffic that keeps every sub-window of
// a one-minute window in use: the case the script must stay cheap in.
func BenchmarkRedisScriptCPU(b *testing.B) {
	client := benchRedis(b)
	ctx := context.Background()
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	prefix := "bench:" + hex.EncodeToString([]byte{byte(time.Now().UnixNano())}) + ":"
	s := ratelimit.NewRedis(client, prefix, time.Second).WithClock(clk)
	p := ratelimit.Policy{Name: "user", Limit: 1 << 40, Window: time.Minute}
	for range 2 * ratelimit.Slots * 10 { // fill every sub-window first
		clk.Advance(p.Window / ratelimit.Slots / 10)
		if _, err := s.Take(ctx, "k", p); err != nil {
			b.Fatal(err)
		}
	}
	calls0, usec0 := evalStats(b, client)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clk.Advance(50 * time.Millisecond)
		if _, err := s.Take(ctx, "k", p); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	calls1, usec1 := evalStats(b, client)
	if calls1 > calls0 {
		b.ReportMetric(float64(usec1-usec0)/float64(calls1-calls0), "redis-us/call")
	}
	client.Del(ctx, prefix+"rl:user:k")
}

// evalStats reads EVALSHA's call count and total microseconds.
func evalStats(b *testing.B, c *redis.Client) (calls, usec int64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") {
			continue
		}
		for _, kv := range strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "cmdstat_evalsha:")), ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				calls = n
			case "usec":
				usec = n
			}
		}
	}
	return calls, usec
}
