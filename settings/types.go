package settings

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/ratelimit"
)

// The setting types below parse themselves (encoding.TextUnmarshaler), so a
// value is read once, where it is loaded, and the rest of the app sees
// only the parsed form.

// Switch is an on/off setting whose default depends on the environment:
// unset, it takes the default Or is given.
type Switch struct{ set, on bool }

// UnmarshalText reads true or false.
func (s *Switch) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = Switch{}
		return nil
	}
	on, err := strconv.ParseBool(string(b))
	if err != nil {
		return fmt.Errorf("%q must be true or false", b)
	}
	*s = Switch{set: true, on: on}
	return nil
}

// Or is the switch's value, or def when it was not set.
func (s Switch) Or(def bool) bool {
	if !s.set {
		return def
	}
	return s.on
}

// OptionalDuration is a duration whose default depends on the environment.
type OptionalDuration struct {
	set bool
	d   time.Duration
}

// UnmarshalText reads a duration of 0 or more, such as 5s.
func (o *OptionalDuration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*o = OptionalDuration{}
		return nil
	}
	d, err := time.ParseDuration(string(b))
	if err != nil || d < 0 {
		return fmt.Errorf("%q must be a duration such as 5s (0s: none)", b)
	}
	*o = OptionalDuration{set: true, d: d}
	return nil
}

// Or is the duration, or def when it was not set.
func (o OptionalDuration) Or(def time.Duration) time.Duration {
	if !o.set {
		return def
	}
	return o.d
}

// PreviousSecrets are retired secrets that still verify or decrypt, as
// VERSION:SECRET pairs separated by commas.
type PreviousSecrets map[int]string

// UnmarshalText reads VERSION:SECRET,VERSION:SECRET.
func (p *PreviousSecrets) UnmarshalText(b []byte) error {
	out := PreviousSecrets{}
	for _, pair := range strings.Split(string(b), ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		v, secret, ok := strings.Cut(strings.TrimSpace(pair), ":")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 1 || len(secret) < 32 {
			return fmt.Errorf("must be VERSION:SECRET pairs, versions from 1, secrets of 32+ characters")
		}
		if _, twice := out[n]; twice {
			return fmt.Errorf("version %d is listed twice", n)
		}
		out[n] = secret
	}
	*p = out
	return nil
}

// Policies are several windows of one limit, as LIMIT/WINDOW,LIMIT/WINDOW
// (named by Config when loaded).
type Policies []ratelimit.Policy

// UnmarshalText reads LIMIT/WINDOW,LIMIT/WINDOW.
func (ps *Policies) UnmarshalText(b []byte) error {
	var out Policies
	for _, raw := range strings.Split(string(b), ",") {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		p, err := ratelimit.ParsePolicy("", raw)
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	*ps = out
	return nil
}

// TierPolicies are the per-user limits by tier, as TIER=LIMIT/WINDOW,...
type TierPolicies map[string]ratelimit.Policy

// UnmarshalText reads TIER=LIMIT/WINDOW,TIER=LIMIT/WINDOW.
func (t *TierPolicies) UnmarshalText(b []byte) error {
	out := TierPolicies{}
	for _, item := range strings.Split(string(b), ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		tier, raw, ok := strings.Cut(item, "=")
		tier = strings.TrimSpace(tier)
		if !ok || tier == "" {
			return fmt.Errorf("%q is not TIER=LIMIT/WINDOW such as free=60/1m", item)
		}
		// Every tier counts under the one "user" key space: a plan change
		// keeps the requests already made in the window.
		p, err := ratelimit.ParsePolicy("user", raw)
		if err != nil {
			return fmt.Errorf("%s: %w", tier, err)
		}
		out[tier] = p
	}
	*t = out
	return nil
}

// CaptchaFlows are the CAPTCHA modes by flow, as FLOW=MODE,... where MODE
// is off, always or after:N (N attempts, for login and the token endpoint
// failed ones, from the client's IP or for the account within
// CAPTCHA_WINDOW). Flows not named are off.
type CaptchaFlows map[string]CaptchaMode

// CaptchaMode is one flow's: Always, or from After attempts on (0: off).
type CaptchaMode struct {
	Always bool
	After  int64
}

// CaptchaFlowNames are the flows a CAPTCHA can guard.
var CaptchaFlowNames = []string{"register", "login", "forgot", "resend", "token"}

// UnmarshalText parses CAPTCHA_FLOWS.
func (f *CaptchaFlows) UnmarshalText(b []byte) error {
	out := CaptchaFlows{}
	for _, item := range strings.Split(string(b), ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		flow, mode, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || !slices.Contains(CaptchaFlowNames, flow) {
			return fmt.Errorf("%q is not FLOW=MODE with FLOW one of %s", item, strings.Join(CaptchaFlowNames, ", "))
		}
		switch n, found := strings.CutPrefix(mode, "after:"); {
		case mode == "off":
		case mode == "always":
			out[flow] = CaptchaMode{Always: true}
		case found:
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 1 || v > 1000 {
				return fmt.Errorf("%s: after:N needs N from 1 to 1000", flow)
			}
			out[flow] = CaptchaMode{After: v}
		default:
			return fmt.Errorf("%s: %q is not off, always or after:N", flow, mode)
		}
	}
	*f = out
	return nil
}
