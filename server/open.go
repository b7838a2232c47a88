package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/clock"
	"github.com/tollgate/tollgate/database"
	"github.com/tollgate/tollgate/mail"
	"github.com/tollgate/tollgate/settings"
)

// Open connects to what cfg names and loads what the app is built from:
// the secrets, the database (migrated), Redis when set, and the mail
// transport. closeAll releases them. `tollgate serve`, `user` and
// `purge` all start here; tests build Deps of their own (a database per
// test, a manual clock, mail in memory) and share everything after.
func Open(ctx context.Context, cfg settings.Config, log *slog.Logger) (d Deps, closeAll func(), err error) {
	var closers []func()
	release := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	if err := checkProduction(cfg); err != nil {
		return Deps{}, nil, err
	}
	secrets, err := LoadSecrets(cfg, log)
	if err != nil {
		return Deps{}, nil, err
	}
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		return Deps{}, nil, err
	}
	closers = append(closers, func() { db.Close() })
	applied, err := Migrate(ctx, cfg, db)
	if err != nil {
		return Deps{}, nil, err
	}
	log.Info("database", "using", db.Description)
	if len(applied) > 0 {
		log.Info("migrations applied", "versions", applied)
	}
	if err := checkRowSecurity(ctx, cfg, db, log); err != nil {
		return Deps{}, nil, err
	}
	var rdb redis.UniversalClient
	if cfg.RedisURL != "" {
		// go-redis logs dial failures itself, on stderr: route them through
		// slog like everything else.
		redis.SetLogger(redisLogger{log})
		var where string
		if rdb, where, err = OpenRedis(cfg.RedisURL, cfg.RedisMode); err != nil {
			return Deps{}, nil, err
		}
		closers = append(closers, func() { rdb.Close() })
		log.Info("redis", "mode", cfg.RedisMode, "address", where)
	}
	mailer, err := NewMailer(cfg, log)
	if err != nil {
		return Deps{}, nil, err
	}
	log.Info("mail", "destination", mailer.Destination())
	return Deps{Config: cfg, DB: db, Redis: rdb, Secrets: secrets, Clock: clock.System{}, Mailer: mailer, Log: log}, release, nil
}

// OpenDB connects to the database cfg names and checks it answers.
func OpenDB(ctx context.Context, cfg settings.Config) (*database.DB, error) {
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

// Migrate applies pending migrations. With DATABASE_OWNER_URL they run as
// that role, which owns the tables, and then grant app's role the rows of
// them (docs/deploying.md); without, as app's own role.
func Migrate(ctx context.Context, cfg settings.Config, app *database.DB) ([]int64, error) {
	if cfg.DatabaseOwnerURL == "" {
		return app.Migrate(ctx)
	}
	owner, err := OpenOwnerDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer owner.Close()
	applied, err := owner.Migrate(ctx)
	if err != nil {
		return nil, err
	}
	them, _, err := app.Role(ctx)
	if err != nil {
		return applied, err
	}
	me, _, err := owner.Role(ctx)
	if err != nil {
		return applied, err
	}
	if them.Name != me.Name {
		err = owner.Grant(ctx, them.Name)
	}
	return applied, err
}

// OpenOwnerDB connects as DATABASE_OWNER_URL's role, one connection.
func OpenOwnerDB(ctx context.Context, cfg settings.Config) (*database.DB, error) {
	cfg.DatabaseURL, cfg.DBMaxOpenConns, cfg.DBMaxIdleConns = cfg.DatabaseOwnerURL, 1, 1
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_OWNER_URL: %w", err)
	}
	return db, nil
}

// checkRowSecurity refuses, in production, a PostgreSQL role that
// row-level security does not bind (a superuser, BYPASSRLS, the tables'
// owner): tenant isolation would rest on the queries alone. Development
// only warns, so `DATABASE_URL=postgres://postgres@...` still runs.
func checkRowSecurity(ctx context.Context, cfg settings.Config, db *database.DB, log *slog.Logger) error {
	r, ok, err := db.Role(ctx)
	if err != nil || !ok {
		return err
	}
	why := r.Unbound()
	if why == "" {
		return nil
	}
	fix := "connect DATABASE_URL as a role that owns nothing, and run migrations with DATABASE_OWNER_URL (docs/deploying.md)"
	if cfg.IsProduction() {
		return fmt.Errorf("%s: row-level security would not isolate organizations; %s", why, fix)
	}
	log.Warn(why+": row-level security does not bind it (production refuses this)", "fix", fix)
	return nil
}

// NewMailer is the transport mail leaves by: the SMTP relay of SMTP_URL,
// else the log (with bodies in development, where the walkthrough reads
// links from it; without in production, where bodies hold tokens).
func NewMailer(cfg settings.Config, log *slog.Logger) (mail.Mailer, error) {
	if cfg.SMTPURL != "" {
		return mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom)
	}
	return &mail.Log{Log: log, IncludeBody: !cfg.IsProduction()}, nil
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
