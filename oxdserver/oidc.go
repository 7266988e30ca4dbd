package oxdserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
)

// keyState is the kind of the engine's one-time values: a login or
// claims-gathering state (see stateRecord).
const keyState = "state:"

var lowerBase32 = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// randomToken returns 160 random bits as 32 characters of [0-9a-v] (the
// alphabet of oxd's 3.1.4 state values).
func randomToken() string {
	var b [20]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return lowerBase32.EncodeToString(b[:])
}

// newLoginRecord returns a login's record with a fresh nonce (expiring at
// nonceExp) and PKCE code_verifier, and the verifier's S256 challenge.
func newLoginRecord(nonceExp time.Time) (rec stateRecord, challenge string) {
	rec = stateRecord{kind: recLogin, nonceExp: nonceExp}
	_, _ = rand.Read(rec.nonce[:]) // never fails (crypto/rand)
	_, _ = rand.Read(rec.verifier[:])
	sum := sha256.Sum256([]byte(rec.verifierString()))
	return rec, base64.RawURLEncoding.EncodeToString(sum[:])
}

// query builds a query string in the given order, every key and value
// URL-encoded.
type query []string

func (q *query) add(k, v string) { *q = append(*q, url.QueryEscape(k)+"="+url.QueryEscape(v)) }

// withQuery appends q to endpoint, keeping a query the endpoint already has.
func withQuery(endpoint string, q query) string {
	if len(q) == 0 {
		return endpoint
	}
	frag := ""
	if i := strings.IndexByte(endpoint, '#'); i >= 0 {
		endpoint, frag = endpoint[:i], endpoint[i:]
	}
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
		if strings.HasSuffix(endpoint, "?") || strings.HasSuffix(endpoint, "&") {
			sep = ""
		}
	}
	return endpoint + sep + strings.Join(q, "&") + frag
}

func nonBlank(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// reservedAuthzParams cannot be set through custom_parameters.
var reservedAuthzParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "scope": true,
	"state": true, "nonce": true, "code_challenge": true, "code_challenge_method": true,
	"acr_values": true, "prompt": true, "hd": true,
}

func (e *Engine) getAuthorizationURL(ctx context.Context, c *call, p *oxdclient.GetAuthorizationURLParams) (any, error) {
	site := c.site
	disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	scope := nonBlank(p.Scope)
	if len(scope) == 0 {
		scope = nonBlank(site.Scope)
	}
	acr := nonBlank(p.AcrValues)
	if len(acr) == 0 {
		acr = nonBlank(site.AcrValues)
	}
	responseTypes := nonBlank(site.ResponseTypes)
	if len(responseTypes) == 0 {
		responseTypes = []string{"code"}
	}

	// One value per pending login: the state's record holds the nonce
	// and the PKCE verifier (staterecord.go).
	state := randomToken()
	rec, challenge := newLoginRecord(e.now().Add(e.cfg.NonceTTL))
	nonce := rec.nonceString()
	if err := e.store.PutValue(ctx, valueKey(keyState, site.OxdID, state), rec.encode(), e.cfg.StateTTL); err != nil {
		return nil, fmt.Errorf("store state: %w", err)
	}

	var q query
	q.add("response_type", strings.Join(responseTypes, " "))
	q.add("client_id", site.ClientID)
	q.add("redirect_uri", site.AuthorizationRedirectURI)
	if len(scope) > 0 {
		q.add("scope", strings.Join(scope, " "))
	}
	q.add("state", state)
	q.add("nonce", nonce)
	q.add("code_challenge", challenge)
	q.add("code_challenge_method", "S256")
	if len(acr) > 0 {
		q.add("acr_values", strings.Join(acr, " "))
	}
	if s := strings.TrimSpace(p.Prompt); s != "" {
		q.add("prompt", s)
	}
	if s := strings.TrimSpace(p.HD); s != "" {
		q.add("hd", s)
	}
	keys := make([]string, 0, len(p.CustomParameters))
	for k := range p.CustomParameters {
		if k != "" && !reservedAuthzParams[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.add(k, p.CustomParameters[k])
	}
	return authorizationURLAnswer{AuthorizationURL: nstr(withQuery(disc.AuthorizationEndpoint, q))}, nil
}

// opTokens is a token endpoint answer.
type opTokens struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	RefreshToken string          `json:"refresh_token"`
	IDToken      string          `json:"id_token"`
	Scope        json.RawMessage `json:"scope"`
	PCT          string          `json:"pct"`
	Upgraded     bool            `json:"upgraded"`
}

// expiresIn reads expires_in as a number or numeric string.
func (t *opTokens) expiresIn() (int64, bool) {
	raw := strings.Trim(strings.TrimSpace(string(t.ExpiresIn)), `"`)
	if raw == "" || raw == "null" {
		return 0, false
	}
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(raw, 64); err == nil {
		return int64(f), true
	}
	return 0, false
}

// scope reads scope as a space-separated string or an array.
func (t *opTokens) scope() string { return strings.Join(scopeList(t.Scope), " ") }

func scopeList(raw json.RawMessage) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.Fields(s)
	}
	var arr []string
	if json.Unmarshal(raw, &arr) == nil {
		return arr
	}
	return nil
}

// tokenRequest posts form to a token endpoint, authenticated with creds.
func (e *Engine) tokenRequest(ctx context.Context, endpoint string, creds *clientauth.Credentials, form url.Values) (*opTokens, error) {
	var t opTokens
	err := e.sendJSON(ctx, opRequest{
		endpoint: "token", method: http.MethodPost, url: endpoint, form: form, auth: creds,
	}, &t)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (e *Engine) getTokensByCode(ctx context.Context, c *call, p *oxdclient.GetTokensByCodeParams) (any, error) {
	site := c.site
	code := strings.TrimSpace(p.Code.Reveal())
	if code == "" {
		return nil, badRequest(descNoCode)
	}
	state := strings.TrimSpace(p.State)
	if state == "" {
		return nil, badRequest(descNoState)
	}
	// Take the state first (atomic, single use): a replayed or concurrent
	// second use fails whatever happens next.
	raw, err := e.store.TakeValue(ctx, valueKey(keyState, site.OxdID, state))
	if errors.Is(err, ErrNotFound) {
		return nil, badRequest(oxdclient.DescStateNotRegistered)
	}
	if err != nil {
		return nil, fmt.Errorf("take state: %w", err)
	}
	rec, ok := decodeStateRecord(raw)
	if !ok || rec.kind != recLogin {
		return nil, badRequest(oxdclient.DescStateNotRegistered)
	}
	disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	if err := checkResponseIssuer(p.Iss, disc); err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {site.AuthorizationRedirectURI},
	}
	form.Set("code_verifier", rec.verifierString())
	tok, err := e.tokenRequest(ctx, disc.TokenEndpoint, e.creds(site, disc, disc.TokenEndpoint), form)
	if err != nil {
		var se *opStatusError
		if errors.As(err, &se) && (se.status == http.StatusBadRequest || se.status == http.StatusUnauthorized) && se.oauthCode() == "invalid_grant" {
			return nil, badRequest(descCodeInvalid)
		}
		return nil, err
	}
	if tok.IDToken == "" {
		return nil, oxdErr(oxdclient.CodeNoIDToken, descNoIDToken)
	}
	if tok.AccessToken == "" {
		return nil, oxdErr(oxdclient.CodeNoAccessToken, descNoAccessToken)
	}
	idt, err := e.validateIDToken(ctx, tok.IDToken, idTokenCheck{
		issuer: disc.Issuer, jwksURI: disc.JWKSURI, clientID: site.ClientID, accessToken: tok.AccessToken,
	})
	if err != nil {
		return nil, err
	}
	// The nonce must be the one issued with this state (taken above, so
	// used once), within its own lifetime.
	if idt.nonce == "" || subtle.ConstantTimeCompare([]byte(idt.nonce), []byte(rec.nonceString())) != 1 ||
		!e.now().Before(rec.nonceExp) {
		return nil, oxdErr(oxdclient.CodeInvalidNonce, descInvalidNonce)
	}
	exp, ok := tok.expiresIn()
	if !ok {
		exp = -1
	}
	return tokensByCodeAnswer{
		AccessToken:   nstr(tok.AccessToken),
		ExpiresIn:     exp,
		IDToken:       nstr(tok.IDToken),
		RefreshToken:  nstr(tok.RefreshToken),
		IDTokenClaims: claimsAsStrings(idt.claims),
	}, nil
}

func (e *Engine) refreshToken(ctx context.Context, c *call, p *oxdclient.GetAccessTokenByRefreshTokenParams) (any, error) {
	site := c.site
	rt := strings.TrimSpace(p.RefreshToken.Reveal())
	if rt == "" {
		return nil, badRequest("'refresh_token' is empty or not specified.")
	}
	disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope := nonBlank(p.Scope); len(scope) > 0 {
		if !slices.Contains(scope, "openid") && supports(disc.ScopesSupported, "openid", false) {
			scope = append([]string{"openid"}, scope...)
		}
		form.Set("scope", strings.Join(scope, " "))
	}
	tok, err := e.tokenRequest(ctx, disc.TokenEndpoint, e.creds(site, disc, disc.TokenEndpoint), form)
	if err != nil {
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, oxdErr(oxdclient.CodeNoAccessToken, descNoAccessToken)
	}
	return tokenAnswerOf(tok), nil
}

func tokenAnswerOf(tok *opTokens) tokenAnswer {
	a := tokenAnswer{AccessToken: nstr(tok.AccessToken), RefreshToken: nstr(tok.RefreshToken), Scope: nstr(tok.scope())}
	if n, ok := tok.expiresIn(); ok {
		a.ExpiresIn = someInt(n)
	}
	return a
}

func (e *Engine) getUserInfo(ctx context.Context, c *call, p *oxdclient.GetUserInfoParams) (any, error) {
	site := c.site
	at := strings.TrimSpace(p.AccessToken.Reveal())
	if at == "" {
		return nil, badRequest("'access_token' is empty or not specified.")
	}
	disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	if !absURL(disc.UserinfoEndpoint) {
		return nil, oxdErr(oxdclient.CodeNoConnectDiscoveryResponse, descNoDiscovery+" (no userinfo_endpoint)")
	}
	var claims map[string]any
	if err := e.sendJSON(ctx, opRequest{endpoint: "userinfo", method: http.MethodGet, url: disc.UserinfoEndpoint, bearer: at}, &claims); err != nil {
		return nil, err
	}
	return userInfoAnswer{Claims: claimsAsStrings(claims)}, nil
}

func (e *Engine) getLogoutURI(ctx context.Context, c *call, p *oxdclient.GetLogoutURIParams) (any, error) {
	site := c.site
	disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	if !absURL(disc.EndSessionEndpoint) {
		return nil, oxdErr(oxdclient.CodeNoEndSessionEndpoint, descNoEndSession)
	}
	post := strings.TrimSpace(p.PostLogoutRedirectURI)
	if post != "" && post != site.PostLogoutRedirectURI {
		return nil, badRequest("'post_logout_redirect_uri' is not registered for this site.")
	}
	if post == "" {
		post = site.PostLogoutRedirectURI
	}
	var q query
	if h := strings.TrimSpace(p.IDTokenHint.Reveal()); h != "" {
		q.add("id_token_hint", h)
	}
	if post != "" {
		q.add("post_logout_redirect_uri", post)
	}
	// OpenID RP-Initiated Logout 1.0 §2: without an id_token_hint, client_id
	// names the client to the OP (it needs it to check a
	// post_logout_redirect_uri, and to know whose session ends).
	if p.IDTokenHint.IsZero() && site.ClientID != "" {
		q.add("client_id", site.ClientID)
	}
	if s := strings.TrimSpace(p.State); s != "" {
		q.add("state", s)
	}
	if s := strings.TrimSpace(p.SessionState); s != "" {
		q.add("session_state", s)
	}
	return logoutAnswer{URI: nstr(withQuery(disc.EndSessionEndpoint, q))}, nil
}

func (e *Engine) getClientToken(ctx context.Context, c *call, p *oxdclient.GetClientTokenParams) (any, error) {
	if strings.TrimSpace(p.OPHost) == "" {
		return nil, oxdErr(oxdclient.CodeInvalidOPHost, descInvalidOPHost)
	}
	method := clientauth.MethodSecretBasic
	switch m := strings.TrimSpace(p.AuthenticationMethod); {
	case m == "" || strings.EqualFold(m, "basic"):
	case strings.EqualFold(m, string(clientauth.MethodPrivateKeyJWT)):
		// The engine holds private keys only for the clients of its sites.
		return nil, oxdErr(oxdclient.CodeInvalidAlgorithm, descInvalidAlgorithm)
	default:
		pm, err := clientauth.ParseMethod(m)
		if err != nil {
			return nil, authConfigError(err)
		}
		if pm == clientauth.MethodNone {
			return nil, oxdErr(oxdclient.CodeInvalidRequest, "get_client_token uses the client_credentials grant, which needs a confidential client: pass client_secret with authentication_method client_secret_basic, client_secret_post or client_secret_jwt.")
		}
		method = pm
	}
	if strings.TrimSpace(p.ClientID) == "" || p.ClientSecret.IsZero() {
		return nil, oxdErr(oxdclient.CodeInvalidRequest, descInvalidRequest)
	}
	disc, err := e.oidc(ctx, p.OPHost, p.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	creds := &clientauth.Credentials{
		ClientID: strings.TrimSpace(p.ClientID), Method: method, Secret: p.ClientSecret.Reveal(),
		TokenEndpoint: disc.TokenEndpoint, Issuer: disc.Issuer,
	}
	if method == clientauth.MethodSecretJWT {
		creds.SigningAlg = strings.TrimSpace(p.Algorithm)
	}
	if err := creds.Validate(); err != nil {
		return nil, authConfigError(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope := nonBlank(p.Scope); len(scope) > 0 {
		form.Set("scope", strings.Join(scope, " "))
	}
	tok, err := e.tokenRequest(ctx, disc.TokenEndpoint, creds, form)
	if err != nil {
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, oxdErr(oxdclient.CodeNoAccessToken, descNoAccessToken)
	}
	return tokenAnswerOf(tok), nil
}

func (e *Engine) introspectAccessToken(ctx context.Context, c *call, p *oxdclient.IntrospectAccessTokenParams) (any, error) {
	site := c.site
	at := strings.TrimSpace(p.AccessToken.Reveal())
	if at == "" {
		return nil, badRequest("'access_token' is empty or not specified.")
	}
	disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	in, err := e.introspect(ctx, site, disc, disc.IntrospectionEndpoint, at)
	if err != nil {
		return nil, err
	}
	scopes := in.scopes()
	a := introspectAccessTokenAnswer{
		Active:    in.active(),
		Scopes:    scopes,
		ClientID:  nstr(in.str("client_id")),
		Username:  nstr(in.str("username")),
		TokenType: nstr(in.str("token_type")),
		Exp:       rawOrNull(in["exp"]),
		Iat:       rawOrNull(in["iat"]),
		Sub:       nstr(in.str("sub")),
		Aud:       rawOrNull(in["aud"]),
		Iss:       nstr(in.str("iss")),
		JTI:       nstr(in.str("jti")),
		AcrValues: nstr(in.acr()),
		Scope:     scopes,
	}
	return a, nil
}

// valueKey is the store key of a one-time value of a site: the store
// groups (and bounds) values by kind and site, the part before the '/'.
func valueKey(kind, oxdID, v string) string { return kind + oxdID + "/" + v }

// checkResponseIssuer applies RFC 9207 to the iss the caller relayed from
// the authorization response (nil: not relayed, no check): it must be the
// OP's issuer, and present when the OP announces it. The code is not
// exchanged otherwise (it may come from another OP: a mix-up attack).
func checkResponseIssuer(iss *string, disc *oidcConfig) error {
	switch {
	case iss == nil:
		return nil
	case *iss == "" && disc.IssParameterSupported:
		return oxdErr(oxdclient.CodeIssuerMismatch, "the authorization response has no iss, although the OP announces authorization_response_iss_parameter_supported (RFC 9207)")
	case *iss != "" && *iss != disc.Issuer:
		return oxdErr(oxdclient.CodeIssuerMismatch, "the authorization response's iss is not the OP's issuer (RFC 9207)")
	}
	return nil
}
