package services

import (
	"context"
	"log/slog"
	"time"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/captcha"
	"github.com/tollgate/tollgate/metrics"
	"github.com/tollgate/tollgate/ratelimit"
)

// CaptchaMode is how one flow asks for a CAPTCHA: Always, or once After
// attempts (failed ones, for login and the token endpoint) came from the
// client's IP or for the account within the window; neither: never.
type CaptchaMode struct {
	Always bool
	After  int64
}

// CaptchaConfig configures the CAPTCHA gate.
type CaptchaConfig struct {
	Verifier captcha.Verifier // nil: no CAPTCHA anywhere
	Flows    map[string]CaptchaMode
	Window   time.Duration
	// FailOpen lets requests through while the provider cannot answer;
	// otherwise they get 503 captcha_unavailable. Either way it is logged.
	FailOpen bool
	Store    ratelimit.Store // counts the attempts of after:N modes
}

// Captcha decides, per flow, whether a request must carry a solved
// CAPTCHA, and checks it with the provider.
type Captcha struct {
	cfg     CaptchaConfig
	log     *slog.Logger
	metrics *metrics.Metrics
}

// NewCaptcha builds the gate.
func NewCaptcha(cfg CaptchaConfig, log *slog.Logger, m *metrics.Metrics) *Captcha {
	return &Captcha{cfg: cfg, log: log, metrics: m}
}

var (
	errCaptchaRequired = apperror.Define(apperror.Invalid, "captcha_required",
		"Solve the CAPTCHA and send its answer in the X-Captcha-Token header")
	errCaptchaInvalid = apperror.Define(apperror.Invalid, "captcha_invalid",
		"The CAPTCHA answer was refused (wrong, expired or used); solve it again")
	errCaptchaUnavailable = func() *apperror.Error {
		e := apperror.Define(apperror.Unavailable, "captcha_unavailable", "The CAPTCHA could not be checked; try again shortly")
		e.RetryAfter = 5 * time.Second
		return e
	}()
)

// Flow is what a front end needs to know of one flow's CAPTCHA.
type Flow struct {
	Mode  string // off, always or after
	After int64
}

// Flows are every flow's mode, for GET /auth/captcha.
func (c *Captcha) Flows(names []string) map[string]Flow {
	out := map[string]Flow{}
	for _, n := range names {
		m := c.cfg.Flows[n]
		switch {
		case c.cfg.Verifier == nil || (!m.Always && m.After == 0):
			out[n] = Flow{Mode: "off"}
		case m.Always:
			out[n] = Flow{Mode: "always"}
		default:
			out[n] = Flow{Mode: "after", After: m.After}
		}
	}
	return out
}

// Provider names the verifier ("" when off).
func (c *Captcha) Provider() string {
	if c.cfg.Verifier == nil {
		return ""
	}
	return c.cfg.Verifier.Name()
}

func (c *Captcha) policy(flow string) ratelimit.Policy {
	return ratelimit.Policy{Name: "captcha_" + flow, Limit: c.cfg.Flows[flow].After, Window: c.cfg.Window}
}

func captchaKeys(ip, account string) []string {
	keys := []string{"ip:" + ip}
	if account != "" {
		keys = append(keys, "account:"+hashToken(NormalizeEmail(account)))
	}
	return keys
}

// Check lets a request of flow from ip (for account, "" if none) through,
// or refuses it: 400 captcha_required without an answer when one is
// needed, 400 captcha_invalid for an answer the provider refuses, 503
// captcha_unavailable when the provider cannot answer (unless FailOpen).
func (c *Captcha) Check(ctx context.Context, flow, ip, account, token string) error {
	m := c.cfg.Flows[flow]
	if c.cfg.Verifier == nil || (!m.Always && m.After == 0) {
		return nil
	}
	if !m.Always && !c.over(ctx, flow, ip, account) {
		return nil
	}
	result := func(r string) { c.metrics.CaptchaChecks.WithLabelValues(flow, r).Inc() }
	if token == "" {
		result("required")
		return errCaptchaRequired
	}
	ok, err := c.cfg.Verifier.Verify(ctx, token, ip)
	switch {
	case err != nil && c.cfg.FailOpen:
		result("unavailable_open")
		c.log.Warn("CAPTCHA provider unavailable: letting the request through (CAPTCHA_FAIL_OPEN)", "flow", flow, "ip", ip, "error", err)
		return nil
	case err != nil:
		result("unavailable_closed")
		c.log.Warn("CAPTCHA provider unavailable: refusing the request (CAPTCHA_FAIL_OPEN is off)", "flow", flow, "ip", ip, "error", err)
		return errCaptchaUnavailable.WithCause(err)
	case !ok:
		result("refused")
		return errCaptchaInvalid
	}
	result("passed")
	return nil
}

// over reports whether ip or account has used up flow's after:N attempts.
func (c *Captcha) over(ctx context.Context, flow, ip, account string) bool {
	p := c.policy(flow)
	for _, k := range captchaKeys(ip, account) {
		r, err := c.cfg.Store.Peek(ctx, k, p)
		if err != nil {
			c.log.Warn("CAPTCHA attempt count unavailable; asking for a CAPTCHA", "flow", flow, "error", err)
			return true
		}
		if !r.Allowed {
			return true
		}
	}
	return false
}

// Attempted counts an attempt of flow (for login and the token endpoint,
// a failed one) toward its after:N mode.
func (c *Captcha) Attempted(ctx context.Context, flow, ip, account string) {
	if c.cfg.Verifier == nil || c.cfg.Flows[flow].After == 0 || c.cfg.Store == nil {
		return
	}
	p := c.policy(flow)
	for _, k := range captchaKeys(ip, account) {
		if _, err := c.cfg.Store.Take(ctx, k, p); err != nil {
			c.log.Warn("CAPTCHA attempt not counted", "flow", flow, "error", err)
		}
	}
}
