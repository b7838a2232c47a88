// Command registertiming checks that POST /auth/register takes as long
// whatever the address: it registers -n times each a new address, an
// unverified one and a verified one (interleaved, so drift in the machine's
// load falls on all three alike), and exits 1 when the medians are more than
// -max-spread apart. tests/load/register-timing.sh starts a server (bcrypt
// cost 12) and runs it.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "server base URL")
	verified := flag.String("verified", "", "address of a verified account")
	n := flag.Int("n", 20, "requests per kind of address")
	maxSpread := flag.Float64("max-spread", 0.10, "fail when the slowest median exceeds the fastest by more than this fraction")
	flag.Parse()
	if err := run(*base, *verified, *n, *maxSpread); err != nil {
		fmt.Fprintln(os.Stderr, "registertiming:", err)
		os.Exit(1)
	}
}

func run(base, verified string, n int, maxSpread float64) error {
	client := &http.Client{Timeout: 30 * time.Second}
	stamp := time.Now().UnixNano()
	register := func(email string) (time.Duration, error) {
		body, _ := json.Marshal(map[string]string{"email": email, "password": "Timing-Password-1"})
		start := time.Now()
		resp, err := client.Post(base+"/auth/register", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("register %s: %d", email, resp.StatusCode)
		}
		return time.Since(start), nil
	}
	unverified := fmt.Sprintf("timing-unverified-%d@example.com", stamp)
	if _, err := register(unverified); err != nil {
		return err
	}
	kinds := []string{"new", "unverified", "verified"}
	took := map[string][]time.Duration{}
	for i := range n + 2 { // two warm-up rounds, not counted
		for _, kind := range kinds {
			email := map[string]string{"new": fmt.Sprintf("timing-new-%d-%d@example.com", stamp, i), "unverified": unverified, "verified": verified}[kind]
			d, err := register(email)
			if err != nil {
				return err
			}
			if i >= 2 {
				took[kind] = append(took[kind], d)
			}
		}
	}
	medians := map[string]time.Duration{}
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for _, kind := range kinds {
		slices.Sort(took[kind])
		m := took[kind][n/2]
		if n%2 == 0 {
			m = (took[kind][n/2-1] + took[kind][n/2]) / 2
		}
		medians[kind] = m
		lo, hi = min(lo, m), max(hi, m)
		fmt.Printf("%-10s median %v (min %v, max %v) over %d\n", kind, m.Round(100*time.Microsecond),
			took[kind][0].Round(100*time.Microsecond), took[kind][n-1].Round(100*time.Microsecond), n)
	}
	spread := float64(hi-lo) / float64(lo)
	fmt.Printf("spread between medians: %.1f%% (limit %.0f%%)\n", 100*spread, 100*maxSpread)
	if spread > maxSpread {
		return fmt.Errorf("medians %v apart by %.1f%%: the answer time tells addresses apart", medians, 100*spread)
	}
	return nil
}
