package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/cli"
	"github.com/tollgate/tollgate/database"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/models"
	"github.com/tollgate/tollgate/product"
	"github.com/tollgate/tollgate/services"
	"github.com/tollgate/tollgate/settings"
)

// run starts the binary's command line with environ and returns its error.
// Secrets environ does not name are the run's key pair and files in a
// directory of the test: never config/ in the working directory, which
// parallel tests would generate at once, and an RSA key per command.
func run(t *testing.T, args []string, environ map[string]string) (string, error) {
	t.Helper()
	environ = maps.Clone(environ)
	if environ == nil {
		environ = map[string]string{}
	}
	if environ["JWT_PRIVATE_KEY_FILE"] == "" && environ["JWT_PUBLIC_KEY_FILE"] == "" {
		environ["JWT_PRIVATE_KEY_FILE"], environ["JWT_PUBLIC_KEY_FILE"] = filepath.Join(keyDir, "private.pem"), filepath.Join(keyDir, "public.pem")
	}
	dir := cliSecrets(t)
	for name, file := range map[string]string{"API_KEY_PEPPER_FILE": "api-key-pepper", "AUDIT_KEY_FILE": "audit-key", "MFA_KEY_FILE": "mfa-key"} {
		if _, set := environ[name]; !set {
			environ[name] = filepath.Join(dir, file)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := cli.Run(ctx, args, environ, &out)
	return out.String(), err
}

var cliSecretDirs sync.Map // *testing.T -> its directory for generated secrets

// cliSecrets is the directory of t's generated secrets, the same for each
// command t runs.
func cliSecrets(t *testing.T) string {
	if dir, ok := cliSecretDirs.Load(t); ok {
		return dir.(string)
	}
	dir := t.TempDir()
	cliSecretDirs.Store(t, dir)
	t.Cleanup(func() { cliSecretDirs.Delete(t) })
	return dir
}

func TestProductionRefusesToStart(t *testing.T) {
	parallelTest(t)
	dir := t.TempDir()
	pg := "postgres://postgres@127.0.0.1:1/none?sslmode=disable"
	cases := []struct {
		name    string
		environ map[string]string
		want    string
	}{
		{"without DATABASE_URL", map[string]string{"APP_ENV": "production",
			"JWT_PRIVATE_KEY_FILE": keyDir + "/private.pem", "JWT_PUBLIC_KEY_FILE": keyDir + "/public.pem"}, "DATABASE_URL"},
		{"without key files", map[string]string{"APP_ENV": "production", "DATABASE_URL": pg,
			"JWT_PRIVATE_KEY_FILE": dir + "/missing.pem", "JWT_PUBLIC_KEY_FILE": dir + "/missing.pub"}, "JWT key file"},
		{"with an unreadable key file", map[string]string{"APP_ENV": "production", "DATABASE_URL": pg,
			"JWT_PRIVATE_KEY_FILE": writeFile(t, dir, "garbage.pem", "not a key"), "JWT_PUBLIC_KEY_FILE": keyDir + "/public.pem"}, "unusable JWT keys"},
		{"without an API key pepper", map[string]string{"APP_ENV": "production", "DATABASE_URL": pg,
			"JWT_PRIVATE_KEY_FILE": keyDir + "/private.pem", "JWT_PUBLIC_KEY_FILE": keyDir + "/public.pem", "API_KEY_PEPPER_FILE": dir + "/none"}, "API_KEY_PEPPER"},
		{"without an audit key", map[string]string{"APP_ENV": "production", "DATABASE_URL": pg, "API_KEY_PEPPER": testPepper,
			"JWT_PRIVATE_KEY_FILE": keyDir + "/private.pem", "JWT_PUBLIC_KEY_FILE": keyDir + "/public.pem", "MFA_KEY": testPepper, "AUDIT_KEY_FILE": dir + "/none"}, "AUDIT_KEY"},
		{"without an MFA key", map[string]string{"APP_ENV": "production", "DATABASE_URL": pg, "API_KEY_PEPPER": testPepper,
			"JWT_PRIVATE_KEY_FILE": keyDir + "/private.pem", "JWT_PUBLIC_KEY_FILE": keyDir + "/public.pem", "MFA_KEY_FILE": dir + "/none"}, "MFA_KEY"},
		{"with a malformed duration", map[string]string{"ACCESS_TOKEN_TTL": "fifteen minutes"}, "ACCESS_TOKEN_TTL"},
		{"with a malformed cost", map[string]string{"BCRYPT_COST": "high"}, "BCRYPT_COST"},
		{"with an unknown APP_ENV", map[string]string{"APP_ENV": "staging"}, "APP_ENV"},
		{"with a malformed proxy list", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/99"}, "TRUSTED_PROXIES"},
		{"with a non-postgres DATABASE_URL", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"with a plain-http base URL", map[string]string{"APP_ENV": "production", "APP_BASE_URL": "http://api.example.com"}, "APP_BASE_URL"},
		{"with a private key readable by others", map[string]string{"APP_ENV": "production", "DATABASE_URL": pg,
			"JWT_PRIVATE_KEY_FILE": copyMode(t, keyDir+"/private.pem", dir+"/open.pem", 0o644), "JWT_PUBLIC_KEY_FILE": keyDir + "/public.pem"}, "chmod 600 " + dir + "/open.pem"},
		{"with a pepper file readable by its group", map[string]string{"APP_ENV": "production", "DATABASE_URL": pg,
			"JWT_PRIVATE_KEY_FILE": keyDir + "/private.pem", "JWT_PUBLIC_KEY_FILE": keyDir + "/public.pem",
			"API_KEY_PEPPER_FILE": copyMode(t, "", dir+"/pepper", 0o640)}, "chmod 600 " + dir + "/pepper"},
	}
	for _, c := range cases {
		if c.environ["APP_ENV"] == "production" && c.environ["APP_BASE_URL"] == "" {
			c.environ["APP_BASE_URL"] = "https://api.example.com"
		}
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, nil, c.environ)
			mustf(t, err != nil && strings.Contains(err.Error(), c.want), "error %v, want it to name %s", err, c.want)
			mustf(t, !strings.Contains(err.Error(), "\n"), "error is not one line: %q", err)
		})
	}
	// Production never generates keys.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		mustf(t, !strings.HasPrefix(e.Name(), "missing"), "production generated %s", e.Name())
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeysGenerateRefusesToOverwrite(t *testing.T) {
	parallelTest(t)
	dir := t.TempDir()
	env := map[string]string{"JWT_PRIVATE_KEY_FILE": dir + "/k.pem", "JWT_PUBLIC_KEY_FILE": dir + "/k.pub", "API_KEY_PEPPER_FILE": dir + "/pepper",
		"AUDIT_KEY_FILE": dir + "/audit-key", "MFA_KEY_FILE": dir + "/mfa-key"}
	out, err := run(t, []string{"keys", "generate"}, env)
	mustf(t, err == nil && strings.Contains(out, "API key pepper"), "generate: %v %s", err, out)
	pepper, _ := os.ReadFile(dir + "/pepper")
	info, _ := os.Stat(dir + "/pepper")
	mustf(t, len(pepper) >= 32 && info.Mode().Perm() == 0o600, "pepper %d bytes, mode %v", len(pepper), info.Mode())
	first, _ := os.ReadFile(dir + "/k.pem")
	info, _ = os.Stat(dir + "/k.pem")
	mustf(t, info.Mode().Perm() == 0o600, "private key mode %v", info.Mode())
	_, err = run(t, []string{"keys", "generate"}, env)
	mustf(t, err != nil && strings.Contains(err.Error(), "--force"), "overwrote without --force: %v", err)
	_, err = run(t, []string{"keys", "generate", "--force"}, env)
	mustf(t, err == nil, "--force: %v", err)
	second, _ := os.ReadFile(dir + "/k.pem")
	mustf(t, !bytes.Equal(first, second), "--force did not replace the key")
	_, err = services.LoadKeySet(dir+"/k.pem", dir+"/k.pub", nil)
	mustf(t, err == nil, "generated pair does not load: %v", err)
	// --if-missing (the Compose key service) keeps an existing pair, and
	// makes one where there is none.
	out, err = run(t, []string{"keys", "generate", "--if-missing"}, env)
	third, _ := os.ReadFile(dir + "/k.pem")
	mustf(t, err == nil && strings.Contains(out, "kept") && bytes.Equal(second, third), "--if-missing replaced keys: %v %s", err, out)
	// The pepper is never replaced, not even with --force.
	again, _ := os.ReadFile(dir + "/pepper")
	mustf(t, bytes.Equal(pepper, again), "the pepper was replaced")
	fresh := map[string]string{"JWT_PRIVATE_KEY_FILE": dir + "/new/k.pem", "JWT_PUBLIC_KEY_FILE": dir + "/new/k.pub", "API_KEY_PEPPER_FILE": dir + "/new/pepper",
		"AUDIT_KEY_FILE": dir + "/new/audit-key", "MFA_KEY_FILE": dir + "/new/mfa-key"}
	_, err = run(t, []string{"keys", "generate", "--if-missing"}, fresh)
	mustf(t, err == nil, "--if-missing with no keys: %v", err)
	_, err = services.LoadKeySet(fresh["JWT_PRIVATE_KEY_FILE"], fresh["JWT_PUBLIC_KEY_FILE"], nil)
	mustf(t, err == nil, "--if-missing pair does not load: %v", err)
}

// The first admin comes from `user create`, and `migrate status` reports.
func TestUserCreateAndMigrateCommands(t *testing.T) {
	parallelTest(t)
	dir := t.TempDir()
	env := map[string]string{"SQLITE_PATH": dir + "/cli.db", "BCRYPT_COST": "4"}
	if pg := os.Getenv("TEST_DATABASE_URL"); pg != "" {
		env["DATABASE_URL"] = openTestDBURL(t)
	}
	out, err := run(t, []string{"user", "create", "--email", "Boss@Example.com", "--password", testPassword, "--role", "admin", "--tier", "enterprise"}, env)
	mustf(t, err == nil && strings.Contains(out, "created admin user boss@example.com"), "user create: %v %s", err, out)
	_, err = run(t, []string{"user", "create", "--email", "boss@example.com", "--password", testPassword, "--role", "admin"}, env)
	mustf(t, err != nil && strings.Contains(err.Error(), "already exists"), "duplicate: %v", err)
	_, err = run(t, []string{"user", "create", "--email", "weak@example.com", "--password", "short"}, env)
	mustf(t, err != nil && strings.Contains(err.Error(), "password"), "weak password: %v", err)
	// As many as there are files, so a fork's new migration does not break this.
	files, _ := filepath.Glob("../migrations/sqlite/*.sql")
	n := len(files)
	mustf(t, n >= 3, "only %d migrations found", n)
	out, err = run(t, []string{"migrate", "status"}, env)
	mustf(t, err == nil && strings.Count(out, "applied") == n, "status: %v %s", err, out)
	if env["DATABASE_URL"] != "" {
		// The app's role owns nothing: it cannot undo the schema (nor
		// switch row-level security off); the owner's role can.
		_, err = run(t, []string{"migrate", "down"}, env)
		mustf(t, err != nil && strings.Contains(err.Error(), "must be owner"), "down as the app's role: %v", err)
		env["DATABASE_OWNER_URL"] = ownerURL(t, env["DATABASE_URL"])
	}
	out, err = run(t, []string{"migrate", "down"}, env)
	mustf(t, err == nil && strings.Count(out, "applied") == n-1 && strings.Count(out, "pending") == 1, "down: %v %s", err, out)
	out, err = run(t, []string{"migrate", "up"}, env)
	mustf(t, err == nil && strings.Count(out, "applied") == n, "up: %v %s", err, out)
	out, err = run(t, []string{"purge"}, env)
	mustf(t, err == nil && strings.Contains(out, "purged 0 refresh tokens, 0 verification tokens, 0 unverified accounts"), "purge: %v %s", err, out)
	mustf(t, strings.Contains(out, "0 reset tokens, 0 MFA challenges, 0 revoked API keys, 0 audit events"), "purge: %s", out)
	_, err = run(t, []string{"migrate", "sideways"}, env)
	mustf(t, err != nil, "unknown migrate command accepted")
}

// Every variable the configuration reads is documented in .env.example and
// in the README's configuration table, and neither documents one that
// nothing reads.
func TestConfigurationIsDocumentedBothWays(t *testing.T) {
	parallelTest(t)
	raw, err := os.ReadFile("../.env.example")
	mustf(t, err == nil, "read .env.example: %v", err)
	example := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if k, _, ok := strings.Cut(line, "="); ok && k == strings.ToUpper(k) && !strings.Contains(k, " ") {
			example[strings.TrimSpace(k)] = true
		}
	}
	readme, err := os.ReadFile("../README.md")
	mustf(t, err == nil, "read README.md: %v", err)
	table := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		table[m[1]] = true
	}
	read := map[string]bool{}
	for _, name := range settingsVariables() {
		read[name] = true
		mustf(t, example[name], ".env.example lacks %s", name)
		mustf(t, table[name], "the README's configuration table lacks %s", name)
	}
	for name := range example {
		mustf(t, read[name], ".env.example documents %s, which nothing reads", name)
	}
	for name := range table {
		mustf(t, read[name], "the README documents %s, which nothing reads", name)
	}
}

// The serve path as `go run .` takes it: development keys generated when
// missing, migrations applied and logged, one log line each for the
// address, the database and the mail destination; http.Server limits in
// force; /metrics on its own listener; and on shutdown /readyz turns 503
// while the server keeps serving for the drain delay, then a clean exit.
func TestServeStartsAndShutsDownGracefully(t *testing.T) {
	parallelTest(t)
	dir := t.TempDir()
	port, metricsPort := freePort(t), freePort(t)
	env := map[string]string{
		"PORT": strconv.Itoa(port), "SQLITE_PATH": dir + "/data/app.db", "BCRYPT_COST": "4",
		"JWT_PRIVATE_KEY_FILE": dir + "/config/jwt-private.pem", "JWT_PUBLIC_KEY_FILE": dir + "/config/jwt-public.pem",
		"API_KEY_PEPPER_FILE": dir + "/config/api-key-pepper", "AUDIT_KEY_FILE": dir + "/config/audit-key", "MFA_KEY_FILE": dir + "/config/mfa-key",
		"SHUTDOWN_DRAIN_DELAY": "1500ms", "HTTP_READ_HEADER_TIMEOUT": "200ms", "METRICS_ADDR": fmt.Sprintf("127.0.0.1:%d", metricsPort),
		// Nothing listens there: the instance serves, degraded, and go-redis'
		// own complaints arrive in the structured log, not on stderr.
		"REDIS_URL": "redis://127.0.0.1:1/0",
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- cli.Run(ctx, nil, env, out) }()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			mustf(t, resp.StatusCode == 200, "readyz %d", resp.StatusCode)
			break
		}
		mustf(t, i < 200, "server never answered: %s", out.String())
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range []string{"msg=listening", "msg=database using=\"sqlite", "msg=mail destination=", "generated a development JWT key pair",
		"generated a development API key pepper",
		"msg=\"migrations applied\" versions=\"[1 2 3", "msg=\"metrics listening\""} {
		mustf(t, strings.Count(out.String(), line) == 1, "log lacks one %q line: %s", line, out.String())
	}
	_, err := services.LoadKeySet(env["JWT_PRIVATE_KEY_FILE"], env["JWT_PUBLIC_KEY_FILE"], nil)
	mustf(t, err == nil, "generated keys: %v", err)

	// A client that never finishes its headers is cut off (slowloris).
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	mustf(t, err == nil, "dial: %v", err)
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	_, rerr := io.ReadAll(conn)
	conn.Close()
	mustf(t, rerr == nil && time.Since(start) < 2*time.Second, "half-sent headers held the connection %v (%v)", time.Since(start), rerr)

	// Requests net/http refuses before any handler still get JSON.
	for _, c := range []struct{ raw, status, code string }{
		{"GET /% HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request", `"code":"malformed_request"`},
		{"GET / HTTP/1.1\r\n\r\n", "400 Bad Request", `missing required Host header`},
		// Twice the limit. The part the server never reads makes it reset
		// the connection 500 ms after answering, and a client starved that
		// long (under -race) loses the answer to the reset: tried again.
		{"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<17) + "\r\n\r\n", "431 Request Header Fields Too Large", `"code":"headers_too_large"`},
		{"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501 Not Implemented", `"code":"not_implemented"`},
	} {
		var answer []byte
		for attempt := 0; attempt < 3 && len(answer) == 0; attempt++ {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			mustf(t, err == nil, "dial: %v", err)
			go fmt.Fprint(conn, c.raw) // the server may answer before reading it all
			conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			answer, _ = io.ReadAll(conn)
			conn.Close()
		}
		mustf(t, strings.HasPrefix(string(answer), "HTTP/1.1 "+c.status+"\r\n") && strings.Contains(string(answer), "Content-Type: application/json\r\n") &&
			strings.Contains(string(answer), c.code), "%q answered %q", c.raw[:min(len(c.raw), 20)], answer)
		// with the security headers every other answer carries
		for _, h := range []string{"X-Content-Type-Options: nosniff\r\n", "X-Frame-Options: DENY\r\n",
			"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n", "Referrer-Policy: no-referrer\r\n", "Cache-Control: no-store\r\n"} {
			mustf(t, strings.Contains(string(answer), h), "%q: the early refusal lacks %q: %q", c.raw[:min(len(c.raw), 20)], h, answer)
		}
	}

	mustf(t, strings.Contains(out.String(), `level=WARN msg="redis: `), "go-redis does not log through slog: %s", out.String())

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	mustf(t, err == nil && resp.StatusCode == 200, "metrics listener: %v", err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustf(t, strings.Contains(string(body), metrics.Namespace+"_login_attempts_total"), "metrics: %s", body)
	resp, err = http.Get(url + "/metrics")
	mustf(t, err == nil && resp.StatusCode == 404, "metrics on the public listener: %v %v", err, resp)
	resp.Body.Close()

	cancel()
	// Draining: not ready, still serving. (Polled, not slept: on a loaded
	// machine a fixed pause ate into the drain delay.)
	for i := 0; ; i++ {
		resp, err = http.Get(url + "/readyz")
		mustf(t, err == nil, "readyz while draining: %v", err)
		if resp.StatusCode == 503 {
			break
		}
		resp.Body.Close()
		mustf(t, i < 100, "readyz never turned 503")
		time.Sleep(10 * time.Millisecond)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	mustf(t, strings.Contains(string(body), `"code":"shutting_down"`), "readyz body %s", body)
	resp, err = http.Get(url + "/healthz")
	mustf(t, err == nil && resp.StatusCode == 200, "stopped serving during the drain delay: %v", err)
	resp.Body.Close()
	select {
	case err := <-done:
		mustf(t, err == nil, "shutdown returned %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("server did not shut down")
	}
	_, err = http.Get(url + "/healthz")
	mustf(t, err != nil, "still serving after shutdown")
	for _, line := range []string{"shutdown started", "shutdown complete", `msg="audit checkpoint"`} {
		mustf(t, strings.Count(out.String(), line) == 1, "log lacks one %q line: %s", line, out.String())
	}
}

// `tollgate purge` deletes what the server's periodic purge deletes, audit
// events past AUDIT_RETENTION included, and the chain still verifies.
func TestPurgeCommandDoesWhatTheServerDoes(t *testing.T) {
	parallelTest(t)
	env := map[string]string{"BCRYPT_COST": "4", "AUDIT_KEY": testPepper + "-audit"}
	var db *database.DB
	var err error
	if os.Getenv("TEST_DATABASE_URL") != "" {
		env["DATABASE_URL"] = openTestDBURL(t)
		db, err = database.Open(database.Options{PostgresURL: env["DATABASE_URL"], MaxOpenConns: 2})
	} else {
		env["SQLITE_PATH"] = filepath.Join(t.TempDir(), "purge.db")
		db, err = database.Open(database.Options{SQLitePath: env["SQLITE_PATH"]})
	}
	mustf(t, err == nil, "%v", err)
	t.Cleanup(func() { db.Close() })
	// The test clock starts months before the wall clock the command uses:
	// what the app records now is past every retention for the command.
	a := newAppOn(t, db, nil)
	admin := a.user(t, caller.Admin, caller.Free)
	mustf(t, a.do(t, Request{Method: "POST", URL: "/auth/password/forgot", Body: map[string]string{"email": admin.Email}}).Status == 202, "forgot")
	var events int64
	mustf(t, a.DB.Model(&models.AuditEvent{}).Count(&events).Error == nil && events > 0, "no audit events to purge")
	out, err := run(t, []string{"purge"}, env)
	mustf(t, err == nil, "purge: %v %s", err, out)
	mustf(t, strings.Contains(out, "1 reset tokens") && strings.Contains(out, fmt.Sprintf("%d audit events", events)), "purge: %s", out)
	r := a.do(t, Request{Method: "GET", URL: "/admin/audit/verify", Headers: bearer(admin)})
	mustf(t, r.Status == 200 && strings.Contains(r.Body, `"valid":true`), "chain after the command's purge: %d %s", r.Status, r.Body)
}

// copyMode writes from's content (or a 64-character secret when from is
// "") to to with mode, and returns to.
func copyMode(t *testing.T, from, to string, mode os.FileMode) string {
	t.Helper()
	body := []byte(strings.Repeat("s", 64))
	if from != "" {
		var err error
		if body, err = os.ReadFile(from); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(to, body, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(to, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return to
}

// The image and Compose's app run as production: a container started with
// only DATABASE_URL once served POST /dev/users and GET /dev/mail to the
// network, because an unset APP_ENV means development.
func TestTheImageAndComposeRunAsProduction(t *testing.T) {
	parallelTest(t)
	dockerfile, err := os.ReadFile("../Dockerfile")
	mustf(t, err == nil, "Dockerfile: %v", err)
	final := string(dockerfile[strings.LastIndex(string(dockerfile), "FROM "):])
	mustf(t, regexp.MustCompile(`(?m)^ENV APP_ENV=production$`).MatchString(final), "the runtime stage does not set APP_ENV=production")
	compose, err := os.ReadFile("../docker-compose.yml")
	mustf(t, err == nil, "compose: %v", err)
	mustf(t, strings.Contains(string(compose), "APP_ENV: production") && !strings.Contains(string(compose), "DEV_ROUTES: \"true\""), "compose's app is not production")
	// What that environment means, as the binary reads it: no dev routes.
	cfg, err := settings.Load(map[string]string{"APP_ENV": "production", "APP_BASE_URL": "https://api.example.com"})
	mustf(t, err == nil && !cfg.DevRoutes && cfg.Host == "", "production: %+v %v", cfg.DevRoutes, err)
}

// help and docs read no configuration: a broken environment still shows
// the usage and writes the documents, while any other command names the
// bad variable.
func TestHelpAndDocsNeedNoConfiguration(t *testing.T) {
	parallelTest(t)
	broken := map[string]string{"PORT": "abc", "APP_ENV": "staging"}
	out, err := run(t, []string{"help"}, broken)
	mustf(t, err == nil && strings.Contains(out, "usage: "+product.ID), "help: %v %s", err, out)
	dir := t.TempDir()
	out, err = run(t, []string{"docs", dir}, broken)
	mustf(t, err == nil && strings.Contains(out, "openapi.json"), "docs: %v %s", err, out)
	_, err = os.Stat(filepath.Join(dir, "openapi.json"))
	mustf(t, err == nil, "docs wrote nothing: %v", err)
	_, err = run(t, []string{"migrate", "status"}, broken)
	mustf(t, err != nil && strings.Contains(err.Error(), "invalid PORT"), "migrate with PORT=abc: %v", err)
}

// Without APP_BASE_URL, the links the server mails name the port it really
// listens on (PORT=0: one the system picked), not a default.
func TestDevelopmentLinksFollowTheListenAddress(t *testing.T) {
	parallelTest(t)
	dir := t.TempDir()
	env := map[string]string{
		"PORT": "0", "SQLITE_PATH": dir + "/app.db", "BCRYPT_COST": "4", "RATE_LIMIT_ENABLED": "false",
		"JWT_PRIVATE_KEY_FILE": dir + "/config/jwt-private.pem", "JWT_PUBLIC_KEY_FILE": dir + "/config/jwt-public.pem",
		"API_KEY_PEPPER_FILE": dir + "/config/api-key-pepper", "AUDIT_KEY_FILE": dir + "/config/audit-key", "MFA_KEY_FILE": dir + "/config/mfa-key",
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- cli.Run(ctx, nil, env, out) }()
	defer func() { cancel(); <-done }()
	listening := regexp.MustCompile(`msg=listening address=127\.0\.0\.1:(\d+)`)
	var port string
	for i := 0; port == ""; i++ {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			port = m[1]
		}
		select {
		case err := <-done:
			done <- err // for the deferred wait
			t.Fatalf("serve ended: %v %s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		mustf(t, i < 200, "never listened: %s", out.String())
	}
	base := "http://127.0.0.1:" + port
	email := "follow@example.com"
	res, err := http.Post(base+"/auth/register", "application/json", strings.NewReader(`{"email":"`+email+`","password":"Correct-Horse-9"}`))
	mustf(t, err == nil && res.StatusCode == 202, "register: %v %v", err, res)
	res.Body.Close()
	res, err = http.Get(base + "/dev/mail?to=" + email)
	mustf(t, err == nil && res.StatusCode == 200, "dev mail: %v", err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	mustf(t, strings.Contains(string(body), "http://localhost:"+port+"/auth/verify?token="), "the link does not name port %s: %s", port, body)
	res, err = http.Get(base + "/.well-known/oauth-authorization-server")
	mustf(t, err == nil, "metadata: %v", err)
	meta, _ := io.ReadAll(res.Body)
	res.Body.Close()
	mustf(t, strings.Contains(string(meta), `"issuer":"http://localhost:`+port+`"`), "the issuer does not follow: %s", meta)
}
