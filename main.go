// Command tollgate is the Tollgate API server and its admin commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tollgate/tollgate/product"

	"github.com/joho/godotenv"

	"github.com/tollgate/tollgate/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, product.ID+":", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// .env is optional; variables already set in the environment win.
	if err := godotenv.Load(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf(".env: %w", err)
	}
	environ := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			environ[k] = v
		}
	}
	return cli.Run(ctx, os.Args[1:], environ, os.Stdout)
}
