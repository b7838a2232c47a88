// Command probe exits non-zero unless the PostgreSQL and Redis given as
// arguments answer, so CI fails loudly instead of skipping tests.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probe POSTGRES_URL REDIS_URL")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", os.Args[1])
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "PostgreSQL unreachable:", err)
		os.Exit(1)
	}
	opts, err := redis.ParseURL(os.Args[2])
	if err == nil {
		err = redis.NewClient(opts).Ping(ctx).Err()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Redis unreachable:", err)
		os.Exit(1)
	}
	fmt.Println("PostgreSQL and Redis reachable")
}
