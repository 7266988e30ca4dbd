package oxdserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
)

// Grant types and scopes the engine adds where needed.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
	grantUMATicket         = "urn:ietf:params:oauth:grant-type:uma-ticket"
	scopeUMAProtection     = "uma_protection"
	scopeOxd               = "oxd"
)

var defaultScope = []string{"openid", "profile", "email"}

// knownGrants are the grant type values the engine passes on to the OP;
// grantAliases map short names that 3.1.x clients send to them (only where
// the meaning is unambiguous).
var (
	knownGrants = []string{grantAuthorizationCode, "implicit", grantRefreshToken, grantClientCredentials, "password",
		grantUMATicket, "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:device_code",
		"urn:openid:params:grant-type:ciba", "urn:ietf:params:oauth:grant-type:token-exchange"}
	grantAliases = map[string]string{"uma_ticket": grantUMATicket, "uma-ticket": grantUMATicket}
)

// normalizeGrants maps known short names to their registered values and
// drops names the engine does not know or the OP says it does not support
// (3.1.4 dropped unknown names; passing them on fails the registration).
// Each dropped name is logged (cut and sanitized).
func (e *Engine) normalizeGrants(ctx context.Context, list []string, disc *oidcConfig) []string {
	var out []string
	for _, g := range list {
		v := g
		if a, ok := grantAliases[strings.ToLower(g)]; ok {
			v = a
		}
		if !slices.Contains(knownGrants, v) || !supports(disc.GrantTypesSupported, v, true) {
			e.log.WarnContext(ctx, "oxdserver: dropping a grant type the engine or the OP does not know", "grant_type", sanitizeOAuth(g, 64))
			continue
		}
		out = addUnique(out, v)
	}
	return out
}

// neededGrants adds the grants a site needs, as register_site and
// setup_client register them: authorization_code for the code flow,
// refresh_token and the UMA ticket grant when the OP offers them,
// client_credentials for protection clients.
func neededGrants(grants []string, s *Site, disc *oidcConfig, kind siteKind) []string {
	if slices.Contains(s.ResponseTypes, "code") {
		grants = addUnique(grants, grantAuthorizationCode)
	}
	if supports(disc.GrantTypesSupported, grantRefreshToken, true) {
		grants = addUnique(grants, grantRefreshToken)
	}
	if kind == kindSetup || kind == kindSetupRP || s.IsSetupClient || s.SetupClientID != "" ||
		slices.Contains(s.Scope, scopeUMAProtection) || slices.Contains(s.Scope, scopeOxd) {
		grants = addUnique(grants, grantClientCredentials)
	}
	if kind != kindSetup && !s.IsSetupClient && supports(disc.GrantTypesSupported, grantUMATicket, false) {
		grants = addUnique(grants, grantUMATicket)
	}
	return grants
}

// newOxdID returns a random UUID (version 4), the form of oxd_ids.
func newOxdID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func addUnique(list []string, vals ...string) []string {
	for _, v := range vals {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

func validRedirect(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != "" && u.Fragment == ""
}

// siteKind tells register how to shape the client.
type siteKind int

const (
	kindRegular siteKind = iota
	kindSetup            // setup_client's protection client
	kindSetupRP          // setup_client's regular client
)

// buildSite validates register_site/setup_client parameters and turns them
// into a site (not yet registered at the OP).
func buildSite(p *oxdclient.SiteParams, disc *oidcConfig, kind siteKind) (*Site, error) {
	authz := strings.TrimSpace(p.AuthorizationRedirectURI)
	if authz == "" || !validRedirect(authz) {
		return nil, oxdErr(oxdclient.CodeInvalidAuthorizationRedirectURI, descInvalidRedirect)
	}
	scope := defaultScope
	if p.Scope != nil {
		scope = nonBlank(p.Scope)
		if len(scope) == 0 {
			return nil, oxdErr(oxdclient.CodeInvalidScope, descInvalidScope)
		}
	}
	scope = slices.Clone(scope)
	responseTypes := nonBlank(p.ResponseTypes)
	if len(responseTypes) == 0 {
		responseTypes = []string{"code"}
	}
	grants := nonBlank(p.GrantTypes)
	if len(grants) == 0 {
		grants = []string{grantAuthorizationCode}
	}
	if slices.Contains(responseTypes, "code") {
		grants = addUnique(grants, grantAuthorizationCode)
	}
	if supports(disc.GrantTypesSupported, grantRefreshToken, true) {
		grants = addUnique(grants, grantRefreshToken)
	}
	switch kind {
	case kindSetup:
		scope = addUnique(scope, scopeUMAProtection, scopeOxd)
		grants = addUnique(grants, grantClientCredentials)
	case kindSetupRP:
		scope = addUnique(scope, scopeUMAProtection)
		grants = addUnique(grants, grantClientCredentials)
	}
	if slices.Contains(scope, scopeUMAProtection) || slices.Contains(scope, scopeOxd) {
		grants = addUnique(grants, grantClientCredentials)
	}
	if kind != kindSetup && supports(disc.GrantTypesSupported, grantUMATicket, false) {
		grants = addUnique(grants, grantUMATicket)
	}
	redirects := []string{authz}
	for _, r := range nonBlank(p.RedirectURIs) {
		if !validRedirect(r) {
			return nil, oxdErr(oxdclient.CodeInvalidAuthorizationRedirectURI, "Invalid redirect_uris (each must be an absolute URL without fragment).")
		}
		redirects = addUnique(redirects, r)
	}
	post := strings.TrimSpace(p.PostLogoutRedirectURI)
	if post != "" && !validRedirect(post) {
		return nil, oxdErr(oxdclient.CodeInvalidRequest, "Invalid post_logout_redirect_uri (must be an absolute URL without fragment).")
	}
	back := strings.TrimSpace(p.ClientBackchannelLogoutURI)
	if err := checkLogoutURIs(nonBlank(p.ClientFrontchannelLogoutURIs), back); err != nil {
		return nil, err
	}
	claimsRedirects := nonBlank(p.ClaimsRedirectURI)
	for _, r := range claimsRedirects {
		if !validRedirect(r) {
			return nil, oxdErr(oxdclient.CodeInvalidClaimsRedirectURIParameter, descNoClaimsRedirect)
		}
	}
	name := strings.TrimSpace(p.ClientName)
	s := &Site{
		OxdID:                       newOxdID(),
		OPHost:                      strings.TrimSpace(p.OPHost),
		OPDiscoveryPath:             strings.TrimSpace(p.OPDiscoveryPath),
		AuthorizationRedirectURI:    authz,
		PostLogoutRedirectURI:       post,
		ApplicationType:             "web",
		RedirectURIs:                redirects,
		ClaimsRedirectURIs:          claimsRedirects,
		ResponseTypes:               responseTypes,
		FrontChannelLogoutURIs:      nonBlank(p.ClientFrontchannelLogoutURIs),
		BackChannelLogoutURI:        back,
		ClientName:                  name,
		SectorIdentifierURI:         strings.TrimSpace(p.ClientSectorIdentifierURI),
		ClientJWKSURI:               strings.TrimSpace(p.ClientJWKSURI),
		TokenEndpointAuthSigningAlg: strings.TrimSpace(p.ClientTokenEndpointAuthSigningAlg),
		ClientRequestURIs:           nonBlank(p.ClientRequestURIs),
		Scope:                       scope,
		UILocales:                   nonBlank(p.UILocales),
		ClaimsLocales:               nonBlank(p.ClaimsLocales),
		AcrValues:                   nonBlank(p.AcrValues),
		GrantTypes:                  grants,
		Contacts:                    nonBlank(p.Contacts),
		TrustedClient:               p.TrustedClient,
		OxdRPProgrammingLanguage:    strings.TrimSpace(p.OxdRPProgrammingLanguage),
		IsSetupClient:               kind == kindSetup,
	}
	if m := strings.TrimSpace(p.ClientTokenEndpointAuthMethod); m != "" {
		pm, err := clientauth.ParseMethod(m)
		if err != nil {
			return nil, authConfigError(err)
		}
		s.TokenEndpointAuthMethod = string(pm)
	}
	return s, nil
}

// registrationMetadata is the RFC 7591 client metadata of a site, with
// its client authentication (clientauth.RegistrationMetadata: the method,
// the assertion algorithm, and for private_key_jwt the jwks_uri or the
// public keys published at now).
func registrationMetadata(s *Site, now time.Time) (map[string]any, error) {
	m := map[string]any{
		"redirect_uris":    s.RedirectURIs,
		"response_types":   s.ResponseTypes,
		"grant_types":      s.GrantTypes,
		"application_type": "web",
		"scope":            strings.Join(s.Scope, " "),
	}
	if s.PostLogoutRedirectURI != "" {
		m["post_logout_redirect_uris"] = []string{s.PostLogoutRedirectURI}
	}
	if len(s.ClaimsRedirectURIs) > 0 {
		m["claims_redirect_uri"] = s.ClaimsRedirectURIs
	}
	if s.ClientName != "" {
		m["client_name"] = s.ClientName
	}
	if len(s.Contacts) > 0 {
		m["contacts"] = s.Contacts
	}
	if s.ClientJWKSURI != "" {
		m["jwks_uri"] = s.ClientJWKSURI
	}
	if s.SectorIdentifierURI != "" {
		m["sector_identifier_uri"] = s.SectorIdentifierURI
	}
	if len(s.ClientRequestURIs) > 0 {
		m["request_uris"] = s.ClientRequestURIs
	}
	// OpenID Connect Front-Channel and Back-Channel Logout: the OP sends
	// iss and sid (the middleware ends sessions by OP session).
	if len(s.FrontChannelLogoutURIs) > 0 {
		m["frontchannel_logout_uri"] = s.FrontChannelLogoutURIs[0]
		m["frontchannel_logout_session_required"] = true
	}
	if s.BackChannelLogoutURI != "" {
		m["backchannel_logout_uri"] = s.BackChannelLogoutURI
		m["backchannel_logout_session_required"] = true
	}
	if len(s.AcrValues) > 0 {
		m["default_acr_values"] = s.AcrValues
	}
	creds := clientauth.Credentials{Method: siteMethod(s), Keys: s.ClientKeys, SigningAlg: s.TokenEndpointAuthSigningAlg, PKCE: true}
	jwksURI := ""
	if creds.Method == clientauth.MethodPrivateKeyJWT {
		jwksURI = s.ClientJWKSURI
	}
	auth, err := clientauth.RegistrationMetadata(creds, jwksURI, now)
	if err != nil {
		return nil, authConfigError(err)
	}
	for k, v := range auth {
		m[k] = v
	}
	return m, nil
}

// configureAuth settles the site's client authentication against the
// OP's metadata: the method (the one named, checked against
// token_endpoint_auth_methods_supported, or the strongest listed when
// none is named for a dynamic registration), the assertion algorithm, and
// a fresh key set for private_key_jwt. A pre-registered client's
// credentials are validated here (a client without a secret is valid for
// none and private_key_jwt only); a dynamic registration's after the OP
// answers.
func (e *Engine) configureAuth(s *Site, disc *oidcConfig, preregistered bool) error {
	supported := disc.TokenEndpointAuthMethodsSupported
	var m clientauth.Method
	switch {
	case s.TokenEndpointAuthMethod != "":
		m = clientauth.Method(s.TokenEndpointAuthMethod)
		// A pre-registered client's method is known to the OP; an OP
		// that does not list its methods is not second-guessed then.
		if !preregistered || supported != nil {
			if err := clientauth.CheckSupported(m, supported); err != nil {
				return authConfigError(err)
			}
		}
	case preregistered:
		m = clientauth.DefaultMethod
	case s.IsSetupClient:
		// The protection client's secret is handed to the caller for
		// get_client_token (reference §4), which oxd clients call with
		// client_id and client_secret only: a secret sent as Basic (or
		// in the body when the OP lists only that).
		m = clientauth.MethodSecretBasic
		if supported != nil && !slices.Contains(supported, string(m)) && slices.Contains(supported, string(clientauth.MethodSecretPost)) {
			m = clientauth.MethodSecretPost
		}
		if err := clientauth.CheckSupported(m, supported); err != nil {
			return authConfigError(err)
		}
	default:
		var err error
		if m, err = clientauth.ChooseMethod(supported); err != nil {
			return authConfigError(err)
		}
	}
	s.TokenEndpointAuthMethod = string(m)
	algs := disc.TokenEndpointAuthSigningAlgValuesSupported
	alg, err := clientauth.SigningAlg(m, s.TokenEndpointAuthSigningAlg, algs)
	if err != nil {
		return authConfigError(err)
	}
	s.TokenEndpointAuthSigningAlg = alg
	if m == clientauth.MethodPrivateKeyJWT && s.ClientKeys == nil {
		if s.ClientKeys, err = clientauth.GenerateKeySet(alg, time.Now()); err != nil {
			return authConfigError(err)
		}
	}
	if m == clientauth.MethodPrivateKeyJWT || m == clientauth.MethodNone {
		if !preregistered {
			s.ClientSecret = ""
		}
	}
	if preregistered {
		if err := e.creds(s, disc, disc.TokenEndpoint).Validate(); err != nil {
			return authConfigError(err)
		}
	}
	return nil
}

// registration is a registration endpoint answer (RFC 7591 §3.2.1).
type registration struct {
	ClientID                string          `json:"client_id"`
	ClientSecret            string          `json:"client_secret"`
	RegistrationAccessToken string          `json:"registration_access_token"`
	RegistrationClientURI   string          `json:"registration_client_uri"`
	ClientIDIssuedAt        json.RawMessage `json:"client_id_issued_at"`
	ClientSecretExpiresAt   json.RawMessage `json:"client_secret_expires_at"`
}

func epochOf(raw json.RawMessage) int64 {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0
	}
	f, err := n.Float64()
	if err != nil {
		return 0
	}
	return int64(f)
}

// register creates the client at the OP (dynamic registration) unless the
// site carries pre-registered credentials (a client_id).
func (e *Engine) register(ctx context.Context, s *Site, disc *oidcConfig) error {
	if s.ClientID != "" {
		if err := e.configureAuth(s, disc, true); err != nil {
			return err
		}
		s.Preregistered = true
		return nil
	}
	if !absURL(disc.RegistrationEndpoint) {
		return oxdErr(oxdclient.CodeInvalidRequest, descNoRegistration)
	}
	if err := e.configureAuth(s, disc, false); err != nil {
		return err
	}
	meta, err := registrationMetadata(s, time.Now())
	if err != nil {
		return err
	}
	var r registration
	if err := e.sendJSON(ctx, opRequest{endpoint: "registration", method: http.MethodPost, url: disc.RegistrationEndpoint, json: meta}, &r); err != nil {
		return err
	}
	if r.ClientID == "" {
		return &opCallError{endpoint: "registration", what: whatInvalid, err: errors.New("no client_id in the answer")}
	}
	if r.RegistrationClientURI != "" && !e.endpointAllowed(discoveryIssuer(s.OPHost, s.OPDiscoveryPath), r.RegistrationClientURI) {
		// The registration token is sent there on update_site and
		// remove: keep it on the OP's origin.
		r.RegistrationClientURI, r.RegistrationAccessToken = "", ""
	}
	s.ClientID = r.ClientID
	s.ClientSecret = r.ClientSecret
	s.RegistrationAccessToken = r.RegistrationAccessToken
	s.RegistrationClientURI = r.RegistrationClientURI
	s.ClientIDIssuedAt = epochOf(r.ClientIDIssuedAt)
	s.ClientSecretExpiresAt = epochOf(r.ClientSecretExpiresAt)
	switch siteMethod(s) {
	case clientauth.MethodNone, clientauth.MethodPrivateKeyJWT:
		// No secret is used (a public client must not hold one).
		s.ClientSecret, s.ClientSecretExpiresAt = "", 0
	default:
		if s.ClientSecret == "" {
			e.unregister(ctx, s)
			return &opCallError{endpoint: "registration", what: whatInvalid, err: errors.New("no client_secret in the answer (a confidential client was asked for)")}
		}
	}
	if err := e.creds(s, disc, disc.TokenEndpoint).Validate(); err != nil {
		e.unregister(ctx, s)
		return authConfigError(err)
	}
	return nil
}

// unregister deletes a client the engine just registered (best effort,
// RFC 7592 §2.3), when a later step of the same command failed.
func (e *Engine) unregister(ctx context.Context, s *Site) {
	if s.Preregistered || s.RegistrationClientURI == "" || s.RegistrationAccessToken == "" {
		return
	}
	if _, _, err := e.send(context.WithoutCancel(ctx), opRequest{endpoint: "registration", method: http.MethodDelete,
		url: s.RegistrationClientURI, bearer: s.RegistrationAccessToken}); err != nil {
		e.log.Warn("oxdserver: could not delete a half-set-up client at the OP", "client_id", s.ClientID, "error", err.Error())
	}
}

func (e *Engine) newSite(ctx context.Context, p *oxdclient.SiteParams, kind siteKind) (*Site, *oidcConfig, error) {
	if strings.TrimSpace(p.OPHost) == "" {
		return nil, nil, oxdErr(oxdclient.CodeInvalidOPHost, descInvalidOPHost)
	}
	disc, err := e.oidc(ctx, p.OPHost, p.OPDiscoveryPath)
	if err != nil {
		return nil, nil, err
	}
	s, err := buildSite(p, disc, kind)
	if err != nil {
		return nil, nil, err
	}
	if grants := nonBlank(p.GrantTypes); len(grants) > 0 {
		s.GrantTypes = neededGrants(e.normalizeGrants(ctx, grants, disc), s, disc, kind)
	}
	// Pre-registered credentials: a client_id means no dynamic
	// registration (register validates the rest for the method).
	s.ClientID = strings.TrimSpace(p.ClientID)
	s.ClientSecret = p.ClientSecret.Reveal()
	if s.ClientID == "" && s.ClientSecret != "" {
		return nil, nil, oxdErr(oxdclient.CodeInvalidRequest, "client_secret was given without client_id: pass the client_id the OP assigned to the pre-registered client, or neither for dynamic registration.")
	}
	if err := e.register(ctx, s, disc); err != nil {
		return nil, nil, err
	}
	return s, disc, nil
}

func (e *Engine) registerSite(ctx context.Context, c *call, p *oxdclient.RegisterSiteParams) (any, error) {
	// Validate cheap parameters before any OP call or token check.
	if strings.TrimSpace(p.OPHost) == "" {
		return nil, oxdErr(oxdclient.CodeInvalidOPHost, descInvalidOPHost)
	}
	var setup *Site
	if c.protect || c.token != "" {
		if c.token == "" {
			return nil, oxdErr(oxdclient.CodeBlankProtectionAccessToken, descBlankPAT)
		}
		var err error
		if setup, err = e.setupSiteForToken(ctx, p.OPHost, p.OPDiscoveryPath, c.token); err != nil {
			return nil, err
		}
	}
	s, _, err := e.newSite(ctx, &p.SiteParams, kindRegular)
	if err != nil {
		return nil, err
	}
	if setup != nil {
		s.SetupOxdID, s.SetupClientID = setup.OxdID, setup.ClientID
	}
	if err := e.putSite(ctx, s); err != nil {
		e.unregister(ctx, s)
		return nil, fmt.Errorf("store site: %w", err)
	}
	return registerSiteAnswer{OxdID: nstr(s.OxdID), OPHost: nstr(s.OPHost)}, nil
}

// setupSiteForToken finds the setup site (same OP) whose client the
// protection token belongs to: a register_site carrying a token links the
// new site to it (reference §4).
func (e *Engine) setupSiteForToken(ctx context.Context, opHost, discoveryPath, token string) (*Site, error) {
	sites, err := e.store.ListSites(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	issuer := discoveryIssuer(opHost, discoveryPath)
	var setups []*Site
	for _, s := range sites {
		if s.IsSetupClient && discoveryIssuer(s.OPHost, s.OPDiscoveryPath) == issuer {
			setups = append(setups, s)
		}
	}
	if len(setups) == 0 {
		return nil, oxdErr(oxdclient.CodeInvalidProtectionAccessToken, descInvalidPAT)
	}
	clientID, err := e.validateProtectionToken(ctx, setups[0], token)
	if err != nil {
		return nil, err
	}
	for _, s := range setups {
		if s.ClientID == clientID {
			return s, nil
		}
	}
	return nil, oxdErr(oxdclient.CodeInvalidProtectionAccessToken, descInvalidPAT)
}

func (e *Engine) setupClient(ctx context.Context, c *call, p *oxdclient.SetupClientParams) (any, error) {
	if strings.TrimSpace(p.OPHost) == "" {
		return nil, oxdErr(oxdclient.CodeInvalidOPHost, descInvalidOPHost)
	}
	disc, err := e.oidc(ctx, p.OPHost, p.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	// Pre-registered clients (extension): setup_client_id & co. name the
	// protection client, client_id & co. the regular one. At an OP without
	// a registration endpoint, a regular client alone plays both roles.
	sp := p.SiteParams
	sp.ClientJWKSURI = "" // the setup client's keys are registered as jwks
	sp.ClientID, sp.ClientSecret = strings.TrimSpace(p.SetupClientID), p.SetupClientSecret
	oneClient := sp.ClientID == "" && sp.ClientSecret.IsZero() && strings.TrimSpace(p.ClientID) != "" && !absURL(disc.RegistrationEndpoint)
	switch {
	case oneClient:
		sp.ClientID, sp.ClientSecret = strings.TrimSpace(p.ClientID), p.ClientSecret
		sp.ClientJWKSURI = p.ClientJWKSURI
	default:
		// The setup client's own method (its secret goes to
		// get_client_token): setup_client_token_endpoint_auth_method, or
		// the engine's choice for a protection client.
		sp.ClientTokenEndpointAuthMethod = p.SetupClientTokenEndpointAuthMethod
		sp.ClientTokenEndpointAuthSigningAlg = ""
	}
	if name := strings.TrimSpace(p.SetupClientName); name != "" {
		sp.ClientName = name
	} else if sp.ClientName != "" {
		sp.ClientName += " (setup)"
	}
	setup, _, err := e.newSite(ctx, &sp, kindSetup)
	if err != nil {
		return nil, err
	}
	rp := p.SiteParams
	regular, _, err := e.newSite(ctx, &rp, kindSetupRP)
	if err != nil {
		e.unregister(ctx, setup)
		return nil, err
	}
	if oneClient {
		// One client, one key set (its public keys are what the OP knows).
		regular.ClientKeys = setup.ClientKeys.Clone()
	}
	regular.SetupOxdID, regular.SetupClientID = setup.OxdID, setup.ClientID
	if err := e.putSite(ctx, setup); err != nil {
		e.unregister(ctx, setup)
		e.unregister(ctx, regular)
		return nil, fmt.Errorf("store setup site: %w", err)
	}
	if err := e.putSite(ctx, regular); err != nil {
		_ = e.deleteSite(ctx, setup.OxdID)
		e.unregister(ctx, setup)
		e.unregister(ctx, regular)
		return nil, fmt.Errorf("store site: %w", err)
	}
	a := setupClientAnswer{
		OxdID:                         nstr(regular.OxdID),
		ClientIDOfOxdID:               nstr(regular.ClientID),
		OPHost:                        nstr(setup.OPHost),
		SetupClientOxdID:              nstr(setup.OxdID),
		ClientID:                      nstr(setup.ClientID),
		ClientSecret:                  nstr(setup.ClientSecret),
		ClientRegistrationAccessToken: nstr(setup.RegistrationAccessToken),
		ClientRegistrationClientURI:   nstr(setup.RegistrationClientURI),
		ClientSecretExpiresAt:         someInt(setup.ClientSecretExpiresAt),
	}
	if setup.ClientIDIssuedAt != 0 {
		a.ClientIDIssuedAt = someInt(setup.ClientIDIssuedAt)
	}
	return a, nil
}

func (e *Engine) updateSite(ctx context.Context, c *call, p *oxdclient.UpdateSiteParams) (any, error) {
	unlock := e.lockSite(c.site.OxdID)
	defer unlock()
	// Re-read under the lock: another command may have changed the site.
	s, err := e.store.GetSite(ctx, c.site.OxdID)
	if errors.Is(err, ErrNotFound) {
		return nil, oxdErr(oxdclient.CodeInvalidOxdID, descInvalidOxdID)
	}
	if err != nil {
		return nil, fmt.Errorf("load site: %w", err)
	}
	if rotatesPreregisteredKeys(s, p) {
		return e.rotatePreregisteredKeys(ctx, s)
	}
	if s.Preregistered || !absURL(s.RegistrationClientURI) || s.RegistrationAccessToken == "" {
		return nil, oxdErr(oxdclient.CodeInvalidRegistrationClientURL, descInvalidRegURL)
	}
	if v := strings.TrimSpace(p.AuthorizationRedirectURI); v != "" {
		if !validRedirect(v) {
			return nil, oxdErr(oxdclient.CodeInvalidAuthorizationRedirectURI, descInvalidRedirect)
		}
		s.AuthorizationRedirectURI = v
	}
	if p.RedirectURIs != nil || strings.TrimSpace(p.AuthorizationRedirectURI) != "" {
		redirects := []string{s.AuthorizationRedirectURI}
		list := nonBlank(p.RedirectURIs)
		if p.RedirectURIs == nil {
			list = s.RedirectURIs
		}
		for _, r := range list {
			if !validRedirect(r) {
				return nil, oxdErr(oxdclient.CodeInvalidAuthorizationRedirectURI, "Invalid redirect_uris (each must be an absolute URL without fragment).")
			}
			redirects = addUnique(redirects, r)
		}
		s.RedirectURIs = redirects
	}
	if v := strings.TrimSpace(p.PostLogoutRedirectURI); v != "" {
		if !validRedirect(v) {
			return nil, oxdErr(oxdclient.CodeInvalidRequest, "Invalid post_logout_redirect_uri (must be an absolute URL without fragment).")
		}
		s.PostLogoutRedirectURI = v
	}
	if l := nonBlank(p.ResponseTypes); len(l) > 0 {
		s.ResponseTypes = l
	}
	if p.Scope != nil {
		l := nonBlank(p.Scope)
		if len(l) == 0 {
			return nil, oxdErr(oxdclient.CodeInvalidScope, descInvalidScope)
		}
		if s.IsSetupClient {
			l = addUnique(l, scopeUMAProtection, scopeOxd)
		}
		s.Scope = l
	}
	// 3.1.4 stored null here when grant_types was absent; keep the stored
	// ones instead. Given grant types are normalized (short names mapped,
	// unknown ones dropped) and the grants the site needs are kept, as
	// register_site adds them (3.1.4 with Gluu's OP kept issuing refresh
	// tokens).
	if l := nonBlank(p.GrantTypes); len(l) > 0 {
		disc, err := e.oidc(ctx, s.OPHost, s.OPDiscoveryPath)
		if err != nil {
			return nil, err
		}
		kind := kindRegular
		if s.IsSetupClient {
			kind = kindSetup
		}
		s.GrantTypes = neededGrants(e.normalizeGrants(ctx, l, disc), s, disc, kind)
	}
	if v := strings.TrimSpace(p.ClientJWKSURI); v != "" {
		s.ClientJWKSURI = v
	}
	if v := strings.TrimSpace(p.ClientSectorIdentifierURI); v != "" {
		s.SectorIdentifierURI = v
	}
	if p.ClientRequestURIs != nil {
		s.ClientRequestURIs = nonBlank(p.ClientRequestURIs)
	}
	if p.ClientLogoutURIs != nil || p.ClientBackchannelLogoutURI != "" {
		if err := checkLogoutURIs(nonBlank(p.ClientLogoutURIs), strings.TrimSpace(p.ClientBackchannelLogoutURI)); err != nil {
			return nil, err
		}
	}
	if p.ClientLogoutURIs != nil {
		s.FrontChannelLogoutURIs = nonBlank(p.ClientLogoutURIs)
	}
	if v := strings.TrimSpace(p.ClientBackchannelLogoutURI); v != "" {
		s.BackChannelLogoutURI = v
	}
	if p.Contacts != nil {
		s.Contacts = nonBlank(p.Contacts)
	}
	if p.AcrValues != nil {
		s.AcrValues = nonBlank(p.AcrValues)
	}
	if p.UILocales != nil {
		s.UILocales = nonBlank(p.UILocales)
	}
	if p.ClaimsLocales != nil {
		s.ClaimsLocales = nonBlank(p.ClaimsLocales)
	}
	if err := e.updateAuth(ctx, s, p); err != nil {
		return nil, err
	}
	meta, err := registrationMetadata(s, time.Now())
	if err != nil {
		return nil, err
	}
	meta["client_id"] = s.ClientID
	var r registration
	if err := e.sendJSON(ctx, opRequest{endpoint: "registration", method: http.MethodPut, url: s.RegistrationClientURI,
		json: meta, bearer: s.RegistrationAccessToken}, &r); err != nil {
		return nil, err
	}
	if r.RegistrationAccessToken != "" {
		s.RegistrationAccessToken = r.RegistrationAccessToken // rotated (RFC 7592 §2.2)
	}
	if r.ClientSecret != "" && siteMethod(s) != clientauth.MethodNone && siteMethod(s) != clientauth.MethodPrivateKeyJWT {
		s.ClientSecret = r.ClientSecret
	}
	s.ClientKeys.Prune(time.Now())
	if err := e.putSite(ctx, s); err != nil {
		return nil, fmt.Errorf("store site: %w", err)
	}
	return oxdIDAnswer{OxdID: nstr(s.OxdID)}, nil
}

// keyRotationLead is how long a rotated key is published before it signs
// when the OP fetches the client's keys from client_jwks_uri (its cache
// must see the new key first). Keys registered as jwks are replaced by
// the RFC 7592 update itself, so the new key signs at once.
const keyRotationLead = 10 * time.Minute

// updateAuth applies update_site's client_token_endpoint_auth_method and
// rotates the key set of a private_key_jwt client: the new key is sent
// with the update (jwks) or published at once and used after
// keyRotationLead (client_jwks_uri); superseded keys stay published for
// clientauth.KeyRetireGrace.
func (e *Engine) updateAuth(ctx context.Context, s *Site, p *oxdclient.UpdateSiteParams) error {
	if m := strings.TrimSpace(p.ClientTokenEndpointAuthMethod); m != "" && m != string(siteMethod(s)) {
		pm, err := clientauth.ParseMethod(m)
		if err != nil {
			return authConfigError(err)
		}
		disc, err := e.oidc(ctx, s.OPHost, s.OPDiscoveryPath)
		if err != nil {
			return err
		}
		s.TokenEndpointAuthMethod, s.TokenEndpointAuthSigningAlg = string(pm), ""
		if pm != clientauth.MethodPrivateKeyJWT {
			s.ClientKeys = nil
		}
		if err := e.configureAuth(s, disc, false); err != nil {
			return err
		}
		return nil
	}
	if siteMethod(s) != clientauth.MethodPrivateKeyJWT || s.ClientKeys == nil {
		return nil
	}
	lead := time.Duration(0)
	if s.ClientJWKSURI != "" {
		lead = keyRotationLead
	}
	s.ClientKeys = s.ClientKeys.Clone()
	if _, err := s.ClientKeys.Rotate("", time.Now(), lead); err != nil {
		// Too many keys still published: keep the current ones.
		e.log.WarnContext(ctx, "oxdserver: client key rotation skipped", "oxd_id", s.OxdID, "error", err.Error())
	}
	return nil
}

func (e *Engine) removeSite(ctx context.Context, c *call, _ *oxdclient.RemoveSiteParams) (any, error) {
	unlock := e.lockSite(c.site.OxdID)
	defer unlock()
	if err := e.deleteSite(ctx, c.site.OxdID); err != nil && !errors.Is(err, ErrNotFound) {
		e.log.Warn("oxdserver: remove_site failed", "oxd_id", c.site.OxdID, "error", err.Error())
		return nil, oxdErr(oxdclient.CodeRemoveSiteFailed, descRemoveFailed)
	}
	e.forgetPATs(c.site.OxdID)
	return oxdIDAnswer{OxdID: nstr(c.site.OxdID)}, nil
}

// getRP answers get_rp. With protection on, {"oxd_id"} needs the token of
// that site's tenant (3.1.4 checked nothing and handed out the client
// secret), and {"list":true} needs a valid protection token and lists only
// the sites of the token's tenant (its setup site and the sites linked to
// it). Lists are paged: "offset" (default 0) and "limit" (default and
// maximum MaxGetRPList); a full page may have more after it. The token is
// introspected only at the OP named by "op_host" (and
// "op_discovery_path"), or the server's only OP: never at the OPs of other
// tenants, which would receive it.
func (e *Engine) getRP(ctx context.Context, c *call, p *getRPParams) (any, error) {
	if p.List {
		if c.protect && c.token == "" {
			// Refused before the store is read: listing reads every site.
			return nil, oxdErr(oxdclient.CodeBlankProtectionAccessToken, descBlankPAT)
		}
		sites, err := e.store.ListSites(ctx)
		if err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		if c.protect {
			issuer := ""
			if strings.TrimSpace(p.OPHost) != "" {
				issuer = discoveryIssuer(p.OPHost, p.OPDiscoveryPath)
			}
			tenant, err := e.tenantOf(ctx, sites, c.token, issuer)
			if err != nil {
				return nil, err
			}
			sites = slices.DeleteFunc(sites, func(s *Site) bool {
				return s.OxdID != tenant.OxdID && s.SetupOxdID != tenant.OxdID
			})
		}
		slices.SortFunc(sites, func(a, b *Site) int { return strings.Compare(a.OxdID, b.OxdID) })
		limit := MaxGetRPList
		if p.Limit > 0 && p.Limit < limit {
			limit = p.Limit
		}
		offset := min(max(p.Offset, 0), len(sites))
		sites = sites[offset:min(offset+limit, len(sites))]
		type entry struct {
			OxdID      nstr `json:"oxd_id"`
			ClientName nstr `json:"client_name"`
		}
		out := make([]entry, 0, len(sites))
		for _, s := range sites {
			out = append(out, entry{nstr(s.OxdID), nstr(truncateUTF8(s.ClientName, 64))})
		}
		return getRPAnswer{Node: out}, nil
	}
	id := strings.TrimSpace(p.OxdID)
	if id == "" {
		return nil, badRequest(descNoOxdID)
	}
	s, err := e.siteByCallerID(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.protect {
		c.site = s
		if err := e.checkProtection(ctx, c); err != nil {
			return nil, err
		}
	}
	return getRPAnswer{Node: rpNode(s)}, nil
}

// MaxGetRPList is the largest page of get_rp {"list":true}: 20 entries of
// a 36-character oxd_id and a client_name cut to 64 bytes fit in one socket
// frame (9999 UTF-16 units) even when every character of the names must be
// escaped. Ask for further pages with "offset".
const MaxGetRPList = 20

// getRPParams are get_rp's parameters plus the paging of lists.
type getRPParams struct {
	oxdclient.GetRPParams
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	// OPHost and OPDiscoveryPath name the OP of the caller's setup client
	// for a list (needed when the server serves several OPs).
	OPHost          string `json:"op_host"`
	OPDiscoveryPath string `json:"op_discovery_path"`
}

// rpNode is the get_rp node: every key of oxd 3.1.4's stored Rp, null when
// unset. Dates are epoch milliseconds there. Tokens are never stored, so
// their fields are always null. A private_key_jwt client's keys are not
// shown (Engine.ClientJWKS gives their public part).
func rpNode(s *Site) map[string]any {
	str := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	list := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	ms := func(sec int64) any {
		if sec == 0 {
			return nil
		}
		return sec * 1000
	}
	boolOrNull := func(b bool) any {
		if !b {
			return nil
		}
		return true
	}
	var front any
	if len(s.FrontChannelLogoutURIs) > 0 {
		front = s.FrontChannelLogoutURIs
	}
	resources := make([]any, 0, len(s.UMAResources))
	for _, r := range s.UMAResources {
		exprs := r.ScopeExpressions
		if exprs == nil {
			exprs = []json.RawMessage{}
		}
		resources = append(resources, map[string]any{
			"id": r.ID, "path": r.Path, "http_methods": list(r.HTTPMethods), "scopes": list(r.Scopes),
			"scope_expressions": exprs, "ticketScopes": list(r.TicketScopes),
		})
	}
	node := map[string]any{
		"oxd_id":                           s.OxdID,
		"op_host":                          str(s.OPHost),
		"op_discovery_path":                str(s.OPDiscoveryPath),
		"id_token":                         nil,
		"access_token":                     nil,
		"authorization_redirect_uri":       str(s.AuthorizationRedirectURI),
		"logout_redirect_uri":              str(s.PostLogoutRedirectURI),
		"application_type":                 str(s.ApplicationType),
		"redirect_uris":                    list(s.RedirectURIs),
		"claims_redirect_uri":              list(s.ClaimsRedirectURIs),
		"response_types":                   list(s.ResponseTypes),
		"front_channel_logout_uri":         front,
		"client_id":                        str(s.ClientID),
		"client_secret":                    str(s.ClientSecret),
		"client_registration_access_token": str(s.RegistrationAccessToken),
		"client_registration_client_uri":   str(s.RegistrationClientURI),
		"client_id_issued_at":              ms(s.ClientIDIssuedAt),
		"client_secret_expires_at":         ms(s.ClientSecretExpiresAt),
		"client_name":                      str(s.ClientName),
		"sector_identifier_uri":            str(s.SectorIdentifierURI),
		"client_jwks_uri":                  str(s.ClientJWKSURI),
		"token_endpoint_auth_signing_alg":  str(s.TokenEndpointAuthSigningAlg),
		"token_endpoint_auth_method":       str(s.TokenEndpointAuthMethod),
		"is_setup_client":                  boolOrNull(s.IsSetupClient),
		"setup_oxd_id":                     str(s.SetupOxdID),
		"setup_client_id":                  str(s.SetupClientID),
		"scope":                            list(s.Scope),
		"ui_locales":                       list(s.UILocales),
		"claims_locales":                   list(s.ClaimsLocales),
		"acr_values":                       list(s.AcrValues),
		"grant_types":                      list(s.GrantTypes),
		"contacts":                         list(s.Contacts),
		"user_id":                          nil,
		"user_secret":                      nil,
		"pat":                              nil,
		"pat_expires_in":                   nil,
		"pat_created_at":                   nil,
		"pat_refresh_token":                nil,
		"uma_protected_resources":          resources,
		"rpt":                              nil,
		"rpt_token_type":                   nil,
		"rpt_pct":                          nil,
		"rpt_upgraded":                     nil,
		"rpt_expires_at":                   nil,
		"rpt_created_at":                   nil,
		"oxd_rp_programming_language":      str(s.OxdRPProgrammingLanguage),
	}
	return node
}

// truncateUTF8 cuts s to at most n bytes on a character boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkLogoutURIs checks the front-channel logout URIs and the
// back-channel logout URI: absolute http(s) URLs without fragment
// (Front-Channel Logout 1.0 §2, Back-Channel Logout 1.0 §2.2).
func checkLogoutURIs(front []string, back string) error {
	for _, u := range front {
		if !validLogoutURI(u) {
			return oxdErr(oxdclient.CodeInvalidRequest, "Invalid client_frontchannel_logout_uris (each must be an absolute http(s) URL without fragment).")
		}
	}
	if back != "" && !validLogoutURI(back) {
		return oxdErr(oxdclient.CodeInvalidRequest, "Invalid client_backchannel_logout_uri (must be an absolute http(s) URL without fragment).")
	}
	return nil
}

func validLogoutURI(s string) bool {
	return validRedirect(s) && (strings.HasPrefix(strings.ToLower(s), "https://") || strings.HasPrefix(strings.ToLower(s), "http://"))
}

// siteByCallerID loads the site of the oxd_id a caller named, before the
// caller is authenticated: an id the engine cannot have made (not a UUID)
// is invalid_oxd_id without a store read, like an id the store does not
// hold.
func (e *Engine) siteByCallerID(ctx context.Context, id string) (*Site, error) {
	if !isOxdID(id) {
		return nil, oxdErr(oxdclient.CodeInvalidOxdID, descInvalidOxdID)
	}
	s, err := e.store.GetSite(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, oxdErr(oxdclient.CodeInvalidOxdID, descInvalidOxdID)
	}
	if err != nil {
		return nil, fmt.Errorf("load site: %w", err)
	}
	return s, nil
}
