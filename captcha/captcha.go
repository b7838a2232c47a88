// Package captcha verifies CAPTCHA answers with the provider that issued
// them: Cloudflare Turnstile, hCaptcha or Google reCAPTCHA (their
// siteverify APIs), or a fake for tests and development.
package captcha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Verifier checks a CAPTCHA answer (the widget's token) given by a client
// at ip. It answers false for an answer the provider refuses, and an error
// when the provider cannot say (down, slow, malformed reply).
type Verifier interface {
	Verify(ctx context.Context, token, ip string) (bool, error)
	Name() string
}

// The providers' siteverify endpoints.
const (
	TurnstileURL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
	HCaptchaURL  = "https://api.hcaptcha.com/siteverify"
	ReCAPTCHAURL = "https://www.google.com/recaptcha/api/siteverify"
)

// Config is what a provider's verifier needs.
type Config struct {
	Provider string // turnstile, hcaptcha, recaptcha or fake
	Secret   string
	// URL overrides the provider's siteverify endpoint (tests, a proxy).
	URL     string
	Timeout time.Duration
	// MinScore: reCAPTCHA v3 answers below it fail (0: any score).
	MinScore float64
	Client   *http.Client // nil: one with Timeout
}

// New builds the verifier of cfg.Provider.
func New(cfg Config) (Verifier, error) {
	if cfg.Provider == "fake" {
		return Fake{}, nil
	}
	endpoint := map[string]string{"turnstile": TurnstileURL, "hcaptcha": HCaptchaURL, "recaptcha": ReCAPTCHAURL}[cfg.Provider]
	if endpoint == "" {
		return nil, fmt.Errorf("unknown CAPTCHA provider %q", cfg.Provider)
	}
	if cfg.URL != "" {
		endpoint = cfg.URL
	}
	if cfg.Secret == "" {
		return nil, errors.New("a CAPTCHA provider needs its secret key")
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	return &siteverify{name: cfg.Provider, url: endpoint, secret: cfg.Secret, timeout: cfg.Timeout, minScore: cfg.MinScore, client: client}, nil
}

// siteverify is the protocol the three providers share: a form POST of
// secret, response and remoteip, answered {"success": bool, ...}.
type siteverify struct {
	name, url, secret string
	timeout           time.Duration
	minScore          float64
	client            *http.Client
}

func (s *siteverify) Name() string { return s.name }

func (s *siteverify) Verify(ctx context.Context, token, ip string) (bool, error) {
	if token == "" {
		return false, nil
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	form := url.Values{"secret": {s.secret}, "response": {token}}
	if ip != "" {
		form.Set("remoteip", ip)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := s.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("%s siteverify: %w", s.name, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s siteverify answered %d", s.name, res.StatusCode)
	}
	var out struct {
		Success bool     `json:"success"`
		Score   *float64 `json:"score"` // reCAPTCHA v3
		Errors  []string `json:"error-codes"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&out); err != nil {
		return false, fmt.Errorf("%s siteverify: malformed answer: %w", s.name, err)
	}
	for _, e := range out.Errors {
		// The provider could not judge the answer because of us, not the
		// client: a misconfiguration or an outage, never the client's fault.
		if e == "invalid-input-secret" || e == "missing-input-secret" || e == "internal-error" {
			return false, fmt.Errorf("%s siteverify: %s", s.name, e)
		}
	}
	if out.Success && out.Score != nil && *out.Score < s.minScore {
		return false, nil
	}
	return out.Success, nil
}

// Fake accepts the answer "pass", refuses any other, and fails to answer
// for "unavailable" (a provider that is down): for tests and development.
type Fake struct{}

// FakeDown is the answer the fake cannot verify.
const FakeDown = "unavailable"

func (Fake) Name() string { return "fake" }

func (Fake) Verify(_ context.Context, token, _ string) (bool, error) {
	if token == FakeDown {
		return false, errors.New("fake CAPTCHA provider: down")
	}
	return token == "pass", nil
}
