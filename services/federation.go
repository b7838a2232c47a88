package services

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"golang.org/x/oauth2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/caller"
	"github.com/tollgate/tollgate/models"
)

// Sign-in with an OpenID Connect provider (Google, Microsoft, Okta,
// Keycloak, any issuer with discovery), as a relying party:
//
//  1. Start: a state (single use, expiring, bound by a cookie to the
//     browser that started it), a nonce and a PKCE S256 verifier are
//     stored; the browser goes to the provider.
//  2. Callback: the state, its browser and the provider are checked, the
//     code is exchanged with the verifier, the ID token is verified
//     (signature by the provider's JWKS, iss, aud, exp, nonce), the person
//     is found or made (resolve), and the browser goes back to the front
//     end with a one-time code: never a token in a URL.
//  3. The front end trades the code (once, within a minute; with its own
//     PKCE verifier when it sent a challenge at the start, as a mobile app
//     does) for the same answer as a password login.

var (
	errProviderUnknown   = apperror.Define(apperror.NotFound, "provider_not_found", "No such sign-in provider")
	errRedirectNotListed = apperror.Define(apperror.Invalid, "redirect_uri_not_allowed", "redirect_uri is not one of OAUTH_REDIRECT_URIS")
	errChallengeFormat   = apperror.Define(apperror.Invalid, "invalid_code_challenge", "code_challenge must be the base64url SHA-256 of a verifier (43 characters)")
	errStateInvalid      = apperror.Define(apperror.Invalid, "oauth_state_invalid", "This sign-in was not started here, was used already or has expired; start again")
	errOAuthCodeInvalid  = apperror.Define(apperror.Invalid, "oauth_code_invalid", "This sign-in code is unknown, used, expired, or its code_verifier does not match")
	errProviderDown      = apperror.Define(apperror.Unavailable, "provider_unavailable", "The sign-in provider cannot be reached; try again")
)

// Why a callback failed after its state checked out: sent to the front
// end as ?error=, never as a token.
const (
	failProvider       = "provider_error"            // the provider answered an error (the person declined)
	failExchange       = "code_exchange_failed"      // the code or the PKCE verifier was refused
	failIDToken        = "id_token_invalid"          // signature, issuer, audience, expiry or nonce
	failUnverified     = "provider_email_unverified" // no address the provider vouches for
	failLinkFirst      = "identity_link_required"    // an account has the address; sign in to it first
	federationFlowTTL  = 10 * time.Minute
	federationCodeTTL  = time.Minute
	federationTokenLen = 32
)

// Provider is an OpenID Connect provider people may sign in with.
type Provider struct {
	Name         string   `json:"name"`          // in URLs: /auth/oauth/{name}/start
	DisplayName  string   `json:"display_name"`  // for a login screen
	Issuer       string   `json:"issuer"`        // discovery at {issuer}/.well-known/openid-configuration
	ClientID     string   `json:"client_id"`     // registered with the provider
	ClientSecret string   `json:"client_secret"` // ditto; from a file in config/ or the environment
	Scopes       []string `json:"scopes"`        // beyond openid; default email, profile
	// Type is "oidc" (the default: any issuer with discovery) or "github"
	// (OAuth 2.0 without ID tokens; issuer defaults to https://github.com,
	// or names a GitHub Enterprise Server).
	Type string `json:"type,omitempty"`
	// Attributes name the ID token claims the user's profile takes
	// ("name", "picture" by default): {"name": "given_name"}.
	Attributes map[string]string `json:"attributes,omitempty"`
	// HTTPClient reaches this provider (nil: FederationConfig's); the
	// development provider's needs no network.
	HTTPClient *http.Client `json:"-"`
	// callback overrides /auth/oauth/{name}/callback (SSO connections').
	callback string
	// groups names the claim with the person's groups (SSO connections).
	groups string
	// version changes with the settings the discovered party holds (an SSO
	// connection's issuer, client and scopes): every instance then
	// discovers the provider again.
	version string
}

// FederationConfig holds the providers and where sign-ins may end.
type FederationConfig struct {
	Providers []Provider
	// RedirectURIs are the front end's pages a finished sign-in may be
	// sent to, matched exactly (no open redirect).
	RedirectURIs []string
	BaseURL      string       // this API's public URL, for the callback
	HTTPClient   *http.Client // discovery, JWKS and code exchange (nil: a 10 s default)
	SSO          SSOConfig    // organizations' own identity providers
}

// Federation signs people in through OpenID Connect providers.
type Federation struct {
	*accountDeps
	login *Login
	cfg   FederationConfig

	mu      sync.Mutex
	parties map[string]*relyingParty // by provider, discovered on first use

	outboundOnce sync.Once
	outboundHTTP *http.Client // SSO connections' (see outbound)
}

type relyingParty struct {
	version  string // of the Provider it was made from
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier // nil: not OpenID Connect (GitHub)
	api      string                // GitHub's REST API base
}

// ProviderInfo is a provider as a login screen lists it.
type ProviderInfo struct{ Name, DisplayName string }

// Providers lists the configured providers.
func (s *Federation) Providers() []ProviderInfo {
	out := make([]ProviderInfo, 0, len(s.cfg.Providers))
	for _, p := range s.cfg.Providers {
		out = append(out, ProviderInfo{Name: p.Name, DisplayName: p.DisplayName})
	}
	return out
}

func (s *Federation) provider(name string) (*Provider, error) {
	for i := range s.cfg.Providers {
		if s.cfg.Providers[i].Name == name {
			return &s.cfg.Providers[i], nil
		}
	}
	return nil, errProviderUnknown
}

// providerFor is a configured provider, or for "sso:{id}" the enabled
// OpenID Connect connection with that id (c set).
func (s *Federation) providerFor(ctx context.Context, name string) (*Provider, *models.SSOConnection, error) {
	id, ok := strings.CutPrefix(name, ssoProviderPrefix)
	if !ok {
		p, err := s.provider(name)
		return p, nil, err
	}
	c, err := s.enabledConnection(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if c.Kind != connOIDC {
		return nil, nil, errConnNotFound
	}
	secret, err := s.accountDeps.cfg.MFAKeys.openFor(secretPurposeSSO, c.ClientSecret, c.KeyVersion, c.ID[:])
	if err != nil {
		return nil, nil, apperror.Wrap(err, "open client secret")
	}
	attrs := map[string]string{}
	if c.NameAttribute != "" {
		attrs["name"] = c.NameAttribute
	}
	if c.EmailAttribute != "" {
		attrs["email"] = c.EmailAttribute
	}
	return &Provider{Name: name, DisplayName: c.Name, Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: secret, Type: typeOIDC,
		Scopes:     append([]string{"email", "profile"}, strings.Fields(c.Scopes)...),
		Attributes: attrs, HTTPClient: s.outbound(), callback: s.cfg.BaseURL + "/auth/sso/" + c.ID.String() + "/callback", groups: c.GroupsAttribute,
		version: hashToken(strings.Join([]string{c.Issuer, c.ClientID, c.ClientSecret, c.Scopes}, "\x00"))}, c, nil
}

// enabledConnection loads an enabled connection by its id (as a URL gives it).
func (s *Federation) enabledConnection(ctx context.Context, raw string) (*models.SSOConnection, error) {
	id, err := uuid.Parse(raw)
	if err != nil {
		return nil, errConnNotFound
	}
	var c models.SSOConnection
	err = s.db.WithContext(ctx).Where("id = ? AND enabled = ?", id, true).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errConnNotFound
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load connection")
	}
	return &c, nil
}

// discover reads an issuer's OpenID Connect discovery document.
func (s *Federation) discover(ctx context.Context, issuer string) (*oidc.Provider, error) {
	return oidc.NewProvider(oidc.ClientContext(ctx, s.outbound()), issuer)
}

func (s *Federation) httpContext(ctx context.Context, p *Provider) context.Context {
	c := p.HTTPClient
	if c == nil {
		c = s.cfg.HTTPClient
	}
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return oidc.ClientContext(ctx, c)
}

// party discovers p once; a failed discovery is tried again next time.
func (s *Federation) party(ctx context.Context, p *Provider) (*relyingParty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rp := s.parties[p.Name]; rp != nil && rp.version == p.version {
		return rp, nil
	}
	callback := p.callback
	if callback == "" {
		callback = s.cfg.BaseURL + "/auth/oauth/" + p.Name + "/callback"
	}
	if p.Type == typeGitHub {
		rp := gitHubParty(p, callback)
		rp.version = p.version
		s.remember(p.Name, rp)
		return rp, nil
	}
	op, err := oidc.NewProvider(s.httpContext(ctx, p), p.Issuer)
	if err != nil {
		s.log.Warn("oidc discovery failed", "provider", p.Name, "error", err)
		return nil, errProviderDown
	}
	scopes := p.Scopes
	if len(scopes) == 0 {
		scopes = []string{"email", "profile"}
	}
	rp := &relyingParty{version: p.version,
		oauth: &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, Endpoint: op.Endpoint(),
			RedirectURL: callback, Scopes: append([]string{oidc.ScopeOpenID}, scopes...)},
		verifier: op.VerifierContext(s.httpContext(context.WithoutCancel(ctx), p), &oidc.Config{ClientID: p.ClientID, Now: s.clock.Now}),
	}
	s.remember(p.Name, rp)
	return rp, nil
}

func (s *Federation) remember(name string, rp *relyingParty) {
	if s.parties == nil {
		s.parties = map[string]*relyingParty{}
	}
	s.parties[name] = rp
}

// Started is a sign-in begun: where to send the browser, and the value the
// browser must bring back (its cookie).
type Started struct {
	AuthURL string
	State   string        // names the browser's cookie, so parallel sign-ins keep theirs
	Browser string        // the cookie's value
	TTL     time.Duration // how long the sign-in (and so the cookie) lasts
}

// StartRequest is what a sign-in starts from: the provider, the front
// end's page to end at, optionally the front end's PKCE S256 challenge for
// the one-time code and a login_hint passed on to the provider.
type StartRequest struct {
	Provider, RedirectURI, CodeChallenge, LoginHint string
}

// Start begins a sign-in.
func (s *Federation) Start(ctx context.Context, in StartRequest) (*Started, error) {
	return s.start(ctx, in, nil)
}

// start begins a sign-in, or with link set, linking a provider to that user.
func (s *Federation) start(ctx context.Context, in StartRequest, link *uuid.UUID) (*Started, error) {
	p, conn, err := s.providerFor(ctx, in.Provider)
	if err != nil {
		return nil, err
	}
	if err := s.checkReturn(in); err != nil {
		return nil, err
	}
	rp, err := s.party(ctx, p)
	if err != nil {
		return nil, err
	}
	flow, st, err := s.newFlow(ctx, p.Name, in, link, conn, "")
	if err != nil {
		return nil, err
	}
	verifier, nonce, state := flow.Verifier, flow.Nonce, st.State
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if rp.verifier != nil {
		opts = append(opts, oidc.Nonce(nonce))
	}
	if in.LoginHint != "" && len(in.LoginHint) <= 254 {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", in.LoginHint))
	}
	st.AuthURL = rp.oauth.AuthCodeURL(state, opts...)
	return st, nil
}

// checkReturn checks where a sign-in may end and the front end's challenge.
func (s *Federation) checkReturn(in StartRequest) error {
	if !slices.Contains(s.cfg.RedirectURIs, in.RedirectURI) {
		return errRedirectNotListed
	}
	if in.CodeChallenge != "" {
		if raw, err := base64.RawURLEncoding.DecodeString(in.CodeChallenge); err != nil || len(raw) != sha256.Size {
			return errChallengeFormat
		}
	}
	return nil
}

// newFlow stores a sign-in in progress: its state (the RelayState of a
// SAML one), the browser's binding, a nonce (a SAML one's: the AuthnRequest
// ID, given) and a PKCE verifier.
func (s *Federation) newFlow(ctx context.Context, provider string, in StartRequest, link *uuid.UUID, conn *models.SSOConnection, nonce string) (*models.OAuthFlow, *Started, error) {
	var state, browser string
	var err error
	for _, v := range []*string{&state, &browser, &nonce} {
		if *v != "" {
			continue
		}
		if *v, err = newOpaqueToken(federationTokenLen); err != nil {
			return nil, nil, apperror.Wrap(err, "make sign-in secrets")
		}
	}
	now := s.clock.Now()
	flow := &models.OAuthFlow{ID: uuid.New(), StateHash: hashToken(state), BrowserHash: hashToken(browser), Provider: provider, Nonce: nonce,
		Verifier: oauth2.GenerateVerifier(), RedirectURI: in.RedirectURI, CodeChallenge: in.CodeChallenge, LinkUserID: link, ExpiresAt: now.Add(federationFlowTTL), CreatedAt: now}
	if conn != nil {
		flow.ConnectionID = &conn.ID
	}
	if err := s.db.WithContext(ctx).Create(flow).Error; err != nil {
		return nil, nil, apperror.Wrap(err, "store sign-in")
	}
	return flow, &Started{State: state, Browser: browser, TTL: federationFlowTTL}, nil
}

// Callback is what the provider sends the browser back with.
type Callback struct {
	Provider, State, Code, Error string
	Browser                      string // the cookie Start set ("" when the browser sent none)
}

// Callback finishes a sign-in and answers where to send the browser: the
// front end's redirect_uri with ?code= (one time) or ?error=. A state that
// does not check out is an error, not a redirect: where it would send the
// browser cannot be trusted.
func (s *Federation) Callback(ctx context.Context, in Callback) (string, error) {
	flow, err := s.claimFlow(ctx, in.State, in.Browser, in.Provider)
	if err != nil {
		return "", err
	}
	fail := func(reason string) (string, error) {
		ev := Event{Action: "auth.oidc_failed", Outcome: Failure, Reason: reason, TargetType: "provider", TargetID: flow.Provider}
		if flow.ConnectionID != nil {
			ev.Action, ev.TargetType, ev.TargetID = "auth.sso_failed", "sso_connection", flow.ConnectionID.String()
		}
		s.audit.RecordAlone(ctx, ev)
		return withQuery(flow.RedirectURI, "error", reason), nil
	}
	if in.Error != "" || in.Code == "" {
		return fail(failProvider)
	}
	p, conn, err := s.providerFor(ctx, flow.Provider)
	if err != nil {
		return "", err
	}
	rp, err := s.party(ctx, p)
	if err != nil {
		return "", err
	}
	tok, err := rp.oauth.Exchange(s.httpContext(ctx, p), in.Code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		s.log.Info("oidc code exchange refused", "provider", p.Name, "error", err)
		return fail(failExchange)
	}
	var who claimed
	if rp.verifier == nil {
		who, err = gitHubUser(s.httpContext(ctx, p), rp, tok)
		if err != nil {
			s.log.Info("github user refused", "provider", p.Name, "error", err)
			return fail(failExchange)
		}
	} else if who, err = idTokenUser(s.httpContext(ctx, p), rp, tok, flow.Nonce, p); err != nil {
		s.log.Info("oidc id token refused", "provider", p.Name, "error", err)
		return fail(failIDToken)
	}
	if who, err = storable(who); err != nil {
		s.log.Info("provider claims refused", "provider", p.Name, "error", err)
		return fail(failIDToken)
	}
	if conn != nil {
		u, reason, err := s.ssoSignIn(ctx, conn, who)
		if err != nil {
			return "", err
		}
		if reason != "" {
			return fail(reason)
		}
		return s.handBack(ctx, flow, p.Name, &models.OAuthCode{UserID: u.ID, OrgID: &conn.OrgID})
	}
	if flow.LinkUserID != nil {
		return s.handBack(ctx, flow, p.Name, &models.OAuthCode{UserID: *flow.LinkUserID, Link: true, Subject: who.Subject,
			Email: NormalizeEmail(who.Email), EmailVerified: who.EmailVerified})
	}
	u, reason, err := s.resolve(ctx, p.Name, who)
	if err != nil {
		return "", err
	}
	if reason != "" {
		return fail(reason)
	}
	return s.handBack(ctx, flow, p.Name, &models.OAuthCode{UserID: u.ID})
}

// errStateUnknown is errStateInvalid for a state no sign-in has (a SAML
// RelayState that may be an IdP-initiated one's).
var errStateUnknown = fmt.Errorf("%w (unknown state)", errStateInvalid)

// claimFlow spends the sign-in state names, for provider's callback: it
// must exist (else errStateUnknown), have been started by this browser,
// and be unused and unexpired (else errStateInvalid). A link, started by
// the front end with a login, is bound instead to the front end's PKCE
// verifier and that login, both checked when its code is traded.
func (s *Federation) claimFlow(ctx context.Context, state, browser, provider string) (*models.OAuthFlow, error) {
	if state == "" || len(state) > 200 {
		return nil, errStateUnknown
	}
	var flow models.OAuthFlow
	err := s.db.WithContext(ctx).Where("state_hash = ?", hashToken(state)).Take(&flow).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errStateUnknown
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load sign-in")
	}
	browserOK := flow.LinkUserID != nil || (browser != "" && subtle.ConstantTimeCompare([]byte(flow.BrowserHash), []byte(hashToken(browser))) == 1)
	if flow.Provider != provider || !browserOK {
		return nil, errStateInvalid // another provider's callback, or another browser
	}
	now := s.clock.Now()
	res := s.db.WithContext(ctx).Model(&models.OAuthFlow{}).Where("id = ? AND used_at IS NULL AND expires_at > ?", flow.ID, now).Update("used_at", now)
	if res.Error != nil {
		return nil, apperror.Wrap(res.Error, "use sign-in")
	}
	if res.RowsAffected == 0 {
		return nil, errStateInvalid // used (a replay) or expired
	}
	return &flow, nil
}

// storable makes what an IdP claims safe to keep on either database
// (PostgreSQL refuses NUL, which JSON can carry): a subject identifies, so
// one that is not plain text is refused rather than changed; an address
// that is not one is taken as none.
func storable(who claimed) (claimed, error) {
	if who.Subject == "" || len(who.Subject) > 1000 || CleanText(who.Subject, 1000) != who.Subject {
		return who, errors.New("the subject is empty, too long or not plain text")
	}
	if who.Email = NormalizeEmail(who.Email); CheckEmail(who.Email) != "" {
		who.Email, who.EmailVerified = "", false
	}
	return who, nil
}

// handBack stores oc as the flow's one-time code and answers where it goes.
func (s *Federation) handBack(ctx context.Context, flow *models.OAuthFlow, provider string, oc *models.OAuthCode) (string, error) {
	code, err := newOpaqueToken(federationTokenLen)
	if err != nil {
		return "", apperror.Wrap(err, "make sign-in code")
	}
	now := s.clock.Now()
	oc.ID, oc.CodeHash, oc.Provider, oc.CodeChallenge, oc.ExpiresAt, oc.CreatedAt = uuid.New(), hashToken(code), provider, flow.CodeChallenge, now.Add(federationCodeTTL), now
	if err := s.db.WithContext(ctx).Create(oc).Error; err != nil {
		return "", apperror.Wrap(err, "store sign-in code")
	}
	return withQuery(flow.RedirectURI, "code", code), nil
}

func withQuery(raw, key, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw // allowlisted at the start: parsed then
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// resolve finds or makes the user a provider's subject signs in as. A
// reason ("" for none) says why nobody: the person must do something first.
//
//   - A known subject is its user.
//   - Otherwise the address decides, and only when the provider says it is
//     verified: an unverified claim never reaches an account (anyone can
//     put any address in some providers' profiles).
//   - A verified local account with that address gets the identity linked.
//   - An unverified local account with that address is claimed: whoever
//     registered it never proved the address, the person signing in just
//     did. Its password is removed (else a squatter who registered the
//     address first, waiting for its owner, would keep a way in: the
//     pre-account takeover), its sessions and keys end, and it is marked
//     verified.
//   - No account: one is made, verified, in the organization ORG_SIGNUP
//     says, without a password (a reset can set one).
func (s *Federation) resolve(ctx context.Context, provider string, who claimed) (*models.User, string, error) {
	var u *models.User
	reason := ""
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if u, err = s.known(tx, provider, who); u != nil || err != nil {
			return err
		}
		email := NormalizeEmail(who.Email)
		local, err := userByEmail(tx, email)
		if err != nil {
			return err
		}
		switch {
		case email == "" || CheckEmail(email) != "":
			reason = failUnverified
			return nil
		case !who.EmailVerified && local != nil:
			reason = failLinkFirst
			return nil
		case !who.EmailVerified:
			reason = failUnverified
			return nil
		}
		u, err = s.adopt(ctx, tx, provider, who, local, "", func(u *models.User) error { return s.orgs.joinOnSignup(ctx, tx, u) })
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return u, reason, nil
}

// known is the user of provider's subject, with the identity and profile
// brought up to date (nil: no such identity).
func (s *Federation) known(tx *gorm.DB, provider string, who claimed) (*models.User, error) {
	var id models.Identity
	err := tx.Where("provider = ? AND subject = ?", provider, who.Subject).Take(&id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load identity")
	}
	var u models.User
	if err := tx.Take(&u, "id = ?", id.UserID).Error; err != nil {
		return nil, apperror.Wrap(err, "load user")
	}
	if err := profile(tx, &u, who); err != nil {
		return nil, err
	}
	if err := tx.Model(&id).Updates(map[string]any{"last_used_at": s.clock.Now(), "email": NormalizeEmail(who.Email), "email_verified": who.EmailVerified}).Error; err != nil {
		return nil, apperror.Wrap(err, "update identity")
	}
	return &u, nil
}

// userByEmail is the account with email (nil: none).
func userByEmail(tx *gorm.DB, email string) (*models.User, error) {
	var u models.User
	err := tx.Where("lower(email) = ?", email).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load user by email")
	}
	return &u, nil
}

// adopt links who's identity at provider to local, the account with the
// address (an unverified one is claimed: see resolve), or to a new,
// verified account (joined by join) when local is nil; audited, in org
// when one is named.
func (s *Federation) adopt(ctx context.Context, tx *gorm.DB, provider string, who claimed, local *models.User, org string,
	join func(*models.User) error) (*models.User, error) {
	now := s.clock.Now()
	email := NormalizeEmail(who.Email)
	switch {
	case local == nil:
		local = &models.User{ID: uuid.New(), Email: email, Tier: caller.Free, EmailVerified: true, CreatedAt: now, UpdatedAt: now}
		if err := tx.Create(local).Error; err != nil {
			return nil, apperror.Wrap(err, "insert user")
		}
		if err := join(local); err != nil {
			return nil, err
		}
		if err := s.audit.Record(ctx, tx, Event{Action: "auth.registered", Reason: signInMethod(provider), OrgID: org, ActorType: "user",
			ActorID: local.ID.String(), TargetType: "user", TargetID: local.ID.String()}); err != nil {
			return nil, err
		}
	case !local.EmailVerified:
		if err := s.claim(ctx, tx, local, provider); err != nil {
			return nil, err
		}
	}
	if err := profile(tx, local, who); err != nil {
		return nil, err
	}
	if err := tx.Create(&models.Identity{ID: uuid.New(), UserID: local.ID, Provider: provider, Subject: who.Subject, Email: email,
		EmailVerified: who.EmailVerified, CreatedAt: now, LastUsedAt: now}).Error; err != nil {
		return nil, apperror.Wrap(err, "insert identity")
	}
	err := s.audit.Record(ctx, tx, Event{Action: "identity.linked", Reason: provider, OrgID: org, ActorType: "user", ActorID: local.ID.String(),
		TargetType: "user", TargetID: local.ID.String()})
	return local, err
}

// signInMethod names a sign-in through provider in the audit log:
// "oidc:google", or an SSO connection's "sso:{id}".
func signInMethod(provider string) string {
	if strings.HasPrefix(provider, ssoProviderPrefix) {
		return provider
	}
	return "oidc:" + provider
}

// profile takes the name and picture a provider gave (attribute mapping),
// when they changed.
func profile(tx *gorm.DB, u *models.User, who claimed) error {
	name, picture := CleanText(who.Name, 200), who.Picture
	if p, err := url.Parse(picture); err != nil || p.Scheme != "https" || len(picture) > 2000 {
		picture = "" // only an https image: the URL ends up in a front end's <img>
	}
	ch := map[string]any{}
	if name != "" && name != u.Name {
		ch["name"], u.Name = name, name
	}
	if picture != "" && picture != u.PictureURL {
		ch["picture_url"], u.PictureURL = picture, picture
	}
	if len(ch) == 0 {
		return nil
	}
	if err := tx.Model(u).Updates(ch).Error; err != nil {
		return apperror.Wrap(err, "update profile")
	}
	return nil
}

// claim takes over an unverified account for the person who just proved
// its address with provider (see resolve).
func (s *Federation) claim(ctx context.Context, tx *gorm.DB, u *models.User, provider string) error {
	now := s.clock.Now()
	if err := tx.Model(u).Updates(map[string]any{"password_hash": "", "email_verified": true, "updated_at": now}).Error; err != nil {
		return apperror.Wrap(err, "claim account")
	}
	if err := tx.Model(&models.RefreshToken{}).Where("user_id = ? AND revoked_at IS NULL", u.ID).Update("revoked_at", now).Error; err != nil {
		return apperror.Wrap(err, "end sessions")
	}
	if err := tx.Model(&models.EmailVerificationToken{}).Where("user_id = ? AND used_at IS NULL", u.ID).Update("used_at", now).Error; err != nil {
		return apperror.Wrap(err, "void verification links")
	}
	u.PasswordHash, u.EmailVerified = "", true
	return s.audit.Record(ctx, tx, Event{Action: "identity.account_claimed", Reason: provider, TargetType: "user", TargetID: u.ID.String()})
}

// claimCode spends a one-time code of the kind asked for (a link's or a
// sign-in's), checking the front end's PKCE verifier when it sent a
// challenge. Claimed before the verifier is checked: a stolen code tried
// with a guessed verifier is spent, not left for another guess.
func (s *Federation) claimCode(ctx context.Context, code, verifier string, link bool) (*models.OAuthCode, error) {
	if code == "" || len(code) > 200 || len(verifier) > 200 {
		return nil, errOAuthCodeInvalid
	}
	var oc models.OAuthCode
	err := s.db.WithContext(ctx).Where("code_hash = ? AND link = ?", hashToken(code), link).Take(&oc).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errOAuthCodeInvalid
	}
	if err != nil {
		return nil, apperror.Wrap(err, "load sign-in code")
	}
	now := s.clock.Now()
	res := s.db.WithContext(ctx).Model(&models.OAuthCode{}).Where("id = ? AND used_at IS NULL AND expires_at > ?", oc.ID, now).Update("used_at", now)
	if res.Error != nil {
		return nil, apperror.Wrap(res.Error, "use sign-in code")
	}
	if res.RowsAffected == 0 {
		return nil, errOAuthCodeInvalid
	}
	if oc.CodeChallenge != "" {
		sum := sha256.Sum256([]byte(verifier))
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(oc.CodeChallenge)) != 1 {
			return nil, errOAuthCodeInvalid
		}
	}
	return &oc, nil
}

// Exchange trades a one-time code for a token pair (or, for an account
// with a second factor, the mfa_token a password login would give).
// verifier is the front end's PKCE verifier, when it sent a challenge.
func (s *Federation) Exchange(ctx context.Context, code, verifier string, client Client) (*Session, error) {
	oc, err := s.claimCode(ctx, code, verifier, false)
	if err != nil {
		return nil, err
	}
	u, err := s.users.Get(ctx, oc.UserID)
	if errors.Is(err, errUserNotFound) {
		return nil, errOAuthCodeInvalid
	}
	if err != nil {
		return nil, err
	}
	prefer := uuid.Nil
	if oc.OrgID != nil {
		prefer = *oc.OrgID // an SSO sign-in's session starts in its organization
	}
	return s.login.begin(ctx, u, client, signInMethod(oc.Provider), prefer)
}

// DevProvider names the development provider (package devidp), listed
// when DEV_ROUTES is on.
const DevProvider = "dev"

var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ParseProviders reads OIDC_PROVIDERS_FILE: a JSON list of providers.
func ParseProviders(raw []byte) ([]Provider, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var ps []Provider
	if err := dec.Decode(&ps); err != nil {
		return nil, fmt.Errorf("not a JSON list of providers: %w", err)
	}
	seen := map[string]bool{}
	for i, p := range ps {
		switch p.Type {
		case "", typeOIDC:
			ps[i].Type = typeOIDC
		case typeGitHub:
			if p.Issuer == "" {
				ps[i].Issuer, p.Issuer = "https://github.com", "https://github.com"
			}
		default:
			return nil, fmt.Errorf("provider %q: type %q must be oidc or github", p.Name, p.Type)
		}
		u, err := url.Parse(p.Issuer)
		switch {
		case !providerName.MatchString(p.Name):
			return nil, fmt.Errorf("provider %d: name %q must be 1-32 lowercase letters, digits or dashes", i+1, p.Name)
		case p.Name == DevProvider:
			return nil, fmt.Errorf("provider name %q is the development provider's (DEV_ROUTES)", p.Name)
		case seen[p.Name]:
			return nil, fmt.Errorf("provider %q is listed twice", p.Name)
		case err != nil || u.Host == "" || (u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(u.Hostname()))):
			return nil, fmt.Errorf("provider %q: issuer %q must be an https URL (http only on loopback, for tests)", p.Name, p.Issuer)
		case p.ClientID == "":
			return nil, fmt.Errorf("provider %q: client_id is required", p.Name)
		}
		if p.DisplayName == "" {
			ps[i].DisplayName = p.Name
		}
		seen[p.Name] = true
	}
	return ps, nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

var (
	errIdentityGone    = apperror.Define(apperror.NotFound, "identity_not_found", "No such linked sign-in")
	errLastWayIn       = apperror.Define(apperror.Conflict, "last_sign_in_method", "This is your only way to sign in: set a password (forgot password) or link another provider first")
	errIdentityMissing = errors.New("identity vanished")
)

// Identities lists the provider sign-ins linked to user.
func (s *Federation) Identities(ctx context.Context, user uuid.UUID) ([]models.Identity, error) {
	out := []models.Identity{}
	if err := s.db.WithContext(ctx).Where("user_id = ?", user).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, apperror.Wrap(err, "list identities")
	}
	return out, nil
}

// Unlink removes one of user's provider sign-ins, unless it is the last
// way in (no password and no other identity): 409.
func (s *Federation) Unlink(ctx context.Context, user, id uuid.UUID) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var u models.User
		// The user's row, locked where the database can: two unlinks at
		// once cannot each leave the other as the last way in.
		if err := lockUser(tx, user, &u); err != nil {
			return err
		}
		var ids []models.Identity
		if err := tx.Where("user_id = ?", user).Find(&ids).Error; err != nil {
			return apperror.Wrap(err, "list identities")
		}
		i := slices.IndexFunc(ids, func(x models.Identity) bool { return x.ID == id })
		if i < 0 {
			return errIdentityGone
		}
		if u.PasswordHash == "" && len(ids) == 1 {
			return errLastWayIn
		}
		res := tx.Delete(&models.Identity{}, "id = ? AND user_id = ?", id, user)
		if res.Error != nil {
			return apperror.Wrap(res.Error, "unlink identity")
		}
		if res.RowsAffected == 0 {
			return apperror.Wrap(errIdentityMissing, "unlink identity")
		}
		return s.audit.Record(ctx, tx, Event{Action: "identity.unlinked", Reason: ids[i].Provider, ActorType: "user", ActorID: user.String(),
			TargetType: "user", TargetID: user.String()})
	})
}

// lockUser loads user into u, locking its row for the rest of tx
// (PostgreSQL; SQLite transactions hold the write lock already).
func lockUser(tx *gorm.DB, user uuid.UUID, u *models.User) error {
	q := tx.Where("id = ?", user)
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	err := q.Take(u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errUserNotFound
	}
	if err != nil {
		return apperror.Wrap(err, "load user")
	}
	return nil
}
