package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

func init() {
	// Platform-wide rules: refused to the matrix's callers whatever the id.
	crossTenantIDs["/admin/ip-rules/{id}"] = theirAdmin
	notAboutAnotherOrg["POST /admin/ip-rules"] = "platform operators only; the rules are the platform's, no organization's"
}

// withOperator makes a platform operator: {admin} is its bearer header.
func withOperator(t testing.TB, a *App) map[string]string {
	return map[string]string{"admin": a.user(t, caller.Admin, caller.Free).Bearer()}
}

func TestIPRulesAPI(t *testing.T) {
	parallelTest(t)
	op := map[string]string{"Authorization": "{admin}"}
	withRule := func(t testing.TB, a *App) map[string]string {
		v := withOperator(t, a)
		r := a.do(t, Request{Method: "POST", URL: "/admin/ip-rules", Headers: map[string]string{"Authorization": v["admin"]},
			Body: map[string]string{"cidr": "198.51.100.0/24", "action": "block", "reason": "stuffing"}})
		mustf(t, r.Status == 201, "create: %d %s", r.Status, r.Body)
		v["rule"] = field(t, r, "id")
		return v
	}
	for _, s := range []Scenario{
		{Name: "an operator blocks a range", Method: "POST", URL: "/admin/ip-rules", Headers: op, Setup: withOperator,
			Body:           map[string]string{"cidr": "198.51.100.7/24", "action": "block", "reason": "stuffing", "ttl": "24h"},
			ExpectedStatus: 201, ExpectedContent: []string{`"cidr":"198.51.100.0/24"`, `"source":"admin"`, `"reason":"stuffing"`, `"expires_at":"`},
			After: func(t testing.TB, a *App, r *Response) {
				var n int64
				a.DB.Model(&models.AuditEvent{}).Where("action = ? AND target_id = ?", "ip_rule.created", field(t, r, "id")).Count(&n)
				mustf(t, n == 1, "not audited")
			}},
		{Name: "a single IPv6 address", Method: "POST", URL: "/admin/ip-rules", Headers: op, Setup: withOperator,
			Body: map[string]string{"cidr": "2001:db8::1", "action": "allow"}, ExpectedStatus: 201, ExpectedContent: []string{`"cidr":"2001:db8::1/128"`, `"expires_at":null`}},
		{Name: "not a CIDR", Method: "POST", URL: "/admin/ip-rules", Headers: op, Setup: withOperator,
			Body: map[string]string{"cidr": "300.1.2.3/8", "action": "block"}, ExpectedStatus: 400, ExpectedContent: []string{`"cidr"`}},
		{Name: "a mapped range too short", Method: "POST", URL: "/admin/ip-rules", Headers: op, Setup: withOperator,
			Body: map[string]string{"cidr": "::ffff:0:0/64", "action": "block"}, ExpectedStatus: 400, ExpectedContent: []string{`"cidr"`}},
		{Name: "an unknown action", Method: "POST", URL: "/admin/ip-rules", Headers: op, Setup: withOperator,
			Body: map[string]string{"cidr": "10.0.0.0/8", "action": "tarpit"}, ExpectedStatus: 400, ExpectedContent: []string{`"action"`}},
		{Name: "a bad ttl", Method: "POST", URL: "/admin/ip-rules", Headers: op, Setup: withOperator,
			Body: map[string]string{"cidr": "10.0.0.0/8", "action": "block", "ttl": "-1h"}, ExpectedStatus: 400, ExpectedContent: []string{`"ttl"`}},
		{Name: "a NUL in the reason", Method: "POST", URL: "/admin/ip-rules", Headers: op, Setup: withOperator,
			Body: `{"cidr":"10.0.0.0/8","action":"block","reason":"a\u0000b"}`, ExpectedStatus: 400, ExpectedContent: []string{"NUL"}},
		{Name: "a member may not", Method: "POST", URL: "/admin/ip-rules", Headers: map[string]string{"Authorization": "{user}"},
			Setup: func(t testing.TB, a *App) map[string]string {
				return map[string]string{"user": a.user(t, caller.Editor, caller.Free).Bearer()}
			},
			Body: map[string]string{"cidr": "10.0.0.0/8", "action": "block"}, ExpectedStatus: 403},
		{Name: "the list, with the configured ones", Method: "GET", URL: "/admin/ip-rules", Headers: op, Setup: withRule,
			Env:            []string{"IP_ALLOWLIST", "192.0.2.10", "IP_BLOCKLIST", "203.0.113.0/24"},
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{rule}"`, `"configured":{"allow":["192.0.2.10/32"],"block":["203.0.113.0/24"]}`}},
		{Name: "an operator removes a rule", Method: "DELETE", URL: "/admin/ip-rules/{rule}", Headers: op, Setup: withRule, ExpectedStatus: 204,
			After: func(t testing.TB, a *App, r *Response) {
				mustf(t, a.do(t, Request{Method: "GET", URL: "/users/me", RemoteAddr: "198.51.100.9:1", Headers: map[string]string{"Authorization": r.vals["admin"]}}).Status == 200, "still blocked after removal")
			}},
		{Name: "an unknown rule", Method: "DELETE", URL: "/admin/ip-rules/00000000-0000-4000-8000-000000000009", Headers: op, Setup: withOperator,
			ExpectedStatus: 404, ExpectedContent: []string{"ip_rule_not_found"}},
	} {
		s.Run(t)
	}
}

func TestIPBlocks(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "IP_ALLOWLIST", "198.51.100.77", "IP_BLOCKLIST", "203.0.113.0/24")
	admin := a.user(t, caller.Admin, caller.Free)
	from := func(ip string) *Response {
		return a.do(t, Request{Method: "GET", URL: "/public/status", RemoteAddr: ip})
	}
	rule := func(cidr, action, ttl string) {
		r := a.do(t, Request{Method: "POST", URL: "/admin/ip-rules", Headers: bearer(admin), Body: map[string]string{"cidr": cidr, "action": action, "ttl": ttl}})
		mustf(t, r.Status == 201, "%s %s: %d %s", action, cidr, r.Status, r.Body)
	}
	blocked := func(r *Response) bool { return r.Status == 403 && strings.Contains(r.Body, `"code":"ip_blocked"`) }

	mustf(t, blocked(from("203.0.113.9:1")), "the configured block")
	mustf(t, a.do(t, Request{Method: "GET", URL: "/healthz", RemoteAddr: "203.0.113.9:1"}).Status == 200, "the probes are exempt")
	rule("198.51.100.0/24", "block", "1h")
	rule("2001:db8::/32", "block", "")
	mustf(t, blocked(from("198.51.100.7:1")), "an admin block")
	mustf(t, blocked(from("[2001:db8::5]:1")), "an IPv6 block")
	mustf(t, blocked(from("[::ffff:198.51.100.7]:1")), "an IPv4-mapped address is the IPv4 address")
	mustf(t, from("198.51.100.77:1").Status == 200, "IP_ALLOWLIST wins over a block")
	mustf(t, from("192.0.2.1:1").Status == 200, "another address")
	rule("2001:db8:1::/48", "allow", "")
	mustf(t, from("[2001:db8:1::5]:1").Status == 200, "an allow rule wins over a block")
	a.Clock.Advance(time.Hour)
	mustf(t, from("198.51.100.7:1").Status == 200, "the block outlived its ttl")
	metrics := a.scrape(t)
	mustf(t, strings.Contains(metrics, `app_ip_blocked_requests_total{source="admin"} 3`) &&
		strings.Contains(metrics, `app_ip_blocked_requests_total{source="config"} 1`), "metrics:\n%s", grep(metrics, "ip_blocked"))
}

// Repeated rate-limit refusals block the address for a while: visible in
// the rules, the audit log, the log and the metrics.
func TestAutomaticIPBlock(t *testing.T) {
	parallelTest(t)
	a := newApp(t, "RATE_LIMIT_PUBLIC", "2/1m", "IP_AUTO_BLOCK", "3/5m", "IP_AUTO_BLOCK_FOR", "1h", "IP_ALLOWLIST", "192.0.2.200")
	admin := a.user(t, caller.Admin, caller.Free)
	hit := func(ip string) int {
		return a.do(t, Request{Method: "GET", URL: "/public/status", RemoteAddr: ip + ":1"}).Status
	}
	var got []int
	for range 6 {
		got = append(got, hit("198.51.100.50"))
	}
	mustf(t, got[0] == 200 && got[1] == 200 && got[2] == 429 && got[3] == 429 && got[4] == 429 && got[5] == 403, "answers %v", got)
	var rules []models.IPRule
	a.DB.Where("source = ?", "auto").Find(&rules)
	mustf(t, len(rules) == 1 && rules[0].CIDR == "198.51.100.50/32" && rules[0].ExpiresAt != nil, "auto rules %+v", rules)
	var audited int64
	a.DB.Model(&models.AuditEvent{}).Where("action = ? AND target_id = ?", "ip.auto_blocked", "198.51.100.50/32").Count(&audited)
	mustf(t, audited == 1, "not audited")
	mustf(t, strings.Contains(a.Logs.String(), "ip_auto_blocked"), "not logged")
	list := a.do(t, Request{Method: "GET", URL: "/admin/ip-rules", Headers: bearer(admin)})
	mustf(t, strings.Contains(list.Body, `"source":"auto"`), "not listed: %s", list.Body)
	metrics := a.scrape(t)
	mustf(t, strings.Contains(metrics, "app_ip_auto_blocks_total 1") && strings.Contains(metrics, `app_ip_blocked_requests_total{source="auto"} 1`), "metrics:\n%s", grep(metrics, "ip_"))
	// An allowlisted address is never blocked, however often refused.
	for range 8 {
		hit("192.0.2.200")
	}
	mustf(t, hit("192.0.2.200") == 429, "the allowlisted address was blocked")
	// The block ends on its own.
	a.Clock.Advance(time.Hour)
	mustf(t, hit("198.51.100.50") == 200, "still blocked after IP_AUTO_BLOCK_FOR")
}

// A rule made on one instance stops the address on another at once
// (announced through Redis).
func TestIPRulesSharedByInstances(t *testing.T) {
	url := sharedRedis(t)
	prefix := randomName("test:") + ":"
	a := newApp(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix)
	b := a.sibling(t, "REDIS_URL", url, "RATE_LIMIT_KEY_PREFIX", prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Server.Services.IPRules.Run(ctx)
	time.Sleep(200 * time.Millisecond) // b subscribed
	admin := a.user(t, caller.Admin, caller.Free)
	r := a.do(t, Request{Method: "POST", URL: "/admin/ip-rules", Headers: bearer(admin), Body: map[string]string{"cidr": "198.51.100.0/24", "action": "block"}})
	mustf(t, r.Status == 201, "create: %d %s", r.Status, r.Body)
	for i := 0; ; i++ {
		if b.do(t, Request{Method: "GET", URL: "/public/status", RemoteAddr: "198.51.100.3:1"}).Status == 403 {
			break
		}
		mustf(t, i < 50, "the other instance never refused the address")
		time.Sleep(20 * time.Millisecond)
	}
}
