// Package tests drives the real router over HTTP. Every test gets its own
// app with its own database (a copy of a migrated SQLite file, or a
// PostgreSQL database cloned from a migrated template when
// TEST_DATABASE_URL is set), a manual clock and an in-memory
// mailer, so tests never see each other's data.
package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the admin pool
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/database"
	"github.com/tollgate/tollgate/mail"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/server"
	"github.com/tollgate/tollgate/services"
	"github.com/tollgate/tollgate/settings"
)

// keyDir is the run's directory: its key pair and the tests' SQLite files.
var keyDir string

// testPepper is the API key pepper of this run (one secret, made once).
var testPepper = randomName("pepper-") + randomName("") + randomName("")

func TestMain(m *testing.M) {
	// The tests wait far more than they compute (database round trips,
	// sockets, timers), so more of them run at once than there are cores:
	// 4 per core unless -parallel says otherwise.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(4*runtime.GOMAXPROCS(0)))
	}
	dir, err := os.MkdirTemp("", "tollgate-keys-")
	if err != nil {
		panic(err)
	}
	keyDir = dir
	// The SQLite template migrates while the run's key pair is generated:
	// both are on the path of every test.
	if os.Getenv("TEST_DATABASE_URL") == "" {
		go func() { _, _ = sqliteTemplate() }()
	}
	// One key pair for the whole run: RSA generation is slow.
	if err := services.GenerateKeyPair(filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem"), false); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	closePostgres()
	os.Exit(code)
}

// Start is where every test clock begins.
var Start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// App is one isolated instance of the API.
type App struct {
	Config  settings.Config
	Clock   *clock.Manual
	Mailer  *mail.Memory
	DB      *database.DB
	Keys    *services.KeySet
	Server  *server.Server
	Handler http.Handler
	Logs    *syncBuffer
	// DNS answers the TXT lookups that prove org domains.
	DNS *fakeDNS
	// Redis and RedisPrefix are set when the limits run on TEST_REDIS_URL.
	Redis       *redis.Client
	RedisPrefix string

	owner     sync.Once
	ownerView *gorm.DB
	// currentTeam is the team a scenario's setup made (tests/sso_test.go).
	currentTeam *Team
}

// testAppRole is the PostgreSQL role the tests' apps connect as: it owns
// nothing, so row-level security binds it as it binds a deployment's
// (TEST_DATABASE_URL's role, a superuser, migrates and owns the tables).
const testAppRole = "tollgate_app"

// Rows is the database as the tables' owner sees it, past row-level
// security: for a test that seeds or inspects rows the app's own role
// may not see outside an organization's scope. On SQLite it is a.DB.
func (a *App) Rows(t testing.TB) *gorm.DB {
	t.Helper()
	a.owner.Do(func() {
		a.ownerView = a.DB.DB
		if a.DB.Dialect != "postgres" {
			return
		}
		var name string
		mustf(t, a.DB.Raw("SELECT current_database()").Row().Scan(&name) == nil, "current database")
		db, err := database.Open(database.Options{PostgresURL: postgresURL(t, name), MaxOpenConns: 2})
		mustf(t, err == nil, "open as owner: %v", err)

		t.Cleanup(func() { db.Close() })
		a.ownerView = db.DB
	})
	return a.ownerView
}

// redisClient connects like the binary does and fails the test when the
// server does not answer.
func redisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// newApp builds an app; env overrides configuration variables.
func newApp(t testing.TB, env ...string) *App {
	t.Helper()
	return newAppOn(t, nil, nil, env...)
}

// sibling is another instance on a's database and clock, configured with
// env (a's own settings are not carried over).
func (a *App) sibling(t testing.TB, env ...string) *App {
	t.Helper()
	return newAppOn(t, a.DB, a.Clock, env...)
}

// newAppOn builds an app; a nil db or clock makes fresh ones.
func newAppOn(t testing.TB, db *database.DB, clk *clock.Manual, env ...string) *App {
	t.Helper()
	environ := map[string]string{
		"BCRYPT_COST":          "4", // bcrypt's minimum: the policy is what is tested, not the cost
		"JWT_PRIVATE_KEY_FILE": filepath.Join(keyDir, "private.pem"),
		"JWT_PUBLIC_KEY_FILE":  filepath.Join(keyDir, "public.pem"),
		"APP_BASE_URL":         "http://tollgate.test",
		"API_KEY_PEPPER":       testPepper,
		"AUDIT_KEY":            testPepper + "-audit",
		"MFA_KEY":              testPepper + "-mfa",
		// Where a secret given no value would be read (or, in development,
		// written): the run's directory, never the repository's config/.
		"API_KEY_PEPPER_FILE": filepath.Join(keyDir, "api-key-pepper"),
		"MFA_KEY_FILE":        filepath.Join(keyDir, "mfa-key"),
		"AUDIT_KEY_FILE":      filepath.Join(keyDir, "audit-key"),
	}
	for i := 0; i+1 < len(env); i += 2 {
		environ[env[i]] = env[i+1]
	}
	cfg, err := settings.Load(environ)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	migrate := true // but a copy of the migrated template needs none
	switch {
	case db != nil:
	case cfg.DatabaseURL != "":
		// A test that routes the database through something of its own.
		db, err = database.Open(database.Options{PostgresURL: cfg.DatabaseURL, MaxOpenConns: 4,
			ConnectTimeout: cfg.DBConnectTimeout, StatementTimeout: cfg.DBStatementTimeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
	default:
		db, migrate = openTestDB(t), false
	}
	if clk == nil {
		clk = clock.NewManual(Start)
	}
	if migrate {
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The secrets, Redis and the mail transport as the binary gets them
	// (server.Open); the database, clock and mail store are the test's.
	secrets, err := server.LoadSecrets(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	a := &App{Config: cfg, Clock: clk, Mailer: &mail.Memory{}, DB: db, Keys: secrets.Keys, Logs: logs, DNS: &fakeDNS{records: map[string][]string{}}}
	var rdb redis.UniversalClient // stays a nil interface without REDIS_URL
	if cfg.RedisURL != "" {
		// One server, a Cluster or Sentinels.
		if rdb, _, err = server.OpenRedis(cfg.RedisURL, cfg.RedisMode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
	}
	var store ratelimit.Store
	if url := os.Getenv("TEST_REDIS_URL"); url != "" && cfg.RedisURL == "" {
		// Shared limits on the real Redis, under a prefix of this test's own,
		// on the test's clock so windows can be crossed without sleeping.
		a.Redis = redisClient(t, url)
		a.RedisPrefix = randomName("test:") + ":"
		store = ratelimit.NewFallback(ratelimit.NewRedis(a.Redis, a.RedisPrefix, time.Second).WithClock(a.Clock),
			ratelimit.NewMemory(a.Clock, 0), a.Clock, log, ratelimit.FallbackConfig{})
	}
	var mailer mail.Mailer = a.Mailer
	if cfg.SMTPURL != "" {
		// A test of delivery itself: a real SMTP client against a relay of
		// the test's making.
		if mailer, err = server.NewMailer(cfg, log); err != nil {
			t.Fatal(err)
		}
	}
	a.Server, err = server.New(server.Deps{
		Config: cfg, DB: db, Redis: rdb, Secrets: secrets, Clock: a.Clock, Mailer: mailer, Log: log, RateStore: store, Resolver: a.DNS,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Server.Close)
	a.Handler = a.Server.Handler()
	return a
}

// parallelTest runs the test beside the other parallel ones: every app has a
// database of its own (a copy of a migrated SQLite file, or a PostgreSQL
// database cloned from a migrated template) and a Redis key prefix of its
// own.
func parallelTest(t *testing.T) { t.Parallel() }

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// openTestDB gives the test a database nobody else uses.
func openTestDB(t testing.TB) *database.DB {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		// A copy of a file migrated once per run: migrating every test's
		// database took most of the suite's time.
		tmpl, err := sqliteTemplate()
		if err != nil {
			t.Fatalf("template database: %v", err)
		}
		// In the run's directory (removed at exit): a directory per test
		// cost more system time than the copy.
		path := filepath.Join(keyDir, randomName("db-")+".db")
		if err := os.WriteFile(path, tmpl, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := database.Open(database.Options{SQLitePath: path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			db.Close()
			for _, suffix := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(path + suffix)
			}
		})
		return db
	}
	db, err := database.Open(database.Options{PostgresURL: openTestDBURL(t), MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqliteTemplate is a migrated SQLite database file's bytes, made once per
// test binary. Closing it checkpoints the WAL, so the file is complete.
var sqliteTemplate = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "tollgate-template-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "template.db")
	db, err := database.Open(database.Options{SQLitePath: path})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
})

// openTestDBURL gives the test a fresh database on TEST_DATABASE_URL's
// server, cloned from a template migrated once per run, and drops it when
// the test ends. Migrating every test's schema took most of the suite's
// time, and queued the tests behind one another on goose's advisory
// lock; a clone takes no lock.
func openTestDBURL(t testing.TB) string {
	t.Helper()
	name, err := postgresDatabases().take()
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	// Registered first, so it runs after the app closed its pool.
	t.Cleanup(func() { postgresDatabases().drop(name) })
	u, err := url.Parse(postgresURL(t, name))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(testAppRole)
	return u.String()
}

// postgresURL is TEST_DATABASE_URL pointing at another database.
func postgresURL(t testing.TB, name string) string {
	u, err := url.Parse(os.Getenv("TEST_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// ownerURL is a test database's URL as the tables' owner
// (TEST_DATABASE_URL's role) instead of testAppRole.
func ownerURL(t testing.TB, appURL string) string {
	u, err := url.Parse(appURL)
	if err != nil {
		t.Fatal(err)
	}
	return postgresURL(t, strings.TrimPrefix(u.Path, "/"))
}

// databaseFactory makes the tests' databases a few ahead of need and drops
// them in the background: a CREATE or DROP DATABASE takes tens of
// milliseconds of PostgreSQL's time that the tests need not wait for.
type databaseFactory struct {
	err      error // set up failed: every take returns it
	admin    *sql.DB
	template string
	ready    chan string
	failed   chan error
	drops    chan string
	quit     chan struct{}
	made     chan struct{} // closed when the maker has stopped
	dropped  chan struct{} // closed when every drop is done
}

// postgresDatabases starts the run's factory: it migrates the template
// first (a database every test's database copies).
var postgresDatabases = sync.OnceValue(func() *databaseFactory {
	f := &databaseFactory{ready: make(chan string, 2), failed: make(chan error), drops: make(chan string, 1024),
		quit: make(chan struct{}), made: make(chan struct{}), dropped: make(chan struct{})}
	f.admin, f.err = sql.Open("pgx", os.Getenv("TEST_DATABASE_URL"))
	if f.err == nil {
		f.err = f.admin.Ping()
	}
	if f.err == nil {
		f.sweep()
		f.err = f.ensureAppRole()
	}
	if f.err == nil {
		f.template, f.err = f.migrateTemplate()
	}
	if f.err != nil {
		return f
	}
	go f.make()
	go func() {
		// FORCE ends any connection a failed test left behind.
		for name := range f.drops {
			_, _ = f.admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		}
		close(f.dropped)
	}()
	return f
})

func (f *databaseFactory) make() {
	defer close(f.made)
	for {
		name := testDatabaseName("t")
		if _, err := f.admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + f.template); err != nil {
			select {
			case f.failed <- err:
				continue
			case <-f.quit:
				return
			}
		}
		select {
		case f.ready <- name:
		case <-f.quit:
			f.drops <- name
			return
		}
	}
}

// testDatabaseName stamps the creation time into the name, so a later run
// can tell a database a killed run left behind from one a run in progress
// is using.
func testDatabaseName(prefix string) string {
	return randomName(fmt.Sprintf("%s_%d_", prefix, time.Now().Unix()))
}

// sweep drops databases that runs killed before their cleanup left behind:
// any of this suite's names stamped more than an hour ago.
func (f *databaseFactory) sweep() {
	rows, err := f.admin.Query(`SELECT datname FROM pg_database WHERE datname ~ '^(t|tollgate_template)_[0-9]+_[0-9a-f]+$'`)
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) != nil {
			continue
		}
		parts := strings.Split(name, "_")
		stamp, err := strconv.ParseInt(parts[len(parts)-2], 10, 64)
		if err == nil && time.Since(time.Unix(stamp, 0)) > time.Hour {
			stale = append(stale, name)
		}
	}
	_ = rows.Close()
	for _, name := range stale {
		_, _ = f.admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	}
}

func (f *databaseFactory) take() (string, error) {
	if f.err != nil {
		return "", f.err
	}
	select {
	case name := <-f.ready:
		return name, nil
	case err := <-f.failed:
		return "", err
	}
}

func (f *databaseFactory) drop(name string) { f.drops <- name }

func (f *databaseFactory) migrateTemplate() (string, error) {
	name := testDatabaseName("tollgate_template")
	if _, err := f.admin.Exec("CREATE DATABASE " + name); err != nil {
		return "", err
	}
	u, err := url.Parse(os.Getenv("TEST_DATABASE_URL"))
	if err != nil {
		return name, err
	}
	u.Path = "/" + name
	owner := u.String()
	u.User = url.User(testAppRole)
	db, err := database.Open(database.Options{PostgresURL: u.String(), MaxOpenConns: 1})
	if err != nil {
		return name, err
	}
	// As a deployment does: migrations as the owner, then the grants to
	// the app's role.
	_, err = server.Migrate(context.Background(), settings.Config{DatabaseOwnerURL: owner}, db)
	// A template must have no connections while it is copied: Close waits
	// for the pool's to end.
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return name, err
}

// ensureAppRole creates testAppRole once per server (roles are not per
// database); two runs racing to create it both succeed.
func (f *databaseFactory) ensureAppRole() error {
	_, err := f.admin.Exec(`DO $$ BEGIN
		CREATE ROLE ` + testAppRole + ` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
	EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
	END $$`)
	return err
}

// closePostgres drops what the run made: the databases the tests gave back,
// the ones made ahead and never used, and the template.
func closePostgres() {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		return
	}
	f := postgresDatabases()
	if f.admin == nil {
		return
	}
	if f.err == nil {
		close(f.quit)
		<-f.made
		close(f.ready)
		for name := range f.ready {
			f.drops <- name
		}
		close(f.drops)
		<-f.dropped
	}
	if f.template != "" {
		_, _ = f.admin.Exec("DROP DATABASE IF EXISTS " + f.template + " WITH (FORCE)")
	}
	_ = f.admin.Close()
}

func settingsVariables() []string { return settings.Variables() }

// scrape returns the app's Prometheus exposition.
// The app's own series are named under "app_" here, whatever the product
// is called (metrics.Namespace), so a renamed fork's tests still read them.
func (a *App) scrape(t testing.TB) string {
	t.Helper()
	w := httptest.NewRecorder()
	a.Server.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	mustf(t, w.Code == 200, "metrics: %d", w.Code)
	body := w.Body.String()
	mustf(t, strings.Contains(body, "\n"+metrics.Namespace+"_"), "no series under %s_", metrics.Namespace)
	return strings.ReplaceAll(body, metrics.Namespace+"_", "app_")
}

// Response is a recorded answer.
type Response struct {
	Status int
	Header http.Header
	Body   string
	vals   map[string]string // a scenario's Setup values, for After
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// Request describes one call.
type Request struct {
	Method     string
	URL        string
	Body       any // string is sent as is; anything else as JSON
	Headers    map[string]string
	RemoteAddr string
}

// do sends req through the full middleware chain and router.
func (a *App) do(t testing.TB, req Request) *Response {
	t.Helper()
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	r := httptest.NewRequest(req.Method, req.URL, body)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range req.Headers {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	if req.RemoteAddr != "" {
		r.RemoteAddr = req.RemoteAddr
	}
	w := httptest.NewRecorder()
	a.Handler.ServeHTTP(w, r)
	// Result().Header is what went out with the status line: headers set
	// after the answer was written never reach a real client.
	return &Response{Status: w.Code, Header: w.Result().Header, Body: w.Body.String()}
}

// atOnce runs f(0..n-1) at once and returns the answers in order.
func atOnce(n int, f func(i int) *Response) []*Response {
	out := make([]*Response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// Scenario is one row of an endpoint's table, PocketBase style.
type Scenario struct {
	Name            string
	Method          string
	URL             string
	Body            any
	Headers         map[string]string
	RemoteAddr      string                                       // the client's address (default 192.0.2.1:1234)
	Env             []string                                     // configuration overrides for this scenario's app
	Setup           func(t testing.TB, a *App) map[string]string // returns values for {placeholders} in URL, body and headers
	ExpectedStatus  int
	ExpectedContent []string // fragments the body must contain
	NotExpected     []string // fragments it must not contain
	ExpectedHeaders map[string]string
	After           func(t testing.TB, a *App, r *Response)
}

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

func fill(s string, vals map[string]string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vals[strings.Trim(m, "{}")]; ok {
			return v
		}
		return m
	})
}

// auth sends the scenario's {token} as a bearer token.
var auth = map[string]string{"Authorization": "Bearer {token}"}

// asRole gives {token} and {user_id} of a fresh user of role.
func asRole(role string) func(t testing.TB, a *App) map[string]string {
	return func(t testing.TB, a *App) map[string]string {
		u := a.user(t, caller.Role(role), caller.Free)
		return map[string]string{"token": u.Access, "user_id": u.ID}
	}
}

// Run runs the scenario against a fresh app.
func (s Scenario) Run(t *testing.T) {
	t.Run(s.Name, func(t *testing.T) {
		// Every scenario has an app and a database of its own (a copy of
		// the migrated template, on either database), so all run in
		// parallel.
		parallelTest(t)
		a := newApp(t, s.Env...)
		vals := map[string]string{}
		if s.Setup != nil {
			vals = s.Setup(t, a)
		}
		req := Request{Method: s.Method, URL: fill(s.URL, vals), Headers: map[string]string{}, RemoteAddr: s.RemoteAddr}
		for k, v := range s.Headers {
			req.Headers[k] = fill(v, vals)
		}
		switch b := s.Body.(type) {
		case string:
			req.Body = fill(b, vals)
		case nil:
		default:
			raw, _ := json.Marshal(b)
			req.Body = fill(string(raw), vals)
		}
		r := a.do(t, req)
		r.vals = vals
		if r.Status != s.ExpectedStatus {
			t.Fatalf("status %d, want %d; body: %s", r.Status, s.ExpectedStatus, r.Body)
		}
		for _, frag := range s.ExpectedContent {
			if !strings.Contains(r.Body, fill(frag, vals)) {
				t.Errorf("body lacks %q: %s", fill(frag, vals), r.Body)
			}
		}
		for _, frag := range s.NotExpected {
			if strings.Contains(r.Body, fill(frag, vals)) {
				t.Errorf("body has %q: %s", fill(frag, vals), r.Body)
			}
		}
		for k, v := range s.ExpectedHeaders {
			if got := r.Header.Get(k); !strings.Contains(got, v) {
				t.Errorf("header %s = %q, want it to contain %q", k, got, v)
			}
		}
		// Errors are JSON, but for a person's browser on the pages that
		// answer one with HTML (it asked for it, or posted the page's form).
		page := strings.Contains(req.Headers["Accept"], "text/html") || req.Headers["Content-Type"] == "application/x-www-form-urlencoded"
		if r.Status >= 400 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") && !page {
			t.Errorf("error answer is %q, not JSON", r.Header.Get("Content-Type"))
		}
		if s.After != nil {
			s.After(t, a, r)
		}
	})
}

// User is a verified account made for a test, logged in.
type User struct {
	ID, Email, Password string
	Access, Refresh     string
}

// Bearer is the Authorization header value for u.
func (u *User) Bearer() string { return "Bearer " + u.Access }

const testPassword = "Correct-Horse-9"

// user creates a verified user with role and tier (as `user create` does)
// and logs it in over HTTP.
func (a *App) user(t testing.TB, role caller.Role, tier caller.Tier) *User {
	t.Helper()
	email := randomName(string(role)+"-") + "@example.com"
	// A fixture row with the run's one hash of testPassword at this cost:
	// hashing it afresh for each of the suite's users was an eighth of its
	// CPU. Creating users for real is what the register and CLI tests test.
	now := a.Clock.Now()
	created := &models.User{ID: uuid.New(), Email: email, PasswordHash: fixtureHash(t, a.Config.BcryptCost), Tier: tier,
		EmailVerified: true, CreatedAt: now, UpdatedAt: now}
	if err := a.DB.Create(created).Error; err != nil {
		t.Fatal(err)
	}
	// A member of the default organization with role, as `user create`
	// makes one.
	if err := a.DB.Create(&models.Membership{OrgID: models.DefaultOrgID, UserID: created.ID, Role: role, CreatedAt: now}).Error; err != nil {
		t.Fatal(err)
	}
	u := &User{ID: created.ID.String(), Email: email, Password: testPassword}
	a.login(t, u)
	return u
}

var fixtureHashes sync.Map // bcrypt cost -> hash of testPassword

func fixtureHash(t testing.TB, cost int) string {
	if h, ok := fixtureHashes.Load(cost); ok {
		return h.(string)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), cost)
	if err != nil {
		t.Fatal(err)
	}
	fixtureHashes.Store(cost, string(h))
	return string(h)
}

// login logs u in and stores its tokens.
func (a *App) login(t testing.TB, u *User) {
	t.Helper()
	r := a.do(t, Request{Method: "POST", URL: "/auth/login", Body: map[string]string{"email": u.Email, "password": u.Password}})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", u.Email, r.Status, r.Body)
	}
	var tok struct{ AccessToken, RefreshToken string }
	tok.AccessToken, tok.RefreshToken = field(t, r, "access_token"), field(t, r, "refresh_token")
	u.Access, u.Refresh = tok.AccessToken, tok.RefreshToken
}

// field returns a top-level string field of a JSON body.
func field(t testing.TB, r *Response, name string) string {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	s, _ := m[name].(string)
	return s
}

// lastToken returns the verification token from the newest mail to email.
// sent delivers the queued mail now (the worker's job in a running
// server) and returns every message delivered so far.
func (a *App) sent(t testing.TB) []mail.Message {
	t.Helper()
	if _, err := a.Server.Services.Outbox.DeliverDue(context.Background()); err != nil {
		t.Fatalf("deliver mail: %v", err)
	}
	return a.Mailer.Sent()
}

func (a *App) lastToken(t testing.TB, email string) string {
	t.Helper()
	sent := a.sent(t)
	for i := len(sent) - 1; i >= 0; i-- {
		if sent[i].To == email {
			m := regexp.MustCompile(`/auth/verify\?token=([0-9a-f]+)`).FindStringSubmatch(sent[i].Body)
			if m == nil {
				t.Fatalf("mail to %s has no verification link: %s", email, sent[i].Body)
			}
			return m[1]
		}
	}
	t.Fatalf("no mail to %s", email)
	return ""
}

// syncBuffer collects logs from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func bearer(u *User) map[string]string { return map[string]string{"Authorization": u.Bearer()} }

func mustf(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

// defaultRole is user's role in the default organization ("": none).
func defaultRole(t testing.TB, a *App, user uuid.UUID) caller.Role {
	t.Helper()
	var roles []caller.Role
	if err := a.DB.Model(&models.Membership{}).Where("org_id = ? AND user_id = ?", models.DefaultOrgID, user).Pluck("role", &roles).Error; err != nil {
		t.Fatal(err)
	}
	if len(roles) == 0 {
		return ""
	}
	return roles[0]
}
