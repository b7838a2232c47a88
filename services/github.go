package services

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// The provider types of OIDC_PROVIDERS_FILE.
const (
	typeOIDC   = "oidc"
	typeGitHub = "github"
)

// claimed is who a provider says signed in.
type claimed struct {
	Subject, Email string
	EmailVerified  bool
	Name, Picture  string   // mapped by the provider's attributes
	Groups         []string // an SSO connection's groups claim
}

// idTokenUser verifies the ID token of an OpenID Connect exchange:
// signature (the provider's JWKS), iss, aud, exp, and the flow's nonce.
func idTokenUser(ctx context.Context, rp *relyingParty, tok *oauth2.Token, nonce string, p *Provider) (claimed, error) {
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return claimed{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return claimed{}, errors.New("nonce mismatch")
	}
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		return claimed{}, err
	}
	attr := func(key, def string) string {
		if n := p.Attributes[key]; n != "" {
			def = n
		}
		v, _ := c[def].(string)
		return v
	}
	// email_verified is a boolean by the spec; some providers send "true".
	verified := c["email_verified"] == true || c["email_verified"] == "true"
	out := claimed{Subject: idt.Subject, Email: attr("email", "email"), EmailVerified: verified, Name: attr("name", "name"), Picture: attr("picture", "picture")}
	if p.groups != "" {
		switch g := c[p.groups].(type) {
		case []any:
			for _, x := range g {
				if s, ok := x.(string); ok {
					out.Groups = append(out.Groups, s)
				}
			}
		case string:
			out.Groups = []string{g}
		}
	}
	return out, nil
}

// gitHubParty is GitHub's OAuth 2.0 (no ID token): github.com, or a
// GitHub Enterprise Server at p.Issuer (its API under /api/v3).
func gitHubParty(p *Provider, callback string) *relyingParty {
	base := strings.TrimSuffix(p.Issuer, "/")
	api := base + "/api/v3"
	if base == "https://github.com" {
		api = "https://api.github.com"
	}
	scopes := p.Scopes
	if len(scopes) == 0 {
		scopes = []string{"read:user", "user:email"}
	}
	return &relyingParty{api: api, oauth: &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: callback, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: base + "/login/oauth/authorize", TokenURL: base + "/login/oauth/access_token", AuthStyle: oauth2.AuthStyleInParams}}}
}

// gitHubUser asks GitHub's API who the token is: the numeric id (stable,
// unlike the login) and the primary address, verified as GitHub says.
func gitHubUser(ctx context.Context, rp *relyingParty, tok *oauth2.Token) (claimed, error) {
	client := oauth2.NewClient(ctx, oauth2.StaticTokenSource(tok))
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		client.Timeout = c.Timeout
	}
	var user struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		AvatarURL string `json:"avatar_url"`
	}
	if err := getJSON(client, rp.api+"/user", &user); err != nil {
		return claimed{}, err
	}
	if user.ID == 0 {
		return claimed{}, errors.New("github: no user id")
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := getJSON(client, rp.api+"/user/emails", &emails); err != nil {
		return claimed{}, err
	}
	out := claimed{Subject: strconv.FormatInt(user.ID, 10), Name: user.Name, Picture: user.AvatarURL}
	for _, e := range emails {
		if e.Primary {
			out.Email, out.EmailVerified = e.Email, e.Verified
		}
	}
	return out, nil
}

func getJSON(c *http.Client, url string, into any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("github %s: %s", url, resp.Status)
	}
	return json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(into)
}
