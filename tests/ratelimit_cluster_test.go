package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startCluster runs a private three-master Redis Cluster (no replicas) and
// returns its ports and a stop function per node.
func startCluster(t *testing.T) ([]int, []func()) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not on PATH: %v", bin, err)
		}
	}
	dir := t.TempDir()
	var ports []int
	var stops []func()
	var addrs []string
	for range 3 {
		port := freePort(t)
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port), "--cluster-node-timeout", "1000",
			"--dir", dir)
		mustf(t, cmd.Start() == nil, "start redis-server")
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		}
		t.Cleanup(stop)
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
		for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
			mustf(t, i < 100, "redis-server on %d never answered", port)
			time.Sleep(20 * time.Millisecond)
		}
		c.Close()
		ports, stops, addrs = append(ports, port), append(stops, stop), append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	mustf(t, err == nil, "redis-cli --cluster create: %v\n%s", err, out)
	for _, p := range ports {
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", p)})
		for i := 0; ; i++ {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			mustf(t, i < 200, "cluster never became ok: %s", info)
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	return ports, stops
}

// clusterBurst sends n requests as client ip, 30 at a time, spread over the
// servers, and counts the statuses.
func clusterBurst(servers []*httptest.Server, ip string, n int) map[int]int {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	work := make(chan int, n)
	for i := range n {
		work <- i
	}
	close(work)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				req, _ := http.NewRequest("GET", servers[i%len(servers)].URL+"/public/status", nil)
				req.Header.Set("X-Forwarded-For", ip)
				status := 0
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// Three instances on a local three-master Redis Cluster (REDIS_MODE=cluster):
// keys of different clients live on different masters and each is limited
// exactly across the instances. Losing a master degrades as documented: no
// 5xx, and the deployment admits at most the instances' shares.
func TestLimitsOnARedisCluster(t *testing.T) {
	sharedRedis(t) // runs where the real-server tests run (CI)
	ports, stops := startCluster(t)
	url := fmt.Sprintf("redis://127.0.0.1:%d?addr=127.0.0.1:%d&addr=127.0.0.1:%d", ports[0], ports[1], ports[2])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var servers []*httptest.Server
	var apps []*App
	for range 3 {
		a := newApp(t, "REDIS_URL", url, "REDIS_MODE", "cluster", "RATE_LIMIT_PUBLIC", "50/1m", "TRUSTED_PROXIES", "127.0.0.1/32")
		go a.Server.Heartbeat(ctx)
		srv := httptest.NewServer(a.Handler)
		t.Cleanup(srv.Close)
		servers, apps = append(servers, srv), append(apps, a)
	}
	for _, a := range apps {
		eventually(t, 5*time.Second, func() bool { return metricValue(t, a, "app_rate_limit_instances") == "3" }, "heartbeat on the Cluster")
	}

	// Which master holds each client's key: the hash tag is the client IP.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}})
	defer cc.Close()
	shards, err := cc.ClusterShards(ctx).Result()
	mustf(t, err == nil, "%v", err)
	owner := func(ip string) string {
		slot, err := cc.ClusterKeySlot(ctx, ip).Result()
		mustf(t, err == nil, "%v", err)
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if r.Start <= slot && slot <= r.End {
					for _, n := range sh.Nodes {
						if n.Role == "master" {
							return fmt.Sprintf("127.0.0.1:%d", n.Port)
						}
					}
				}
			}
		}
		t.Fatalf("no master for slot %d", slot)
		return ""
	}
	masters := map[string]bool{}
	for i := 1; i <= 6; i++ {
		ip := fmt.Sprintf("198.51.100.%d", i)
		masters[owner(ip)] = true
		counts := clusterBurst(servers, ip, 80)
		mustf(t, counts[200] == 50 && counts[429] == 30, "client %s (master %s): %v", ip, owner(ip), counts)
	}
	mustf(t, len(masters) >= 2, "six clients' keys all on one master: %v", masters)
	for _, a := range apps {
		mustf(t, !strings.Contains(a.Logs.String(), "rate limit store unavailable"), "an instance left the Cluster: %s", a.Logs.String())
	}

	// One master goes: its keys fail, each instance limits by its share.
	victim := owner("198.51.100.200")
	for i, p := range ports {
		if fmt.Sprintf("127.0.0.1:%d", p) == victim {
			stops[i]()
		}
	}
	counts := clusterBurst(servers, "198.51.100.200", 80)
	mustf(t, counts[200]+counts[429] == 80, "a lost master answered other than 200 or 429: %v", counts)
	mustf(t, counts[200] <= 3*(50/3), "the deployment admitted %d with a master lost, over its shares (%d)", counts[200], 3*(50/3))
	for _, a := range apps {
		eventually(t, 5*time.Second, func() bool { return metricValue(t, a, "app_rate_limit_fallback") == "1" }, "the lost master is not reported")
	}
}
