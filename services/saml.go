package services

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"
	saml2 "github.com/russellhaering/gosaml2"
	"github.com/russellhaering/gosaml2/types"
	dsig "github.com/russellhaering/goxmldsig"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/models"
)

// The SAML 2.0 service provider (gosaml2, with goxmldsig 1.6.1: the 2026
// signature-bypass fix). gosaml2 checks the signatures, the issuer, the
// recipient and the destination; on top of it every response must carry
// exactly one assertion, signed itself (a signed envelope alone is not
// enough), for our audience, within its validity (with ClockSkew), in
// response to the AuthnRequest this browser's sign-in sent (InResponseTo),
// and never seen before (saml_assertions, shared by every instance).

const (
	samlNS          = "urn:oasis:names:tc:SAML:2.0:assertion"
	dsigNS          = "http://www.w3.org/2000/09/xmldsig#"
	maxSAMLResponse = 1 << 20
	defaultSAMLSkew = 90 * time.Second
)

// The attribute names the usual IdPs (Okta, Entra ID, Google, ADFS,
// Shibboleth) send, tried when a connection names none.
var (
	samlEmailNames  = []string{"email", "mail", "urn:oid:0.9.2342.19200300.100.1.3", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
	samlNameNames   = []string{"name", "displayName", "cn", "urn:oid:2.5.4.3", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"}
	samlGroupsNames = []string{"groups", "memberOf", "urn:oid:1.3.6.1.4.1.5923.1.1.1.1", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"}
)

type samlIdP struct {
	entityID, ssoURL string
	certs            []*x509.Certificate
}

// parseIdPMetadata reads an IdP's metadata: its entity id, an HTTP-Redirect
// single sign-on URL and at least one signing certificate.
func parseIdPMetadata(raw []byte) (*samlIdP, error) {
	var ed types.EntityDescriptor
	if err := xml.Unmarshal(raw, &ed); err != nil || ed.IDPSSODescriptor == nil || ed.EntityID == "" {
		return nil, errors.New("not an IdP's EntityDescriptor with an entityID and an IDPSSODescriptor")
	}
	out := &samlIdP{entityID: ed.EntityID}
	for _, s := range ed.IDPSSODescriptor.SingleSignOnServices {
		if s.Binding == saml2.BindingHttpRedirect {
			out.ssoURL = s.Location
		}
	}
	if u, err := url.Parse(out.ssoURL); out.ssoURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("no SingleSignOnService with the HTTP-Redirect binding")
	}
	for _, kd := range ed.IDPSSODescriptor.KeyDescriptors {
		if kd.Use != "" && kd.Use != "signing" {
			continue
		}
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
			if err != nil {
				return nil, errors.New("a signing certificate is not base64")
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, errors.New("a signing certificate does not parse")
			}
			out.certs = append(out.certs, cert)
		}
	}
	if len(out.certs) == 0 {
		return nil, errors.New("no signing certificate")
	}
	return out, nil
}

// SSOBase is where a connection's endpoints are: {base}/metadata (also the
// SP's entity id), /acs, /callback, /start.
func (s *Federation) SSOBase(id uuid.UUID) string {
	return s.cfg.BaseURL + "/auth/sso/" + id.String()
}

// serviceProvider is the SP for c at now (gosaml2 checks times against its
// clock; the skew is applied on both sides by the caller).
func (s *Federation) serviceProvider(c *models.SSOConnection, now time.Time) (*saml2.SAMLServiceProvider, error) {
	idp, err := parseIdPMetadata([]byte(c.IdPMetadata))
	if err != nil {
		return nil, apperror.Wrap(err, "connection metadata")
	}
	base := s.SSOBase(c.ID)
	return &saml2.SAMLServiceProvider{
		IdentityProviderSSOURL: idp.ssoURL, IdentityProviderSSOBinding: saml2.BindingHttpRedirect, IdentityProviderIssuer: idp.entityID,
		AssertionConsumerServiceURL: base + "/acs", ServiceProviderIssuer: base + "/metadata", AudienceURI: base + "/metadata",
		IDPCertificateStore: &dsig.MemoryX509CertificateStore{Roots: idp.certs}, AllowMissingAttributes: true,
		Clock: dsig.NewFakeClockAt(now), MaximumDecompressedBodySize: maxSAMLResponse,
	}, nil
}

// SAMLMetadata is the SP metadata of a SAML connection, for its IdP.
func (s *Federation) SAMLMetadata(ctx context.Context, rawID string) ([]byte, error) {
	c, err := s.enabledConnection(ctx, rawID)
	if err != nil || c.Kind != connSAML {
		return nil, errConnNotFound
	}
	sp, err := s.serviceProvider(c, s.clock.Now())
	if err != nil {
		return nil, err
	}
	// gosaml2's own Metadata wants an SP key; this SP signs nothing and
	// takes no encrypted assertions, so its metadata names no key.
	md := types.EntityDescriptor{ValidUntil: s.clock.Now().UTC().Add(7 * 24 * time.Hour), EntityID: sp.ServiceProviderIssuer,
		SPSSODescriptor: &types.SPSSODescriptor{WantAssertionsSigned: true, ProtocolSupportEnumeration: saml2.SAMLProtocolNamespace,
			NameIDFormats:             []string{"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"},
			AssertionConsumerServices: []types.IndexedEndpoint{{Binding: saml2.BindingHttpPost, Location: sp.AssertionConsumerServiceURL, Index: 1}}}}
	out, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, apperror.Wrap(err, "sp metadata")
	}
	return append([]byte(xml.Header), out...), nil
}

// StartSSO begins a sign-in through connection rawID: an OpenID Connect
// one like a provider's, a SAML one with an AuthnRequest whose ID the
// response must answer.
func (s *Federation) StartSSO(ctx context.Context, rawID string, in StartRequest) (*Started, error) {
	c, err := s.enabledConnection(ctx, rawID)
	if err != nil {
		return nil, err
	}
	in.Provider = ssoProviderPrefix + c.ID.String()
	if c.Kind == connOIDC {
		return s.start(ctx, in, nil)
	}
	if err := s.checkReturn(in); err != nil {
		return nil, err
	}
	sp, err := s.serviceProvider(c, s.clock.Now())
	if err != nil {
		return nil, err
	}
	doc, err := sp.BuildAuthRequestDocument()
	if err != nil {
		return nil, apperror.Wrap(err, "build AuthnRequest")
	}
	_, st, err := s.newFlow(ctx, in.Provider, in, nil, c, doc.Root().SelectAttrValue("ID", ""))
	if err != nil {
		return nil, err
	}
	if st.AuthURL, err = sp.BuildAuthURLRedirect(st.State, doc); err != nil {
		return nil, apperror.Wrap(err, "AuthnRequest URL")
	}
	return st, nil
}

// ACS is a SAML response posted back (the Assertion Consumer Service):
// like Callback, it answers where to send the browser.
type ACS struct {
	Connection, SAMLResponse, RelayState string
	Browser                              string // the cookie StartSSO set
}

// ConsumeAssertion checks a SAML response and signs its person in.
func (s *Federation) ConsumeAssertion(ctx context.Context, in ACS) (string, error) {
	c, err := s.enabledConnection(ctx, in.Connection)
	if err != nil || c.Kind != connSAML {
		return "", errConnNotFound
	}
	flow, err := s.samlFlow(ctx, c, in)
	if err != nil {
		return "", err
	}
	fail := func(reason string, cause error) (string, error) {
		s.log.Info("saml response refused", "connection", c.ID, "reason", reason, "error", cause)
		s.audit.RecordAlone(ctx, Event{Action: "auth.sso_failed", Outcome: Failure, Reason: reason, OrgID: c.OrgID.String(), TargetType: "sso_connection", TargetID: c.ID.String()})
		return withQuery(flow.RedirectURI, "error", reason), nil
	}
	person, err := s.checkResponse(ctx, c, in.SAMLResponse, flow.Nonce)
	if err == nil {
		person, err = storable(person)
	}
	if err != nil {
		return fail(failAssertion, err)
	}
	u, reason, err := s.ssoSignIn(ctx, c, person)
	if err != nil {
		return "", err
	}
	if reason != "" {
		return fail(reason, nil)
	}
	return s.handBack(ctx, flow, ssoProviderPrefix+c.ID.String(), &models.OAuthCode{UserID: u.ID, OrgID: &c.OrgID})
}

// samlFlow is the sign-in a response answers: the one its RelayState
// names, started by this browser, unused and unexpired, spent now. A
// response no sign-in asked for (IdP-initiated) is refused unless the
// connection allows it; it then ends at the first OAUTH_REDIRECT_URIS page
// (or the RelayState, when that is one of them) and must answer no request.
func (s *Federation) samlFlow(ctx context.Context, c *models.SSOConnection, in ACS) (*models.OAuthFlow, error) {
	flow, err := s.claimFlow(ctx, in.RelayState, in.Browser, ssoProviderPrefix+c.ID.String())
	if !errors.Is(err, errStateUnknown) {
		return flow, err
	}
	if !c.AllowIdPInitiated || len(s.cfg.RedirectURIs) == 0 {
		return nil, errStateInvalid
	}
	to := s.cfg.RedirectURIs[0]
	if slices.Contains(s.cfg.RedirectURIs, in.RelayState) {
		to = in.RelayState
	}
	return &models.OAuthFlow{RedirectURI: to, ConnectionID: &c.ID}, nil // Nonce "": it must answer no request
}

// checkResponse verifies a base64 SAML response for c, answering request
// (the AuthnRequest ID; "" for an unsolicited one), and returns its person.
func (s *Federation) checkResponse(ctx context.Context, c *models.SSOConnection, encoded, request string) (claimed, error) {
	if encoded == "" || len(encoded) > maxSAMLResponse {
		return claimed{}, errors.New("no SAMLResponse, or too large")
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return claimed{}, errors.New("SAMLResponse is not base64")
	}
	if err := oneSignedAssertion(raw); err != nil {
		return claimed{}, err
	}
	skew := s.cfg.SSO.ClockSkew
	if skew <= 0 {
		skew = defaultSAMLSkew
	}
	now := s.clock.Now()
	// gosaml2's expiry checks run on a clock held back by the skew.
	sp, err := s.serviceProvider(c, now.Add(-skew))
	if err != nil {
		return claimed{}, err
	}
	resp, err := sp.ValidateEncodedResponse(encoded)
	if err != nil {
		return claimed{}, err
	}
	if len(resp.Assertions) != 1 {
		return claimed{}, errors.New("not exactly one assertion")
	}
	a := &resp.Assertions[0]
	if resp.Destination != sp.AssertionConsumerServiceURL {
		return claimed{}, fmt.Errorf("destination %q", resp.Destination)
	}
	scd := a.Subject.SubjectConfirmation.SubjectConfirmationData
	if resp.InResponseTo != request || scd.InResponseTo != request {
		return claimed{}, fmt.Errorf("in response to %q, not this sign-in's request", resp.InResponseTo)
	}
	notOnOrAfter, err := s.checkConditions(sp, a, now, skew)
	if err != nil {
		return claimed{}, err
	}
	if a.ID == "" || a.Subject.NameID == nil || a.Subject.NameID.Value == "" {
		return claimed{}, errors.New("no assertion ID or NameID")
	}
	// Single use, on every instance: the first insert wins.
	used := models.SAMLAssertion{ID: hashToken(c.ID.String() + "\x00" + a.ID), ExpiresAt: notOnOrAfter.Add(skew)}
	if err := s.db.WithContext(ctx).Create(&used).Error; err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return claimed{}, errors.New("assertion replayed")
		}
		return claimed{}, apperror.Wrap(err, "record assertion")
	}
	values := map[string][]string{}
	if a.AttributeStatement != nil {
		for _, at := range a.AttributeStatement.Attributes {
			for _, v := range at.Values {
				values[at.Name] = append(values[at.Name], v.Value)
				if at.FriendlyName != "" {
					values[at.FriendlyName] = append(values[at.FriendlyName], v.Value)
				}
			}
		}
	}
	pick := func(named string, usual []string) []string {
		if named != "" {
			return values[named]
		}
		for _, n := range usual {
			if len(values[n]) > 0 {
				return values[n]
			}
		}
		return nil
	}
	p := claimed{Subject: a.Subject.NameID.Value, Groups: pick(c.GroupsAttribute, samlGroupsNames)}
	if v := pick(c.EmailAttribute, samlEmailNames); len(v) > 0 {
		p.Email = v[0]
	} else if strings.Contains(p.Subject, "@") {
		p.Email = p.Subject // an emailAddress NameID
	}
	if v := pick(c.NameAttribute, samlNameNames); len(v) > 0 {
		p.Name = v[0]
	}
	return p, nil
}

// checkConditions: the assertion's window holds now (with skew) and its
// audience restrictions all name this SP. It answers the window's end.
func (s *Federation) checkConditions(sp *saml2.SAMLServiceProvider, a *types.Assertion, now time.Time, skew time.Duration) (time.Time, error) {
	cond := a.Conditions
	if cond == nil || len(cond.AudienceRestrictions) == 0 {
		return time.Time{}, errors.New("no conditions or audience restriction")
	}
	notBefore, err1 := time.Parse(time.RFC3339, cond.NotBefore)
	notOnOrAfter, err2 := time.Parse(time.RFC3339, cond.NotOnOrAfter)
	if err1 != nil || err2 != nil {
		return time.Time{}, errors.New("conditions without NotBefore and NotOnOrAfter")
	}
	if now.Add(skew).Before(notBefore) || !now.Add(-skew).Before(notOnOrAfter) {
		return time.Time{}, fmt.Errorf("assertion valid %s to %s, not now", notBefore, notOnOrAfter)
	}
	for _, r := range cond.AudienceRestrictions {
		if !slices.ContainsFunc(r.Audiences, func(x types.Audience) bool { return x.Value == sp.AudienceURI }) {
			return time.Time{}, errors.New("another audience")
		}
	}
	return notOnOrAfter, nil
}

// oneSignedAssertion refuses a response with other than one assertion
// (anywhere in the document: a second one is a wrapping attempt), an
// encrypted one (this SP has no decryption key), or an assertion without
// its own signature.
func oneSignedAssertion(raw []byte) error {
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return errors.New("SAMLResponse is not XML")
	}
	var assertions []*etree.Element
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		if e.NamespaceURI() == samlNS && (e.Tag == "Assertion" || e.Tag == "EncryptedAssertion") {
			assertions = append(assertions, e)
		}
		for _, ch := range e.ChildElements() {
			walk(ch)
		}
	}
	walk(doc.Root())
	if len(assertions) != 1 {
		return fmt.Errorf("%d assertions", len(assertions))
	}
	a := assertions[0]
	if a.Tag != "Assertion" || a.Parent() != doc.Root() {
		return errors.New("an encrypted or misplaced assertion")
	}
	if !slices.ContainsFunc(a.ChildElements(), func(e *etree.Element) bool { return e.Tag == "Signature" && e.NamespaceURI() == dsigNS }) {
		return errors.New("the assertion is not signed")
	}
	if bytes.Contains(raw, []byte("<!DOCTYPE")) {
		return errors.New("a DOCTYPE")
	}
	return nil
}
