// Command limits checks that a deployment's rate limits stay exact under
// load: bursts of -requests concurrent requests (-concurrency at a time)
// from one client IP, spread over every instance in -urls, while a second
// client keeps the CPU busy on another route. Each burst is a new client IP
// (X-Forwarded-For, with TRUSTED_PROXIES set on the instances), so it starts
// a fresh window. It exits 1 unless every burst admits exactly -limit.
//
// With -kill-pid, it checks the outage bound instead: in each burst, after
// -kill-after requests it kills that process (the instances' Redis) and
// reports what the deployment admitted in the window the outage began
// (bound: 2 x limit) and in a fresh window during it (bound: the limit).
// tests/load/limits.sh starts the instances and runs both.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	urls                []string
	path, loadPath      string
	limit, requests     int
	concurrency, bursts int
	loadClients         int
	killPid, killAfter  int
	settle              time.Duration
	block               int
}

func main() {
	var o options
	urls := flag.String("urls", "", "comma-separated base URLs of the instances")
	flag.StringVar(&o.path, "path", "/public/status", "limited route")
	flag.StringVar(&o.loadPath, "load-path", "/healthz", "route the CPU load hits")
	flag.IntVar(&o.limit, "limit", 100, "the limit per window configured on the instances")
	flag.IntVar(&o.requests, "requests", 150, "requests per burst")
	flag.IntVar(&o.concurrency, "concurrency", 30, "requests of a burst in flight at once")
	flag.IntVar(&o.bursts, "bursts", 10, "bursts")
	flag.IntVar(&o.loadClients, "load", 64, "concurrent connections of the CPU load (0: none)")
	flag.IntVar(&o.killPid, "kill-pid", 0, "outage mode: kill this process (Redis) mid-burst")
	flag.IntVar(&o.killAfter, "kill-after", 50, "outage mode: requests before the kill")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "outage mode: wait after the kill for the instances to notice")
	flag.IntVar(&o.block, "block", 0, "second octet of the client IPs: give each run of one deployment its own (1-250), so no burst meets an earlier run's window")
	flag.Parse()
	o.urls = strings.Split(*urls, ",")
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "limits:", err)
		os.Exit(1)
	}
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

// get sends one request as the client ip and returns the status (0: failed).
func get(url, ip string) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// burst sends n requests as ip, c at a time, round-robin over the
// instances, calling before(i) ahead of request i; it counts the statuses.
func burst(o options, ip string, n int, before func(i int)) map[int]int {
	var mu sync.Mutex
	counts := map[int]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if before != nil {
					before(i)
				}
				s := get(o.urls[i%len(o.urls)]+o.path, ip)
				mu.Lock()
				counts[s]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

func run(o options) error {
	if o.block == 0 {
		o.block = int(time.Now().UnixNano()>>8)%250 + 1
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	var loaded atomic.Int64
	var lg sync.WaitGroup
	for i := range o.loadClients {
		lg.Add(1)
		go func() {
			defer lg.Done()
			for ctx.Err() == nil {
				if get(o.urls[i%len(o.urls)]+o.loadPath, "") != 0 {
					loaded.Add(1)
				}
			}
		}()
	}
	defer func() { stopLoad(); lg.Wait() }()
	time.Sleep(500 * time.Millisecond) // the load is running before the first burst
	ip := func(b, k int) string { return fmt.Sprintf("10.%d.%d.%d", o.block, b%250+1, k%250+1) }

	if o.killPid != 0 {
		var once sync.Once
		kill := func(i int) {
			if i == o.killAfter {
				once.Do(func() { _ = syscall.Kill(o.killPid, syscall.SIGKILL) })
			}
		}
		c := burst(o, ip(0, 1), o.requests, kill)
		fmt.Printf("outage begins mid-window: %d allowed of %d (bound %d = 2 x limit), statuses %v\n", c[200], o.requests, 2*o.limit, c)
		time.Sleep(o.settle)
		d := burst(o, ip(0, 2), o.requests, nil)
		fmt.Printf("fresh window during the outage: %d allowed of %d (bound %d = the limit), statuses %v\n", d[200], o.requests, o.limit, d)
		if c[200] > 2*o.limit || d[200] > o.limit || c[200]+c[429] != o.requests || d[200]+d[429] != o.requests {
			return fmt.Errorf("outage bound broken")
		}
		return nil
	}

	exact := 0
	var got []int
	for b := range o.bursts {
		c := burst(o, ip(b, 0), o.requests, nil)
		got = append(got, c[200])
		if c[200] == o.limit && c[429] == o.requests-o.limit {
			exact++
		} else {
			fmt.Printf("burst %d: %v\n", b, c)
		}
	}
	fmt.Printf("%d of %d bursts admitted exactly %d of %d (allowed per burst: %v; %d load requests meanwhile)\n",
		exact, o.bursts, o.limit, o.requests, got, loaded.Load())
	if exact != o.bursts {
		return fmt.Errorf("limits not exact under load")
	}
	return nil
}
