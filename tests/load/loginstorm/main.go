// Command loginstorm checks that password hashing cannot starve the API:
// it keeps -logins concurrent logins running against a server while it
// probes GET /public/status at a steady rate, then reports the probe's
// latency percentiles and how the logins ended. It exits 1 when the probe's
// p99 is over -max-p99, or when a login ends other than 200 or 503 with
// Retry-After. tests/load/login-storm.sh starts a server and runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "server base URL")
	email := flag.String("email", "", "account to log in as")
	password := flag.String("password", "", "its password")
	logins := flag.Int("logins", 64, "concurrent logins kept running")
	duration := flag.Duration("duration", 15*time.Second, "how long to run")
	every := flag.Duration("probe-every", 10*time.Millisecond, "interval between status probes")
	maxP99 := flag.Duration("max-p99", 50*time.Millisecond, "fail when the status probe's p99 is above this")
	slots := flag.Int("slots", 0, "the server's hash slots (PASSWORD_HASH_CONCURRENCY as resolved); 0: skip the throughput goals")
	cost := flag.Int("cost", 12, "the server's bcrypt cost")
	maxBusy := flag.Float64("max-busy", 0.05, "with -slots: fail when more than this share of logins answer 503")
	minCeiling := flag.Float64("min-ceiling", 0.90, "with -slots: fail when logins/s is below this share of the slots' bcrypt ceiling")
	flag.Parse()
	ceiling := 0.0
	if *slots > 0 {
		ceiling = bcryptCeiling(*slots, *cost)
		fmt.Printf("bcrypt ceiling of %d slots at cost %d on this machine: %.2f hashes/s\n", *slots, *cost, ceiling)
	}
	if err := run(*base, *email, *password, *logins, *duration, *every, *maxP99, ceiling, *maxBusy, *minCeiling); err != nil {
		fmt.Fprintln(os.Stderr, "loginstorm:", err)
		os.Exit(1)
	}
}

// bcryptCeiling measures how many bcrypt checks slots goroutines complete
// per second here, before the storm: the most a server with that many hash
// slots could answer.
func bcryptCeiling(slots, cost int) float64 {
	hash, _ := bcrypt.GenerateFromPassword([]byte("ceiling-password"), cost)
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < 3*time.Second {
				_ = bcrypt.CompareHashAndPassword(hash, []byte("ceiling-password"))
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

func run(base, email, password string, logins int, duration, every, maxP99 time.Duration, ceiling, maxBusy, minCeiling float64) error {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: logins + 1}}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()

	var mu sync.Mutex
	outcomes := map[string]int{}
	var loginLatency []time.Duration
	var wg sync.WaitGroup
	for range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				resp, err := client.Post(base+"/auth/login", "application/json", bytes.NewReader(body))
				outcome := ""
				switch {
				case err != nil:
					outcome = "error: " + err.Error()
				case resp.StatusCode == 200:
					outcome = "200"
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "":
					outcome = "503 with Retry-After"
				default:
					outcome = fmt.Sprintf("unexpected %d", resp.StatusCode)
				}
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				outcomes[outcome]++
				loginLatency = append(loginLatency, time.Since(start))
				mu.Unlock()
				if resp != nil && resp.StatusCode == 503 {
					time.Sleep(100 * time.Millisecond) // a polite client backs off
				}
			}
		}()
	}

	var probes []time.Duration
	probeErrors := 0
	tick := time.NewTicker(every)
	for ctx.Err() == nil {
		<-tick.C
		start := time.Now()
		resp, err := client.Get(base + "/public/status")
		if err != nil || resp.StatusCode != 200 {
			probeErrors++
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		probes = append(probes, time.Since(start))
	}
	tick.Stop()
	wg.Wait()

	p := func(d []time.Duration, q float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[min(int(q*float64(len(d))), len(d)-1)]
	}
	fmt.Printf("GET /public/status during %d concurrent logins for %s: %d probes, p50 %s, p99 %s, max %s, %d failed\n",
		logins, duration, len(probes), p(probes, 0.5), p(probes, 0.99), p(probes, 1), probeErrors)
	fmt.Printf("logins: p50 %s, p99 %s\n", p(loginLatency, 0.5), p(loginLatency, 0.99))
	keys := make([]string, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bad := 0
	for _, k := range keys {
		fmt.Printf("  %-24s %d\n", k, outcomes[k])
		if k != "200" && k != "503 with Retry-After" {
			bad += outcomes[k]
		}
	}
	total := 0
	for _, n := range outcomes {
		total += n
	}
	served := float64(outcomes["200"]) / duration.Seconds()
	busy := float64(outcomes["503 with Retry-After"]) / float64(max(total, 1))
	fmt.Printf("logins served: %.2f/s; answered 503: %.1f%%\n", served, 100*busy)
	if ceiling > 0 {
		fmt.Printf("served at %.0f%% of the slots' bcrypt ceiling (goal %.0f%%); 503 goal under %.0f%%\n", 100*served/ceiling, 100*minCeiling, 100*maxBusy)
	}
	switch {
	case ceiling > 0 && busy > maxBusy:
		return fmt.Errorf("%.1f%% of logins answered 503 (goal under %.0f%%)", 100*busy, 100*maxBusy)
	case ceiling > 0 && served < minCeiling*ceiling:
		return fmt.Errorf("%.2f logins/s is %.0f%% of the ceiling %.2f/s (goal %.0f%%)", served, 100*served/ceiling, ceiling, 100*minCeiling)
	case bad > 0:
		return fmt.Errorf("%d logins ended other than 200 or 503 with Retry-After", bad)
	case probeErrors > 0:
		return fmt.Errorf("%d status probes failed", probeErrors)
	case p(probes, 0.99) > maxP99:
		return fmt.Errorf("status p99 %s is over %s", p(probes, 0.99), maxP99)
	}
	return nil
}
