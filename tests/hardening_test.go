package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/services"
)

// Bad input never reaches the database as a 500: PostgreSQL refuses NUL in
// text (SQLite stores it), so one rule for every request body answers 400
// on both backends (401 for login: no account has such credentials).
func TestBadInputNeverA500(t *testing.T) {
	parallelTest(t)
	nul := "a\u0000b"
	scenarios := []Scenario{
		{Name: "NUL in a registration email", Method: "POST", URL: "/auth/register",
			Body: map[string]string{"email": "x" + nul + "@example.com", "password": testPassword}, ExpectedStatus: 400,
			ExpectedContent: []string{`"email":"must not contain NUL characters"`}},
		{Name: "NUL in a registration password", Method: "POST", URL: "/auth/register",
			Body: map[string]string{"email": "x@example.com", "password": testPassword + nul}, ExpectedStatus: 400,
			ExpectedContent: []string{`"password":"must not contain NUL characters"`}},
		{Name: "NUL in a login email", Method: "POST", URL: "/auth/login",
			Body: map[string]string{"email": "x" + nul + "@example.com", "password": testPassword}, ExpectedStatus: 401,
			ExpectedContent: []string{`"code":"invalid_credentials"`}},
		{Name: "NUL in a login password", Method: "POST", URL: "/auth/login", Setup: asRole("viewer"),
			Body: map[string]string{"email": "nobody@example.com", "password": nul}, ExpectedStatus: 401,
			ExpectedContent: []string{`"code":"invalid_credentials"`}},
		{Name: "NUL in a resend email", Method: "POST", URL: "/auth/verify/resend",
			Body: map[string]string{"email": nul}, ExpectedStatus: 400},
		{Name: "NUL in a refresh token", Method: "POST", URL: "/auth/refresh",
			Body: map[string]string{"refresh_token": nul}, ExpectedStatus: 400},
		{Name: "NUL in an API key name", Method: "POST", URL: "/api-keys", Headers: auth, Setup: asRole("viewer"),
			Body: map[string]any{"name": nul, "scopes": []string{"users:read"}}, ExpectedStatus: 400,
			ExpectedContent: []string{`"name":"must not contain NUL characters"`}},
		{Name: "invalid UTF-8 in an API key name is stored as U+FFFD", Method: "POST", URL: "/api-keys", Headers: auth, Setup: asRole("viewer"),
			Body: "{\"name\":\"caf\xe9\",\"scopes\":[\"users:read\"]}", ExpectedStatus: 201, ExpectedContent: []string{`"name":"caf` + "\uFFFD" + `"`}},
		// An access token outlives its account: the insert's foreign key
		// fails, and that is an authentication problem, not a server one.
		{Name: "a token whose user was deleted cannot create", Method: "POST", URL: "/api-keys", Headers: auth,
			Setup: deletedUser(caller.Editor), Body: map[string]any{"name": "orphan", "scopes": []string{"users:read"}}, ExpectedStatus: 401,
			ExpectedContent: []string{`"code":"account_not_found"`}},
		{Name: "a token whose user was deleted has no profile", Method: "GET", URL: "/users/me", Headers: auth,
			Setup: deletedUser(caller.Viewer), ExpectedStatus: 401, ExpectedContent: []string{`"code":"account_not_found"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}

func deletedUser(role caller.Role) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		u := a.user(t, role, caller.Free)
		mustf(t, a.DB.Exec("DELETE FROM users WHERE id = ?", u.ID).Error == nil, "delete user")
		return map[string]string{"token": u.Access}
	}
}

// User-Agent headers are the client's to fill: bytes that are not UTF-8,
// or a long value cut inside a character, are stored cleaned, never a 500.
func TestUserAgentIsStoredClean(t *testing.T) {
	parallelTest(t)
	for name, ua := range map[string]string{
		"not UTF-8":              "curl/8 \xff\xfe\x00 bot",
		"cut inside a character": strings.Repeat("a", 511) + "é" + strings.Repeat("b", 100),
	} {
		t.Run(name, func(t *testing.T) {
			a := newApp(t)
			u := a.user(t, caller.Viewer, caller.Free)
			r := a.do(t, Request{Method: "POST", URL: "/auth/login", Headers: map[string]string{"User-Agent": ua},
				Body: map[string]string{"email": u.Email, "password": u.Password}})
			mustf(t, r.Status == 200, "login: %d %s", r.Status, r.Body)
			r = a.do(t, Request{Method: "POST", URL: "/auth/refresh", Headers: map[string]string{"User-Agent": ua},
				Body: map[string]string{"refresh_token": field(t, r, "refresh_token")}})
			mustf(t, r.Status == 200, "refresh: %d %s", r.Status, r.Body)
			var stored []string
			a.DB.Model(&models.RefreshToken{}).Where("user_agent <> ''").Pluck("user_agent", &stored)
			mustf(t, len(stored) == 2, "stored %d user agents", len(stored))
			for _, s := range stored {
				mustf(t, utf8.ValidString(s) && len(s) <= 512 && !strings.ContainsRune(s, 0), "stored %q", s)
			}
		})
	}
}

// The database goes away: 503 service_unavailable with Retry-After, the
// outage logged once however many requests it refuses.
func TestDatabaseOutageIs503LoggedOnce(t *testing.T) {
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	a.DB.Close()
	for range 5 {
		r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
		mustf(t, r.Status == 503 && strings.Contains(r.Body, `"code":"service_unavailable"`), "%d %s", r.Status, r.Body)
		mustf(t, r.Header.Get("Retry-After") != "", "no Retry-After")
		mustf(t, !strings.Contains(r.Body, "sql"), "cause leaked: %s", r.Body)
	}
	logs := a.Logs.String()
	mustf(t, strings.Count(logs, "database unavailable") == 1, "outage logged %d times: %s", strings.Count(logs, "database unavailable"), logs)
	mustf(t, !strings.Contains(logs, `"msg":"request failed"`), "logged as a server error: %s", logs)
}

// A frozen PostgreSQL (it accepts connections and never answers) must not
// hang requests: the request deadline answers 504, and when the database
// thaws the same process serves again without a restart.
func TestFrozenDatabaseTimesOutAndRecovers(t *testing.T) {
	a, proxy, u := appBehindProxy(t, "REQUEST_TIMEOUT", "500ms")
	mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)}).Status == 200, "before the freeze")

	proxy.freeze(true)
	start := time.Now()
	r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
	mustf(t, r.Status == 504 && strings.Contains(r.Body, `"code":"request_timeout"`), "frozen: %d %s", r.Status, r.Body)
	mustf(t, time.Since(start) < 5*time.Second, "a frozen database held the request %v", time.Since(start))
	// The timeout makes the monitor ping: the frozen database is an outage,
	// logged once and in the metrics, not only a string of 504s.
	eventually(t, 5*time.Second, func() bool { return strings.Contains(a.Logs.String(), "database not answering") },
		"a frozen database was never logged as an outage: %s", a.Logs.String())
	mustf(t, strings.Contains(a.scrape(t), `app_dependency_up{dependency="database"} 0`), "frozen database not in the metrics")

	proxy.freeze(false)
	recovers(t, a, u)
	eventually(t, 5*time.Second, func() bool { return strings.Contains(a.Logs.String(), "database reachable again") },
		"the end of the freeze was not logged")
	mustf(t, strings.Count(a.Logs.String(), "database not answering") == 1, "freeze logged more than once: %s", a.Logs.String())
}

// recovers waits up to five seconds for the same process to serve u's
// GET /users/me again, without a restart.
func recovers(t *testing.T, a *App, u *User) {
	t.Helper()
	var last *Response
	for i := 0; i < 50; i++ {
		if last = a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)}); last.Status == 200 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no recovery: %d %s", last.Status, last.Body)
}

// PostgreSQL goes away (connections cut, new ones refused) and comes
// back: 503 with Retry-After meanwhile, logged once, and served again
// without a restart, with the recovery logged.
func TestDatabaseOutageRecoversWithoutRestart(t *testing.T) {
	a, proxy, u := appBehindProxy(t, "DB_CONNECT_TIMEOUT", "1s")
	proxy.cut(true)
	for range 3 {
		r := a.do(t, Request{Method: "GET", URL: "/users/me", Headers: bearer(u)})
		mustf(t, r.Status == 503 && r.Header.Get("Retry-After") != "", "during the outage: %d %s", r.Status, r.Body)
	}
	mustf(t, a.do(t, Request{Method: "GET", URL: "/readyz"}).Status == 503, "ready without a database")
	proxy.cut(false)
	recovers(t, a, u)
	for i := 0; !strings.Contains(a.Logs.String(), "database reachable again") && i < 50; i++ {
		time.Sleep(100 * time.Millisecond) // the monitor's probe runs every second
	}
	logs := a.Logs.String()
	mustf(t, strings.Count(logs, "database unavailable") == 1 && strings.Count(logs, "database reachable again") == 1, "outage log: %s", logs)
}

// appBehindProxy builds an app whose PostgreSQL connections go through a
// proxy the test can freeze or cut, and a logged-in viewer. SQLite is a
// file: it cannot stall or go away like a server, so these tests need
// TEST_DATABASE_URL (CI sets it).
func appBehindProxy(t *testing.T, env ...string) (*App, *freezeProxy, *User) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("needs PostgreSQL (TEST_DATABASE_URL)")
	}
	base, err := url.Parse(openTestDBURL(t))
	mustf(t, err == nil, "%v", err)
	proxy := newFreezeProxy(t, base.Host)
	base.Host = proxy.addr
	a := newApp(t, append([]string{"DATABASE_URL", base.String()}, env...)...)
	return a, proxy, a.user(t, caller.Viewer, caller.Free)
}

// freezeProxy forwards TCP to a PostgreSQL server and can stop forwarding
// (both ways) without closing anything, like a stalled server, or cut every
// connection and refuse new ones, like a server that went away.
type freezeProxy struct {
	addr   string
	mu     sync.Mutex
	frozen bool
	down   bool
	conns  []net.Conn
	thaw   chan struct{}
}

func (p *freezeProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	mustf(t, err == nil, "%v", err)
	t.Cleanup(func() { l.Close() })
	p := &freezeProxy{addr: l.Addr().String(), thaw: make(chan struct{})}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.pipe(c, up)
			go p.pipe(up, c)
		}
	}()
	return p
}

func (p *freezeProxy) freeze(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen && !on {
		close(p.thaw)
		p.thaw = make(chan struct{})
	}
	p.frozen = on
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		frozen, thaw := p.frozen, p.thaw
		p.mu.Unlock()
		if frozen {
			<-thaw
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Purge deletes what no request needs again, and keeps what reuse
// detection still needs.
func TestPurge(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	ctx := context.Background()
	// An unverified sign-up, a login that rotated once and one that logged out.
	mustf(t, register(t, a, "stale@example.com").Status == 202, "register")
	u := a.user(t, caller.Viewer, caller.Free)
	rotated := refresh(t, a, u.Refresh)
	mustf(t, rotated.Status == 200, "refresh")
	other := &User{Email: u.Email, Password: u.Password}
	a.login(t, other)
	mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": other.Refresh}}).Status == 204, "logout")

	purge := services.NewPurge(a.DB.DB, a.Clock, slog.New(slog.DiscardHandler), metrics.New(), a.Config.EmailVerificationTTL)
	n, err := purge.Run(ctx)
	mustf(t, err == nil && n == (services.Purged{}), "nothing is stale yet: %+v %v", n, err)
	var kept int64
	a.DB.Model(&models.RefreshToken{}).Where("successor_secret IS NOT NULL").Count(&kept)
	mustf(t, kept == 1, "the rotated token keeps its successor for the grace period: %d", kept)

	a.Clock.Advance(25 * time.Hour) // past the verification TTL and the dead-family retention
	n, err = purge.Run(ctx)
	mustf(t, err == nil && n.UnverifiedUsers == 1 && n.VerificationTokens == 1 && n.RefreshTokens == 1, "after a day: %+v %v", n, err)
	a.DB.Model(&models.RefreshToken{}).Where("successor_secret IS NOT NULL").Count(&kept)
	mustf(t, kept == 0, "a successor sealed a day ago is still kept")
	// The rotated-out token of a live family stays: reuse is still caught.
	r := refresh(t, a, u.Refresh)
	mustf(t, r.Status == 401 && strings.Contains(r.Body, "refresh_token_reused"), "reuse after purge: %d %s", r.Status, r.Body)
	// The address is free again.
	mustf(t, register(t, a, "stale@example.com").Status == 202, "re-register after purge")

	a.Clock.Advance(7 * 24 * time.Hour)
	n, err = purge.Run(ctx)
	mustf(t, err == nil && n.RefreshTokens == 2, "after expiry: %+v %v", n, err)
	var left int64
	a.DB.Model(&models.RefreshToken{}).Count(&left)
	mustf(t, left == 0, "%d refresh tokens left", left)

	// Delivered mail goes after 30 days; mail still pending never does.
	a.sent(t)
	register(t, a, "late@example.com")
	a.Clock.Advance(31 * 24 * time.Hour)
	n, err = purge.Run(ctx)
	var pending int64
	a.DB.Model(&models.OutboxMail{}).Where("status = ?", "pending").Count(&pending)
	mustf(t, err == nil && n.Mail == 2 && pending == 1, "old mail: %+v %v, %d pending", n, err, pending)
}

// Correct logins in parallel from one address are all served: only
// failures count against the failed-login limit, after the fact.
func TestParallelCorrectLoginsAreNotRefused(t *testing.T) {
	a := newApp(t)
	u := newVerifiedUser(t, a)
	statuses := parallel(20, func(int) *Response {
		return a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	})
	mustf(t, statuses[200] == 20, "20 parallel correct logins: %v", statuses)
	// The 21st attempt in the minute meets the all-attempts limit, which
	// says so (not "too many login attempts", which is about failures).
	r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	assert429(t, a, r, `"code":"rate_limited"`)
	mustf(t, strings.Contains(r.Header.Get("RateLimit-Policy"), `"login_ip"`), "policy %v", r.Header.Values("RateLimit-Policy"))
}

// Every attempt counts against RATE_LIMIT_LOGIN_IP: failures, successes,
// and logins to accounts that are not verified yet (403).
func TestEveryLoginAttemptCountsPerIP(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_LOGIN_IP", "4/1m")
	mustf(t, register(t, a, "new@example.com").Status == 202, "register")
	u := newVerifiedUser(t, a)
	for i, req := range []map[string]string{
		{"email": "new@example.com", "password": testPassword}, // 403 unverified
		{"email": u.Email, "password": u.Password},             // 200
		{"email": u.Email, "password": "Wrong-Pass-99"},        // 401
		{"email": "new@example.com", "password": testPassword}, // 403
	} {
		r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: req})
		mustf(t, r.Status == []int{403, 200, 401, 403}[i], "attempt %d: %d %s", i, r.Status, r.Body)
	}
	assert429(t, a, a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}}), `"code":"rate_limited"`)
}

// With one hash slot and a short wait, a burst of logins is served or
// told to come back: 200 or 503 server_busy with Retry-After, nothing else.
// Not parallel: the one hash let through must finish within the request
// timeout, at cost 10, under -race too.
func TestPasswordHashingIsBounded(t *testing.T) {
	a := newApp(t, "BCRYPT_COST", "10", "PASSWORD_HASH_CONCURRENCY", "1", "PASSWORD_HASH_MAX_WAIT", "5ms",
		"RATE_LIMIT_LOGIN_IP", "1000/1m")
	u := newVerifiedUser(t, a)
	var mu sync.Mutex
	var busy []*Response
	statuses := parallel(8, func(int) *Response {
		r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
		if r.Status == 503 {
			mu.Lock()
			busy = append(busy, r)
			mu.Unlock()
		}
		return r
	})
	mustf(t, statuses[200]+statuses[503] == 8 && statuses[200] >= 1 && statuses[503] >= 1, "statuses %v", statuses)
	for _, r := range busy {
		mustf(t, strings.Contains(r.Body, `"code":"server_busy"`) && r.Header.Get("Retry-After") == "1", "busy answer: %v %s", r.Header, r.Body)
	}
	scrape := a.scrape(t)
	mustf(t, strings.Contains(scrape, `app_login_attempts_total{outcome="busy"} `+strconv.Itoa(statuses[503])), "busy not counted: %s", grep(scrape, "login_attempts"))
	mustf(t, strings.Contains(scrape, "app_password_hashes_in_flight 0") && strings.Contains(scrape, "app_password_hashes_waiting 0"), "gauges: %s", grep(scrape, "password_hashes"))
}

// IPv6 clients are limited per /64: a host owns the whole prefix.
func TestIPv6ClientsAreLimitedPerSlash64(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_PUBLIC", "3/1m")
	get := func(addr string) *Response {
		return a.do(t, Request{Method: "GET", URL: "/public/status", RemoteAddr: addr})
	}
	for i := 1; i <= 3; i++ {
		mustf(t, get(fmt.Sprintf("[2001:db8:1:2::%x]:1000", i)).Status == 200, "request %d", i)
	}
	mustf(t, get("[2001:db8:1:2:ffff::9]:1000").Status == 429, "another address in the same /64 got a fresh limit")
	mustf(t, get("[2001:db8:1:3::1]:1000").Status == 200, "the next /64 is someone else")
	mustf(t, get("198.51.100.7:1").Status == 200, "IPv4 clients are keyed by address")
}

// /metrics: the app's series, route templates (never raw unknown paths)
// as labels, and outcomes of logins and limits.
func TestMetrics(t *testing.T) {
	parallelTest(t)
	a := newApp(t)
	u := a.user(t, caller.Viewer, caller.Free)
	a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": "Wrong-Pass-99"}})
	a.do(t, Request{Method: "DELETE", URL: "/api-keys/" + "00000000-0000-4000-8000-000000000000", Headers: bearer(u)})
	a.do(t, Request{Method: "GET", URL: "/scanner-probe-4f2a/wp-admin.php"})
	a.do(t, Request{Method: "PUT", URL: "/scanner-probe-4f2a"})
	mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/logout", Body: map[string]string{"refresh_token": u.Refresh}}).Status == 204, "logout")
	s := a.scrape(t)
	for _, want := range []string{
		`app_login_attempts_total{outcome="success"} 1`,
		`app_login_attempts_total{outcome="invalid_credentials"} 1`,
		`app_rate_limit_decisions_total{policy="login",result="allowed"} 1`,
		`app_rate_limit_decisions_total{policy="user",result="allowed"} 1`,
		`url="/api-keys/:id"`, `app_http_requests_total{code="404"`,
		"app_refresh_token_reuse_total 0", "app_rate_limit_memory_keys ", "app_rate_limit_memory_counters ",
		"app_ended_sessions_held 1", // the session logged out
		"app_db_connections_max ", "app_db_connection_waits_total ", "app_password_hashes_in_flight 0", "go_goroutines ",
	} {
		mustf(t, strings.Contains(s, want), "scrape lacks %q:\n%s", want, grep(s, "app_"))
	}
	mustf(t, !strings.Contains(s, "scanner-probe"), "an unknown path became a label value")
	mustf(t, !strings.Contains(s, `host="example.com"`), "the Host header became a label value")
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// newVerifiedUser creates a verified viewer without logging in.
func newVerifiedUser(t testing.TB, a *App) *User {
	t.Helper()
	email := randomName("v-") + "@example.com"
	created, err := services.NewUsers(a.DB.DB, a.Clock, services.NewHasher(a.Config.BcryptCost, 2, time.Minute)).Create(context.Background(),
		services.NewUser{Email: email, Password: testPassword, Role: caller.Viewer, Tier: caller.Free, EmailVerified: true})
	mustf(t, err == nil, "%v", err)
	return &User{ID: created.ID.String(), Email: email, Password: testPassword}
}

// parallel runs n calls at once and counts the statuses.
func parallel(n int, call func(i int) *Response) map[int]int {
	counts := map[int]int{}
	for _, r := range atOnce(n, call) {
		counts[r.Status]++
	}
	return counts
}

// The purge also removes what piled up before: spent reset tokens and MFA
// challenges (after a day), API keys revoked 30 days ago, and keeps what
// may still be used.
func TestPurgeRemovesSpentTokensChallengesAndOldKeys(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_FORGOT_ACCOUNT", "100/1h")
	u := a.user(t, caller.Editor, caller.Free)
	for range 2 { // the second replaces the first
		mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": u.Email}}).Status == 202, "forgot")
	}
	now := a.Clock.Now()
	uid := uuid.MustParse(u.ID)
	mustf(t, a.DB.Create(&models.MFAChallenge{ID: uuid.New(), UserID: uid, TokenHash: randomName("h"), ExpiresAt: now.Add(5 * time.Minute), CreatedAt: now}).Error == nil, "challenge")
	created := a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: bearer(u), Body: map[string]any{"name": "old", "scopes": []string{"users:read"}}})
	mustf(t, created.Status == 201, "create key: %d %s", created.Status, created.Body)
	kept := a.do(t, Request{Method: "POST", URL: "/api-keys", Headers: bearer(u), Body: map[string]any{"name": "kept", "scopes": []string{"users:read"}}})
	mustf(t, kept.Status == 201, "create key: %d %s", kept.Status, kept.Body)
	mustf(t, a.do(t, Request{Method: "DELETE", URL: "/api-keys/" + field(t, created, "id"), Headers: bearer(u)}).Status == 204, "revoke")

	purge := a.Server.Services.Purge // what PURGE_INTERVAL and `tollgate purge` run
	n, err := purge.Run(context.Background())
	mustf(t, err == nil && n.ResetTokens == 0 && n.MFAChallenges == 0 && n.APIKeys == 0, "nothing spent long enough: %+v %v", n, err)
	a.Clock.Advance(25 * time.Hour)
	n, err = purge.Run(context.Background())
	// The reset token expired 30 minutes in: spent, a day on.
	mustf(t, err == nil && n.ResetTokens == 1 && n.MFAChallenges == 1 && n.APIKeys == 0, "after a day: %+v %v", n, err)
	a.Clock.Advance(30 * 24 * time.Hour)
	n, err = purge.Run(context.Background())
	mustf(t, err == nil && n.APIKeys == 1, "after 30 days: %+v %v", n, err)
	var keys int64
	mustf(t, a.Rows(t).Model(&models.APIKey{}).Count(&keys).Error == nil && keys == 1, "%d keys left, want the live one", keys)
}

// Every answer carrying a token or personal data says Cache-Control:
// no-store, errors and refusals included (one middleware, declared at the
// routes), so no browser or proxy cache keeps it.
func TestTokenAndPersonalAnswersAreNeverCached(t *testing.T) {
	parallelTest(t)
	noStore := map[string]string{"Cache-Control": "no-store"}
	withUser := func(t testing.TB, a *App) map[string]string {
		u := a.user(t, caller.Admin, caller.Free)
		return map[string]string{"token": u.Access, "refresh": u.Refresh, "email": u.Email}
	}
	scenarios := []Scenario{
		{Name: "login", Method: "POST", URL: "/auth/login", Setup: withUser, Body: map[string]string{"email": "{email}", "password": testPassword},
			ExpectedStatus: 200, ExpectedHeaders: noStore},
		{Name: "a failed login", Method: "POST", URL: "/auth/login", Body: map[string]string{"email": "x@example.com", "password": "Wrong-Pass-123"},
			ExpectedStatus: 401, ExpectedHeaders: noStore},
		{Name: "refresh", Method: "POST", URL: "/auth/refresh", Setup: withUser, Body: map[string]string{"refresh_token": "{refresh}"},
			ExpectedStatus: 200, ExpectedHeaders: noStore},
		{Name: "MFA verify", Method: "POST", URL: "/auth/mfa/verify", Body: map[string]string{"mfa_token": "x", "code": "123456"},
			ExpectedStatus: 401, ExpectedHeaders: noStore},
		{Name: "the token endpoint", Method: "POST", URL: "/oauth/token", Body: "grant_type=client_credentials",
			Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, ExpectedStatus: 401, ExpectedHeaders: noStore},
		{Name: "/users/me", Method: "GET", URL: "/users/me", Setup: withUser, Headers: auth, ExpectedStatus: 200, ExpectedHeaders: noStore},
		{Name: "sessions", Method: "GET", URL: "/users/me/sessions", Setup: withUser, Headers: auth, ExpectedStatus: 200, ExpectedHeaders: noStore},
		{Name: "API keys", Method: "GET", URL: "/api-keys", Setup: withUser, Headers: auth, ExpectedStatus: 200, ExpectedHeaders: noStore},
		{Name: "a new API key", Method: "POST", URL: "/api-keys", Setup: withUser, Headers: auth, Body: readKey, ExpectedStatus: 201, ExpectedHeaders: noStore},
		{Name: "the users list", Method: "GET", URL: "/admin/users", Setup: withUser, Headers: auth, ExpectedStatus: 200, ExpectedHeaders: noStore},
		{Name: "a refused token", Method: "GET", URL: "/users/me", Headers: map[string]string{"Authorization": "Bearer nope"}, ExpectedStatus: 401, ExpectedHeaders: noStore},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}
