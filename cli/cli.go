// Package cli is the binary's command line: serve (the default), migrate,
// keys and user. Each command loads the configuration, builds only what it
// needs and returns an error for main to print.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/database"
	"github.com/tollgate/tollgate/mail"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/migrations"
	"github.com/tollgate/tollgate/server"
	"github.com/tollgate/tollgate/services"
	"github.com/tollgate/tollgate/settings"
)

const usage = `usage: tollgate [command]

  (no command), serve                 run the API server
  migrate up|down|status              apply, roll back one, or list migrations
  keys generate [--force|--if-missing]  write a new JWT key pair (--if-missing: only when there is none), and the API key pepper when missing
  docs DIR                            write openapi.json and schemas/ into DIR (go generate ./docs runs it)
  healthcheck                         exit 0 when the local server answers /healthz (for container health checks)
  purge                               delete expired tokens and stale unverified accounts now (the server also does it every PURGE_INTERVAL)
  user create --email E --password P [--role viewer|editor|admin] [--tier free|paid|enterprise]
                                      create a verified user (how the first admin is made)`

// Run executes the command in args with configuration from environ.
func Run(ctx context.Context, args []string, environ map[string]string, out io.Writer) error {
	cfg, err := settings.Load(environ)
	if err != nil {
		return err
	}
	log := newLogger(cfg, out)
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log)
	case "migrate":
		return migrate(ctx, cfg, args, out)
	case "keys":
		return keys(cfg, args, out)
	case "user":
		return user(ctx, cfg, args, out)
	case "healthcheck":
		return healthcheck(ctx, cfg)
	case "purge":
		return purge(ctx, cfg, log, out)
	case "docs":
		return writeDocs(args, out)
	case "help", "-h", "--help":
		fmt.Fprintln(out, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

func newLogger(cfg settings.Config, out io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.IsProduction() {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// checkProduction refuses what must never happen in production.
func checkProduction(cfg settings.Config) error {
	if !cfg.IsProduction() {
		return nil
	}
	if cfg.DatabaseURL == "" {
		return errors.New("APP_ENV=production needs DATABASE_URL (the embedded SQLite file is for development)")
	}
	for _, f := range []string{cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("APP_ENV=production needs the JWT key file %s (JWT_PRIVATE_KEY_FILE / JWT_PUBLIC_KEY_FILE): %w", f, errors.Unwrap(err))
		}
	}
	// Like ssh with a private key: a secret others on the host can read is
	// no secret. Files only where the value is not given directly.
	secrets := []struct{ name, value, file string }{
		{"JWT_PRIVATE_KEY_FILE", "", cfg.JWTPrivateKeyFile},
		{"API_KEY_PEPPER_FILE", cfg.APIKeyPepper, cfg.APIKeyPepperFile},
		{"MFA_KEY_FILE", cfg.MFAKey, cfg.MFAKeyFile},
		{"AUDIT_KEY_FILE", cfg.AuditKey, cfg.AuditKeyFile},
	}
	for _, s := range secrets {
		if s.value != "" || s.file == "" {
			continue
		}
		info, err := os.Stat(s.file)
		if err != nil {
			continue // missing: the loader names it
		}
		if info.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("%s %s is readable by others (mode %04o): run chmod 600 %s (owned by the user the app runs as)",
				s.name, s.file, info.Mode().Perm(), s.file)
		}
	}
	return nil
}

// loadKeys reads the key pair; in development it first generates a missing
// pair so `go run .` works on a fresh clone. Production never generates.
func loadKeys(cfg settings.Config, log *slog.Logger) (*services.KeySet, error) {
	if !cfg.IsProduction() {
		_, errPriv := os.Stat(cfg.JWTPrivateKeyFile)
		_, errPub := os.Stat(cfg.JWTPublicKeyFile)
		if errors.Is(errPriv, os.ErrNotExist) && errors.Is(errPub, os.ErrNotExist) {
			if err := services.GenerateKeyPair(cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile, false); err != nil {
				return nil, fmt.Errorf("generate development keys: %w", err)
			}
			log.Info("generated a development JWT key pair", "private", cfg.JWTPrivateKeyFile, "public", cfg.JWTPublicKeyFile)
		}
	}
	ks, err := services.LoadKeySet(cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile, cfg.JWTPreviousPublicKeyFiles)
	if err != nil {
		if cfg.IsProduction() {
			return nil, fmt.Errorf("APP_ENV=production: unusable JWT keys: %w", err)
		}
		return nil, err
	}
	return ks, nil
}

func openDB(ctx context.Context, cfg settings.Config) (*database.DB, error) {
	db, err := database.Open(database.Options{
		PostgresURL: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
		ConnectTimeout: cfg.DBConnectTimeout, StatementTimeout: cfg.DBStatementTimeout,
	})
	if err != nil {
		return nil, err
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s unreachable: %w", db.Description, err)
	}
	return db, nil
}

// openMigrated opens the database and applies pending migrations, for
// commands that work on data.
func openMigrated(ctx context.Context, cfg settings.Config) (*database.DB, error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func serve(ctx context.Context, cfg settings.Config, log *slog.Logger) error {
	if err := checkProduction(cfg); err != nil {
		return err
	}
	ks, err := loadKeys(cfg, log)
	if err != nil {
		return err
	}
	peppers, created, err := services.LoadPeppers(cfg.APIKeyPepper, cfg.APIKeyPepperFile, cfg.APIKeyPepperVersion,
		cfg.APIKeyPreviousPeppers, !cfg.IsProduction())
	if err != nil {
		return err
	}
	if created {
		log.Info("generated a development API key pepper", "file", cfg.APIKeyPepperFile)
	}
	mfaKeys, created, err := services.LoadMFAKeys(cfg.MFAKey, cfg.MFAKeyFile, cfg.MFAKeyVersion, cfg.MFAPreviousKeys, !cfg.IsProduction())
	if err != nil {
		return err
	}
	if created {
		log.Info("generated a development MFA key", "file", cfg.MFAKeyFile)
	}
	auditKey, created, err := services.LoadSecret("AUDIT_KEY", cfg.AuditKey, cfg.AuditKeyFile, !cfg.IsProduction())
	if err != nil {
		return err
	}
	if created {
		log.Info("generated a development audit key", "file", cfg.AuditKeyFile)
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	log.Info("database", "using", db.Description)
	if len(applied) > 0 {
		log.Info("migrations applied", "versions", applied)
	}

	var rdb redis.UniversalClient
	if cfg.RedisURL != "" {
		// go-redis logs dial failures itself, on stderr: route them through
		// slog like everything else.
		redis.SetLogger(redisLogger{log})
		var where string
		if rdb, where, err = OpenRedis(cfg.RedisURL, cfg.RedisMode); err != nil {
			return err
		}
		defer rdb.Close()
		log.Info("redis", "mode", cfg.RedisMode, "address", where)
	}

	var mailer mail.Mailer
	if cfg.SMTPURL != "" {
		if mailer, err = mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom); err != nil {
			return err
		}
	} else {
		mailer = &mail.Log{Log: log, IncludeBody: !cfg.IsProduction()}
	}
	log.Info("mail", "destination", mailer.Destination())

	srv, err := server.New(server.Deps{Config: cfg, DB: db, Redis: rdb, Keys: ks, Peppers: peppers, MFAKeys: mfaKeys, AuditKey: []byte(auditKey), Clock: clock.System{}, Mailer: mailer, Log: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Run(ctx, net.JoinHostPort(cfg.Host, cfg.Port))
}

func migrate(ctx context.Context, cfg settings.Config, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: tollgate migrate up|down|status")
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	sqlDB, err := db.DB.DB()
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
		if _, err := migrations.Up(ctx, sqlDB, db.Dialect); err != nil {
			return err
		}
	case "down":
		if err := migrations.Down(ctx, sqlDB, db.Dialect); err != nil {
			return err
		}
	case "status":
	default:
		return fmt.Errorf("unknown migrate command %q: use up, down or status", args[0])
	}
	fmt.Fprintln(out, "database:", db.Description)
	return migrations.Status(ctx, sqlDB, db.Dialect, out)
}

func keys(cfg settings.Config, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return errors.New("usage: tollgate keys generate [--force | --if-missing]")
	}
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(out)
	force := fs.Bool("force", false, "replace existing key files")
	ifMissing := fs.Bool("if-missing", false, "do nothing when both key files exist (a one-shot container's job)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// The API key pepper is made when missing and never replaced, not even
	// with --force: every stored key's HMAC depends on it (docs/secrets.md).
	if cfg.APIKeyPepper == "" {
		_, created, err := services.LoadPeppers("", cfg.APIKeyPepperFile, cfg.APIKeyPepperVersion, nil, true)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(out, "wrote %s (API key pepper: keep secret, never replace)\n", cfg.APIKeyPepperFile)
		}
	}
	if cfg.MFAKey == "" {
		_, created, err := services.LoadSecret("MFA_KEY", "", cfg.MFAKeyFile, true)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(out, "wrote %s (MFA secret encryption key: keep secret, never replace)\n", cfg.MFAKeyFile)
		}
	}
	if cfg.AuditKey == "" {
		_, created, err := services.LoadSecret("AUDIT_KEY", "", cfg.AuditKeyFile, true)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(out, "wrote %s (audit log key: keep secret, never replace)\n", cfg.AuditKeyFile)
		}
	}
	if *ifMissing && !*force {
		_, errPriv := os.Stat(cfg.JWTPrivateKeyFile)
		_, errPub := os.Stat(cfg.JWTPublicKeyFile)
		if errPriv == nil && errPub == nil {
			fmt.Fprintf(out, "kept %s and %s (both exist)\n", cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile)
			return nil
		}
	}
	if err := services.GenerateKeyPair(cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile, *force); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (keep secret) and %s\n", cfg.JWTPrivateKeyFile, cfg.JWTPublicKeyFile)
	return nil
}

func user(ctx context.Context, cfg settings.Config, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: tollgate user create --email E --password P [--role R] [--tier T]")
	}
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	fs.SetOutput(out)
	email := fs.String("email", "", "email address")
	password := fs.String("password", "", "password (10+ characters, upper, lower, digit)")
	role := fs.String("role", string(caller.Viewer), "viewer, editor or admin")
	tier := fs.String("tier", string(caller.Free), "free, paid or enterprise")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	hasher := services.NewHasher(cfg.BcryptCost, 1, time.Minute)
	u, err := services.NewUsers(db.DB, clock.System{}, hasher).Create(ctx, services.NewUser{
		Email: *email, Password: *password, Role: caller.Role(*role), Tier: caller.Tier(*tier), EmailVerified: true,
	})
	if err != nil {
		return describe(err)
	}
	fmt.Fprintf(out, "created %s user %s (%s, tier %s, verified)\n", u.Role, u.Email, u.ID, u.Tier)
	return nil
}

// describe turns a service error into one line for the terminal.
func describe(err error) error {
	ae, ok := apperror.As(err)
	if !ok || len(ae.Details) == 0 {
		return err
	}
	var parts []string
	for field, msg := range ae.Details {
		parts = append(parts, field+" "+msg)
	}
	sort.Strings(parts)
	return fmt.Errorf("%s: %s", ae.Message, strings.Join(parts, "; "))
}

// healthcheck probes the local server, for images without curl.
func healthcheck(ctx context.Context, cfg settings.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(probeHost(cfg.Host), cfg.Port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	return nil
}

// purge runs the clean-up the server runs every PURGE_INTERVAL.
func purge(ctx context.Context, cfg settings.Config, log *slog.Logger, out io.Writer) error {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// The audit key moves the chain's anchor past what the purge deletes.
	auditKey, _, err := services.LoadSecret("AUDIT_KEY", cfg.AuditKey, cfg.AuditKeyFile, !cfg.IsProduction())
	if err != nil {
		return err
	}
	audit := services.NewAudit(db.DB, clock.System{}, []byte(auditKey), log)
	n, err := server.NewPurge(cfg, db, audit, clock.System{}, log, metrics.New()).Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "purged %d refresh tokens, %d verification tokens, %d unverified accounts, %d old mails, "+
		"%d reset tokens, %d MFA challenges, %d revoked API keys, %d audit events\n",
		n.RefreshTokens, n.VerificationTokens, n.UnverifiedUsers, n.Mail, n.ResetTokens, n.MFAChallenges, n.APIKeys, n.AuditEvents)
	return nil
}

// redisLogger sends go-redis' own messages to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// OpenRedis connects to one server, a Cluster or a Sentinel-managed master,
// as mode says, through go-redis's UniversalClient. Limiter calls carry
// their own deadline; the client honours it and fails fast rather than
// retry, so a sick Redis costs little.
func OpenRedis(url, mode string) (redis.UniversalClient, string, error) {
	switch mode {
	case "cluster":
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, "", fmt.Errorf("invalid REDIS_URL for REDIS_MODE=cluster: %w", err)
		}
		opts.ContextTimeoutEnabled, opts.MaxRetries, opts.DialTimeout = true, -1, time.Second
		// A moved slot is followed, not retried: MaxRedirects stays at its default.
		return redis.NewClusterClient(opts), strings.Join(opts.Addrs, ","), nil
	case "sentinel":
		opts, err := redis.ParseFailoverURL(url)
		if err != nil {
			return nil, "", fmt.Errorf("invalid REDIS_URL for REDIS_MODE=sentinel: %w", err)
		}
		if opts.MasterName == "" {
			return nil, "", errors.New("REDIS_URL for REDIS_MODE=sentinel needs master_name=")
		}
		opts.ContextTimeoutEnabled, opts.MaxRetries, opts.DialTimeout = true, -1, time.Second
		return redis.NewFailoverClient(opts), opts.MasterName + "@" + strings.Join(opts.SentinelAddrs, ","), nil
	default:
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, "", fmt.Errorf("invalid REDIS_URL: %w", err)
		}
		opts.ContextTimeoutEnabled, opts.MaxRetries, opts.DialTimeout = true, -1, time.Second
		return redis.NewClient(opts), fmt.Sprintf("%s db %d", opts.Addr, opts.DB), nil
	}
}

// probeHost is where the health check finds a server listening on host:
// loopback when it listens on every address.
func probeHost(host string) string {
	if host == "" || host == "0.0.0.0" || host == "::" {
		return "127.0.0.1"
	}
	return host
}
