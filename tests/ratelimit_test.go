package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/caller"
)

// hammer sends n requests and returns how many got each status.
func hammer(t testing.TB, a *App, n int, req Request) (map[int]int, *Response) {
	t.Helper()
	counts := map[int]int{}
	var last *Response
	for range n {
		last = a.do(t, req)
		counts[last.Status]++
	}
	return counts, last
}

func limitHeaders(t testing.TB, r *Response) {
	t.Helper()
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"} {
		mustf(t, r.Header.Get(h) != "", "%s missing on a %d answer: %v", h, r.Status, r.Header)
	}
}

func assert429(t testing.TB, a *App, r *Response, body string) {
	t.Helper()
	mustf(t, r.Status == http.StatusTooManyRequests, "want 429, got %d %s", r.Status, r.Body)
	mustf(t, strings.Contains(r.Body, body), "429 body %s lacks %s", r.Body, body)
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	mustf(t, err == nil && ra >= 1, "Retry-After %q", r.Header.Get("Retry-After"))
	limitHeaders(t, r)
	mustf(t, r.Header.Get("X-RateLimit-Remaining") == "0", "remaining %q on a 429", r.Header.Get("X-RateLimit-Remaining"))
}

// The default limits: 429 after 100 unauthenticated requests.
func TestPublicLimit(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	req := Request{Method: "GET", URL: "/public/status"}
	counts, _ := hammer(t, a, 100, req)
	mustf(t, counts[200] == 100, "first 100: %v", counts)
	r := a.do(t, req)
	assert429(t, a, r, `{"error":"Too many requests","code":"rate_limited"}`)
	// The IP's limit is shared by every public route, but not by the probes.
	mustf(t, a.do(t, Request{Method: "GET", URL: "/.well-known/jwks.json"}).Status == 429, "jwks not limited")
	mustf(t, a.do(t, Request{Method: "GET", URL: "/healthz"}).Status == 200, "healthz limited")
	mustf(t, a.do(t, Request{Method: "GET", URL: "/readyz"}).Status == 200, "readyz limited")
	// Another IP has its own allowance.
	mustf(t, a.do(t, Request{Method: "GET", URL: "/public/status", RemoteAddr: "198.51.100.9:1"}).Status == 200, "other IP limited")
	// Retry-After is honest.
	wait, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	a.Clock.Advance(time.Duration(wait-1) * time.Second)
	mustf(t, a.do(t, req).Status == 429, "allowed before Retry-After")
	a.Clock.Advance(time.Second)
	mustf(t, a.do(t, req).Status == 200, "refused after Retry-After")
}

// The default limits: 5 failed logins in 15 minutes, then 429 with Retry-After.
func TestLoginBruteForceGuard(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free) // one successful login already
	wrong := Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": "Wrong-Pass-99"}}
	right := Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}}
	for i := range 4 {
		r := a.do(t, wrong)
		mustf(t, r.Status == 401, "failure %d: %d", i, r.Status)
		limitHeaders(t, r)
		mustf(t, r.Header.Get("X-RateLimit-Remaining") == strconv.Itoa(4-i), "remaining after %d failures: %s", i+1, r.Header.Get("X-RateLimit-Remaining"))
	}
	// Successes do not count.
	for range 3 {
		r := a.do(t, right)
		mustf(t, r.Status == 200 && r.Header.Get("X-RateLimit-Remaining") == "1", "success: %d remaining %s", r.Status, r.Header.Get("X-RateLimit-Remaining"))
	}
	mustf(t, a.do(t, wrong).Status == 401, "5th failure")
	// Now every attempt is refused, the right password too.
	r := a.do(t, right)
	assert429(t, a, r, `"code":"too_many_login_attempts"`)
	ra, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	mustf(t, ra > 14*60 && ra <= 15*60+30, "Retry-After %d for a 15-minute window", ra)
	mustf(t, strings.Contains(r.Body, fmt.Sprintf("Too many login attempts. Try again in %d minutes.", (ra+59)/60)), "%s", r.Body)
	// Logged once per window, not per request.
	a.do(t, wrong)
	a.do(t, wrong)
	mustf(t, strings.Count(a.Logs.String(), "rate_limit_exceeded") == 1, "security log lines: %d", strings.Count(a.Logs.String(), "rate_limit_exceeded"))
	mustf(t, strings.Contains(a.Logs.String(), `"policy":"login"`), "no login event")

	wait, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	a.Clock.Advance(time.Duration(wait) * time.Second)
	mustf(t, a.do(t, right).Status == 200, "login refused after Retry-After")
}

func TestRegisterLimit(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	for i := range 10 {
		r := register(t, a, fmt.Sprintf("r%d@example.com", i))
		mustf(t, r.Status == 202, "registration %d: %d", i, r.Status)
		limitHeaders(t, r)
	}
	r := a.do(t, Request{Method: "POST", URL: "/auth/verify/resend", Body: map[string]string{"email": "r1@example.com"}})
	assert429(t, a, r, `"code":"rate_limited"`)
	// Two policies applied: both are announced, the tighter one reported.
	mustf(t, len(r.Header.Values("RateLimit-Policy")) == 2, "policies %v", r.Header.Values("RateLimit-Policy"))
	mustf(t, strings.HasPrefix(r.Header.Get("RateLimit"), `"register";r=0`), "RateLimit %q", r.Header.Get("RateLimit"))
}

// The default limits: 300 a minute for an authenticated user (a tier not in
// RATE_LIMIT_TIERS), and each listed tier at its own limit.
func TestUserLimitsByTier(t *testing.T) {
	parallelTest(t)
	cases := []struct {
		tier     caller.Tier
		limit    int
		env      []string
		hammered bool // run up to the limit and past it; else the policy is read from the headers
	}{
		{"free", 300, []string{"RATE_LIMIT_TIERS", "paid=600/1m,enterprise=3000/1m"}, true},
		{"free", 60, nil, true},
		{"paid", 600, nil, false},
		{"enterprise", 3000, nil, false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s=%d", c.tier, c.limit), func(t *testing.T) {
			parallelTest(t)
			a := newApp(t, c.env...)
			u := a.user(t, caller.Viewer, c.tier)
			req := Request{Method: "GET", URL: "/users/me", Headers: bearer(u)}
			if !c.hammered {
				// The same store and middleware as the hammered tiers: the
				// tier's policy is what its answers announce.
				r := a.do(t, req)
				mustf(t, r.Status == 200 && r.Header.Get("X-RateLimit-Limit") == strconv.Itoa(c.limit) &&
					r.Header.Get("X-RateLimit-Remaining") == strconv.Itoa(c.limit-1), "%s: %d %v", c.tier, r.Status, r.Header)
				limitHeaders(t, r)
				return
			}
			counts, last := hammer(t, a, c.limit, req)
			mustf(t, counts[200] == c.limit, "%v", counts)
			limitHeaders(t, last)
			mustf(t, last.Header.Get("X-RateLimit-Limit") == strconv.Itoa(c.limit), "limit header %s", last.Header.Get("X-RateLimit-Limit"))
			assert429(t, a, a.do(t, req), `"code":"rate_limited"`)
			// Other users are unaffected.
			other := a.user(t, caller.Viewer, c.tier)
			mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(other)}).Status == 200, "other user limited")
		})
	}
}

// The default limits: admins are not limited.
func TestAdminBypassesUserLimit(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	admin := a.user(t, caller.Admin, caller.Free)
	counts, last := hammer(t, a, 400, Request{Method: "GET", URL: "/users/me", Headers: bearer(admin)})
	mustf(t, counts[200] == 400, "%v", counts)
	mustf(t, last.Header.Get("X-RateLimit-Limit") == "", "admin answer carries limit headers")
}

// A plan change reaches the limit at the user's next refresh; the old
// token, which names the old tier, is refused at once.
func TestTierUpgradeAfterRefresh(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	admin := a.user(t, caller.Admin, caller.Free)
	u := a.user(t, caller.Viewer, caller.Free)
	req := Request{Method: "GET", URL: "/users/me", Headers: bearer(u)}
	hammer(t, a, 60, req)
	mustf(t, a.do(t, req).Status == 429, "free limit not reached")
	r := a.do(t, Request{Method: "PATCH", URL: "/admin/users/" + u.ID, Headers: bearer(admin), Body: map[string]string{"tier": "paid"}})
	mustf(t, r.Status == 200, "upgrade: %d", r.Status)
	mustf(t, a.do(t, req).Status == 401, "the old token, with the old tier, still works")
	r = refresh(t, a, u.Refresh)
	u.Access = field(t, r, "access_token")
	r = a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
	mustf(t, r.Status == 200 && r.Header.Get("X-RateLimit-Limit") == "600", "after refresh: %d limit %s", r.Status, r.Header.Get("X-RateLimit-Limit"))
}

// Bursts either side of a minute boundary never exceed the limit in any
// minute: the clock is driven, not slept.
func TestWindowBoundaryOverHTTP(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	a.Clock.Set(time.Date(2026, 3, 2, 9, 0, 59, 500e6, time.UTC))
	req := Request{Method: "GET", URL: "/users/me", Headers: bearer(u)}
	counts, _ := hammer(t, a, 70, req)
	a.Clock.Advance(time.Second) // 09:01:00.5, a new fixed minute
	more, _ := hammer(t, a, 70, req)
	mustf(t, counts[200]+more[200] == 60, "allowed %d+%d within one second, limit 60 a minute", counts[200], more[200])
	a.Clock.Advance(time.Minute + 2*time.Second)
	mustf(t, a.do(t, req).Status == 200, "still refused a full window later")
}

// X-Forwarded-For moves the key only when the peer is a listed proxy.
func TestForwardedForCannotDodgeTheLimit(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	for i := range 100 {
		r := a.do(t, Request{Method: "GET", URL: "/public/status", RemoteAddr: "203.0.113.5:1000",
			Headers: map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)}})
		mustf(t, r.Status == 200, "request %d: %d", i, r.Status)
	}
	r := a.do(t, Request{Method: "GET", URL: "/public/status", RemoteAddr: "203.0.113.5:1000",
		Headers: map[string]string{"X-Forwarded-For": "192.0.2.200"}})
	mustf(t, r.Status == 429, "spoofed XFF changed the key: %d", r.Status)

	proxied := newApp(t, "TRUSTED_PROXIES", "10.0.0.1")
	for i := range 150 {
		r := proxied.do(t, Request{Method: "GET", URL: "/public/status", RemoteAddr: "10.0.0.1:1000",
			Headers: map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)}})
		mustf(t, r.Status == 200, "client %d behind the trusted proxy limited: %d", i, r.Status)
	}
}

func TestRateLimitsCanBeTurnedOff(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_ENABLED", "false")
	counts, last := hammer(t, a, 150, Request{Method: "GET", URL: "/public/status"})
	mustf(t, counts[200] == 150 && last.Header.Get("X-RateLimit-Limit") == "", "%v %v", counts, last.Header)
}

func TestMalformedPolicyStopsStartup(t *testing.T) {
	parallelTest(t)
	for _, env := range [][2]string{{"RATE_LIMIT_PUBLIC", "lots"}, {"RATE_LIMIT_TIERS", "free=60"}, {"RATE_LIMIT_LOGIN", "5/0s"}} {
		_, err := run(t, nil, map[string]string{env[0]: env[1]})
		mustf(t, err != nil && strings.Contains(err.Error(), env[0]), "%s=%s: %v", env[0], env[1], err)
	}
}

func TestOverLimitKeyIsLoggedOncePerWindow(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	hammer(t, a, 100+25, Request{Method: "GET", URL: "/public/status"})
	mustf(t, strings.Count(a.Logs.String(), "rate_limit_exceeded") == 1, "lines: %d", strings.Count(a.Logs.String(), "rate_limit_exceeded"))
	a.Clock.Advance(2 * time.Minute)
	hammer(t, a, 100+25, Request{Method: "GET", URL: "/public/status"})
	mustf(t, strings.Count(a.Logs.String(), "rate_limit_exceeded") == 2, "second window not logged")
}

// sharedRedis returns TEST_REDIS_URL, skipping when it is unset: the
// shared-limit tests need a real Redis (.ci/run always sets it).
func sharedRedis(t *testing.T) string {
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		t.Skip("TEST_REDIS_URL not set")
	}
	return url
}

// Three instances on one Redis, hammered concurrently on one key over real
// connections: exactly the limit is allowed, not one more.
func TestInstancesShareOneLimit(t *testing.T) {
	url := sharedRedis(t)
	prefix := randomName("test:") + ":"
	var servers []*httptest.Server
	var apps []*App
	for range 3 {
		// A generous Redis timeout: under -race a slow answer would send an
		// instance to its local fallback, which is a different test.
		a := newApp(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix, "RATE_LIMIT_REDIS_TIMEOUT", "5s")
		srv := httptest.NewServer(a.Handler)
		t.Cleanup(srv.Close)
		servers = append(servers, srv)
		apps = append(apps, a)
	}
	var ok, limited, other atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for g := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				resp, err := client.Get(servers[g%3].URL + "/public/status")
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 429:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for _, a := range apps {
		mustf(t, !strings.Contains(a.Logs.String(), "unavailable"), "an instance fell back to memory: %s", a.Logs.String())
	}
	mustf(t, ok.Load() == 100 && limited.Load() == 380 && other.Load() == 0, "ok %d, limited %d, other %d", ok.Load(), limited.Load(), other.Load())
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis runs a private redis-server; the returned func stops it.
func startRedis(t *testing.T, port int) func() {
	t.Helper()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		mustf(t, i < 100, "redis-server on %d never answered", port)
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

// Redis dies mid-test: no 5xx, limits continue on this instance's memory,
// and the shared limits come back by themselves when Redis does.
func TestRedisFailureFallsBackAndRecovers(t *testing.T) {
	sharedRedis(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not on PATH: %v", err)
	}
	port := freePort(t)
	stop := startRedis(t, port)
	a := newApp(t, "REDIS_URL", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "RATE_LIMIT_PUBLIC", "20/1m")
	req := Request{Method: "GET", URL: "/public/status"}

	counts, _ := hammer(t, a, 5, req)
	mustf(t, counts[200] == 5, "before: %v", counts)
	stop()

	// The instance kept a copy of what Redis admitted: 15 more of 20, not 20.
	counts, last := hammer(t, a, 30, req)
	mustf(t, counts[200] == 15 && counts[429] == 15, "while Redis is down (this instance's copy of the counts): %v", counts)
	limitHeaders(t, last)
	mustf(t, strings.Count(a.Logs.String(), "rate limit store unavailable") == 1, "fallback not logged once: %s", a.Logs.String())
	ready := a.do(t, Request{Method: "GET", URL: "/readyz"})
	mustf(t, ready.Status == 200 && strings.Contains(ready.Body, `"degraded":["redis"]`), "readyz with Redis down: %d %s", ready.Status, ready.Body)
	mustf(t, strings.Contains(a.scrape(t), "app_rate_limit_fallback 1"), "fallback not in metrics")

	startRedis(t, port)
	a.Clock.Advance(2 * time.Second) // past the pause before Redis is tried again
	r := a.do(t, req)
	mustf(t, r.Status == 200 && r.Header.Get("X-RateLimit-Remaining") == "19", "after Redis is back: %d remaining %s", r.Status, r.Header.Get("X-RateLimit-Remaining"))
	// "Resumed" is logged once Redis has answered steadily, not at the
	// first answer of what may be a flapping server.
	mustf(t, !strings.Contains(a.Logs.String(), "shared limits resumed"), "recovery logged at the first answer")
	a.Clock.Advance(5 * time.Second)
	mustf(t, a.do(t, req).Status == 200, "second request after recovery")
	mustf(t, strings.Count(a.Logs.String(), "shared limits resumed") == 1, "recovery not logged once: %s", a.Logs.String())
	mustf(t, strings.Contains(a.scrape(t), "app_rate_limit_fallback 0"), "fallback gauge not cleared")
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	n, err := c.Exists(context.Background(), "rl:public:{192.0.2.1}").Result()
	mustf(t, err == nil && n == 1, "shared key not written: %d %v", n, err)
}

// Requests that fail authentication are anonymous traffic: a flood of bad
// tokens is limited per IP like the public routes, and answered 429.
func TestFailedAuthenticationIsLimitedPerIP(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	bad := Request{Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer not.a.token"}}
	counts, last := hammer(t, a, 100, bad)
	mustf(t, counts[401] == 100, "%v", counts)
	limitHeaders(t, last)
	assert429(t, a, a.do(t, bad), `"code":"rate_limited"`)
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me"}).Status == 429, "missing token not limited")
	// A valid token from the same IP is counted per user, not refused.
	r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
	mustf(t, r.Status == 200 && r.Header.Get("X-RateLimit-Limit") == "60", "valid token: %d %s", r.Status, r.Header.Get("X-RateLimit-Limit"))
}

// A Redis stall longer than the limiter's timeout: commands sent during it
// still run when it ends. Correct logins must not leave anything behind in
// the failed-login count (they only peek at it), so the next correct login
// after the stall is served, however many came during it.
func TestRedisStallDoesNotLockOutCorrectLogins(t *testing.T) {
	sharedRedis(t)
	port := freePort(t)
	startRedis(t, port)
	a := newApp(t, "REDIS_URL", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "RATE_LIMIT_REDIS_TIMEOUT", "50ms")
	u := newVerifiedUser(t, a)
	login := Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	mustf(t, c.Do(context.Background(), "CLIENT", "PAUSE", "400", "ALL").Err() == nil, "pause")
	for i := range 5 {
		mustf(t, a.do(t, login).Status == 200, "login %d during the stall", i)
	}
	time.Sleep(500 * time.Millisecond) // the stall ends; queued commands run
	a.Clock.Advance(2 * time.Second)   // past the fallback's pause
	r := a.do(t, login)
	mustf(t, r.Status == 200, "correct login after the stall: %d %s", r.Status, r.Body)
	n, err := c.HGet(context.Background(), "rl:login:{192.0.2.1}", "s").Int()
	mustf(t, errors.Is(err, redis.Nil) || (err == nil && n == 0), "failed-login count after correct logins only: %d %v", n, err)
}

// metricValue reads one unlabelled series from the app's scrape.
func metricValue(t testing.TB, a *App, name string) string {
	for _, l := range strings.Split(a.scrape(t), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// eventually polls cond every 50 ms for up to d.
func eventually(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf(format, args...)
		}
	}
}

// Slow is not down: one Redis reply slower than RATE_LIMIT_REDIS_TIMEOUT is
// decided on this instance alone, but the instance stays on Redis (it used
// to switch to memory, which starts afresh and grants the limit again).
func TestSlowRedisReplyDoesNotSwitchStores(t *testing.T) {
	sharedRedis(t)
	port := freePort(t)
	startRedis(t, port)
	a := newApp(t, "REDIS_URL", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "RATE_LIMIT_REDIS_TIMEOUT", "300ms", "RATE_LIMIT_PUBLIC", "10/1m")
	req := Request{Method: "GET", URL: "/public/status"}
	counts, _ := hammer(t, a, 4, req)
	mustf(t, counts[200] == 4, "before: %v", counts)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	mustf(t, c.Do(context.Background(), "CLIENT", "PAUSE", "1000", "WRITE").Err() == nil, "pause")
	r := a.do(t, req) // times out: decided locally, on the copy of the 4
	mustf(t, r.Status == 200 && r.Header.Get("X-RateLimit-Remaining") == "5", "during the slow reply: %d remaining %s", r.Status, r.Header.Get("X-RateLimit-Remaining"))
	time.Sleep(1100 * time.Millisecond) // the pause ends
	counts, last := hammer(t, a, 10, req)
	// Back on Redis's counts: 4 used, plus the timed-out call if Redis ran
	// it after all (a client that gave up closes its connection, and Redis
	// may drop the command unread). Memory alone would allow 5.
	mustf(t, (counts[200] == 5 || counts[200] == 6) && counts[200]+counts[429] == 10, "after the slow reply: %v (last %s)", counts, last.Header.Get("X-RateLimit-Remaining"))
	mustf(t, !strings.Contains(a.Logs.String(), "rate limit store unavailable"), "one slow reply switched stores: %s", a.Logs.String())
	mustf(t, metricValue(t, a, "app_rate_limit_fallback") == "0", "fallback gauge set by one slow reply")
}

// Redis goes down under three instances that saw each other in the
// heartbeat: each admits a third of the limit, so the deployment stays at
// the limit; the fallback gauge follows Redis with no traffic at all, down
// and back up.
func TestRedisDownEachInstanceAdmitsItsShare(t *testing.T) {
	sharedRedis(t)
	port := freePort(t)
	stop := startRedis(t, port)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	var apps []*App
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 3 {
		a := newApp(t, "REDIS_URL", url, "RATE_LIMIT_PUBLIC", "30/1m")
		go a.Server.Heartbeat(ctx)
		apps = append(apps, a)
	}
	for _, a := range apps {
		eventually(t, 5*time.Second, func() bool { return metricValue(t, a, "app_rate_limit_instances") == "3" },
			"instances never saw each other: %s", metricValue(t, a, "app_rate_limit_instances"))
	}
	stop()
	for _, a := range apps {
		eventually(t, 5*time.Second, func() bool { return metricValue(t, a, "app_rate_limit_fallback") == "1" },
			"an idle instance did not notice Redis going away")
	}
	total := 0
	for i, a := range apps {
		counts, _ := hammer(t, a, 20, Request{Method: "GET", URL: "/public/status"})
		mustf(t, counts[200] == 10 && counts[429] == 10, "instance %d while Redis is down: %v", i, counts)
		total += counts[200]
	}
	mustf(t, total == 30, "the deployment admitted %d of a limit of 30", total)
	startRedis(t, port)
	for _, a := range apps {
		a.Clock.Advance(6 * time.Second) // past the steady time
	}
	for _, a := range apps {
		eventually(t, 5*time.Second, func() bool {
			a.Clock.Advance(time.Second)
			return metricValue(t, a, "app_rate_limit_fallback") == "0"
		}, "an idle instance did not notice Redis coming back")
	}
	mustf(t, strings.Count(apps[0].Logs.String(), "rate limit store unavailable") == 1 &&
		strings.Count(apps[0].Logs.String(), "shared limits resumed") == 1, "outage log: %s", apps[0].Logs.String())
}

// A 429 follows the IETF RateLimit draft's problem type when the client
// asks for application/problem+json, naming the policy it exceeded, and
// keeps the API's error body otherwise.
func TestQuotaExceededProblem(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_TIERS", "free=2/1m,paid=600/1m,enterprise=3000/1m")
	u := a.user(t, caller.Viewer, caller.Free)
	for range 2 {
		mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)}).Status == 200, "within the limit")
	}
	problem := []string{`"type":"https://iana.org/assignments/http-problem-types#quota-exceeded"`, `"status":429`,
		`"violated-policies":["user"]`, `"code":"rate_limited"`, `"detail":"Too many requests"`}
	for _, c := range []struct {
		name, accept, contentType string
		want, not                 []string
	}{
		{"problem asked", "application/problem+json", "application/problem+json", problem, []string{`"error"`}},
		{"problem preferred", "application/json;q=0.5, application/problem+json", "application/problem+json", problem, nil},
		{"json asked", "application/json", "application/json", []string{`{"error":"Too many requests","code":"rate_limited"}`}, []string{"violated-policies"}},
		{"problem refused", "application/problem+json;q=0, */*", "application/json", []string{`"code":"rate_limited"`}, []string{"violated-policies"}},
		{"no Accept", "", "application/json", []string{`"code":"rate_limited"`}, []string{"violated-policies"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := bearer(u)
			h["Accept"] = c.accept
			r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: h})
			assert429(t, a, r, c.want[0])
			mustf(t, strings.HasPrefix(r.Header.Get("Content-Type"), c.contentType), "Content-Type %q", r.Header.Get("Content-Type"))
			for _, w := range c.want {
				mustf(t, strings.Contains(r.Body, w), "body %s lacks %s", r.Body, w)
			}
			for _, n := range c.not {
				mustf(t, !strings.Contains(r.Body, n), "body %s has %s", r.Body, n)
			}
		})
	}
}
