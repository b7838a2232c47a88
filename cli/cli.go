// Package cli is the binary's command line: serve (the default), migrate,
// keys, user, purge, healthcheck and docs. Each command but help and docs
// loads the configuration; those that work on data build the app through
// server.Open and server.New, exactly as serve does.
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

	"github.com/tollgate/tollgate/product"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/migrations"
	"github.com/tollgate/tollgate/server"
	"github.com/tollgate/tollgate/services"
	"github.com/tollgate/tollgate/settings"
)

// usage names the binary after the product (package product), and the
// roles and tiers caller knows.
var usage = strings.NewReplacer("tollgate", product.ID, "ROLES", caller.Join(caller.Roles(), "|"), "TIERS", caller.Join(caller.Tiers(), "|")).Replace(`usage: tollgate [command]

  (no command), serve                 run the API server
  migrate up|down|status              apply, roll back one, or list migrations
  keys generate [--force|--if-missing]  write a new JWT key pair (--if-missing: only when there is none), and the API key pepper when missing
  docs DIR                            write openapi.json and schemas/ into DIR (go generate ./docs runs it)
  healthcheck                         exit 0 when the local server answers /healthz (for container health checks)
  purge                               delete expired tokens and stale unverified accounts now (the server also does it every PURGE_INTERVAL)
  user create --email E --password P [--role ROLES] [--tier TIERS]
                                      create a verified user (how the first admin is made)`)

// Run executes the command in args with configuration from environ.
// help and docs need none, so a broken environment cannot hide the usage.
func Run(ctx context.Context, args []string, environ map[string]string, out io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprintln(out, usage)
		return nil
	case "docs":
		return writeDocs(args, out)
	}
	cfg, err := settings.Load(environ)
	if err != nil {
		return err
	}
	log := newLogger(cfg, out)
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log)
	case "migrate":
		return migrate(ctx, cfg, args, out)
	case "keys":
		return keys(cfg, args, out)
	case "user":
		return user(ctx, cfg, log, args, out)
	case "healthcheck":
		return healthcheck(ctx, cfg)
	case "purge":
		return purge(ctx, cfg, log, out)
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

// build opens what cfg names and builds the app on it: the same
// composition the server runs, for every command that works on data.
func build(ctx context.Context, cfg settings.Config, log *slog.Logger) (*server.Server, func(), error) {
	d, closeDeps, err := server.Open(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	srv, err := server.New(d)
	if err != nil {
		closeDeps()
		return nil, nil, err
	}
	return srv, func() { srv.Close(); closeDeps() }, nil
}

func serve(ctx context.Context, cfg settings.Config, log *slog.Logger) error {
	// Listen first: without APP_BASE_URL, the links the server mails and
	// its issuer name the port it really listens on.
	ln, err := server.Listen(ctx, net.JoinHostPort(cfg.Host, cfg.Port))
	if err != nil {
		return err
	}
	cfg.ListeningOn(ln.Addr())
	srv, closeAll, err := build(ctx, cfg, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer closeAll()
	return srv.Run(ctx, ln)
}

func migrate(ctx context.Context, cfg settings.Config, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: " + product.ID + " migrate up|down|status")
	}
	db, err := server.OpenDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if args[0] == "up" {
		if _, err := server.Migrate(ctx, cfg, db); err != nil {
			return err
		}
	}
	// down and status run as the tables' owner too, when it is named.
	if cfg.DatabaseOwnerURL != "" {
		owner, err := server.OpenOwnerDB(ctx, cfg)
		if err != nil {
			return err
		}
		defer owner.Close()
		db = owner
	}
	sqlDB, err := db.DB.DB()
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
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
		return errors.New("usage: " + product.ID + " keys generate [--force | --if-missing]")
	}
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(out)
	force := fs.Bool("force", false, "replace existing key files")
	ifMissing := fs.Bool("if-missing", false, "do nothing when both key files exist (a one-shot container's job)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// The pepper, MFA and audit keys are made when missing and never
	// replaced, not even with --force: every stored HMAC and ciphertext
	// depends on them (docs/secrets.md).
	made, err := server.WriteMissingSecrets(cfg)
	if err != nil {
		return err
	}
	for _, g := range made {
		fmt.Fprintf(out, "wrote %s (%s: keep secret, never replace)\n", g.File, g.What)
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

func user(ctx context.Context, cfg settings.Config, log *slog.Logger, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: " + product.ID + " user create --email E --password P [--role R] [--tier T]")
	}
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	fs.SetOutput(out)
	email := fs.String("email", "", "email address")
	password := fs.String("password", "", "password (10+ characters, upper, lower, digit)")
	role := fs.String("role", string(caller.Viewer), caller.Join(caller.Roles(), ", "))
	tier := fs.String("tier", string(caller.Free), caller.Join(caller.Tiers(), ", "))
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	srv, closeAll, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	u, err := srv.Services.Users.Create(ctx, services.NewUser{
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

// purge runs the clean-up the server runs every PURGE_INTERVAL: the same
// services.Purge, audit retention and the chain's anchor included.
func purge(ctx context.Context, cfg settings.Config, log *slog.Logger, out io.Writer) error {
	srv, closeAll, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	n, err := srv.Services.Purge.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "purged %d refresh tokens, %d verification tokens, %d unverified accounts, %d old mails, "+
		"%d reset tokens, %d MFA challenges, %d revoked API keys, %d audit events\n",
		n.RefreshTokens, n.VerificationTokens, n.UnverifiedUsers, n.Mail, n.ResetTokens, n.MFAChallenges, n.APIKeys, n.AuditEvents)
	return nil
}

// probeHost is where the health check finds a server listening on host:
// loopback when it listens on every address.
func probeHost(host string) string {
	if host == "" || host == "0.0.0.0" || host == "::" {
		return "127.0.0.1"
	}
	return host
}
