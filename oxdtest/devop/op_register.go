package devop

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Grant types the OP supports.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
	// GrantTypeUMATicket is the UMA 2.0 grant type (UMA Grant §3.3.1).
	GrantTypeUMATicket = "urn:ietf:params:oauth:grant-type:uma-ticket"
)

var supportedGrantTypes = []string{grantAuthorizationCode, grantRefreshToken, grantClientCredentials, GrantTypeUMATicket}

// supportedScopes are the only scopes the OP knows.
var supportedScopes = []string{"openid", "profile", "email", "offline_access", "uma_protection", "uma_authorization", "oxd"}

const (
	authBasic         = "client_secret_basic"
	authPost          = "client_secret_post"
	authSecretJWT     = "client_secret_jwt"
	authPrivateKeyJWT = "private_key_jwt"
	authNone          = "none"
)

// allAuthMethods are the token_endpoint_auth_methods the OP implements.
var allAuthMethods = []string{authBasic, authPost, authSecretJWT, authPrivateKeyJWT, authNone}

// Client assertion algorithms (RFC 7523): HMAC with the client secret
// for client_secret_jwt, the client's registered keys for private_key_jwt.
var (
	hmacAssertionAlgs = []string{"HS256", "HS384", "HS512"}
	keyAssertionAlgs  = []string{"RS256", "PS256", "ES256"}
)

// clientMeta is the registered metadata of a client (RFC 7591 §2, plus
// UMA Grant §2's claims_redirect_uris and OIDC RP-initiated logout's
// post_logout_redirect_uris).
type clientMeta struct {
	RedirectURIs            []string `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string `json:"post_logout_redirect_uris"`
	ClaimsRedirectURIs      []string `json:"claims_redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ClientName              string   `json:"client_name,omitempty"`
	ApplicationType         string   `json:"application_type"`
	// private_key_jwt and client_secret_jwt (RFC 7591 §2, OIDC Registration §2).
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	JWKSURI                     string          `json:"jwks_uri,omitempty"`
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	// OpenID Connect Front-Channel and Back-Channel Logout.
	FrontChannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontChannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty"`
	BackChannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackChannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required,omitempty"`
}

type clientRec struct {
	id       string
	secret   string // "" for public clients
	regToken string
	issuedAt int64
	meta     clientMeta
	scopes   []string
	extra    map[string]json.RawMessage // other metadata, echoed back
	jwks     *jose.JSONWebKeySet        // parsed meta.JWKS (public keys)
	static   bool                       // configured with OPConfig.Clients
}

func (c *clientRec) public() bool { return c.meta.TokenEndpointAuthMethod == authNone }

func (c *clientRec) hasGrant(g string) bool { return slices.Contains(c.meta.GrantTypes, g) }

// maxExtraMetadata bounds the number of unknown metadata fields echoed.
const maxExtraMetadata = 64

// parseClientMeta validates registration metadata (RFC 7591 §2, §3.2.2).
func parseClientMeta(raw map[string]json.RawMessage) (clientMeta, map[string]json.RawMessage, *oauthError) {
	var m clientMeta
	bad := func(code, desc string) (clientMeta, map[string]json.RawMessage, *oauthError) {
		return clientMeta{}, nil, oauthErr(http.StatusBadRequest, code, desc)
	}
	strs := func(key string) ([]string, bool) {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return nil, true
		}
		var out []string
		if err := json.Unmarshal(v, &out); err != nil {
			return nil, false
		}
		return out, true
	}
	str := func(key string) (string, bool) {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return "", true
		}
		var out string
		if err := json.Unmarshal(v, &out); err != nil {
			return "", false
		}
		return out, true
	}
	var ok bool
	if m.RedirectURIs, ok = strs("redirect_uris"); !ok {
		return bad("invalid_redirect_uri", "redirect_uris must be an array of strings")
	}
	if m.PostLogoutRedirectURIs, ok = strs("post_logout_redirect_uris"); !ok {
		return bad("invalid_client_metadata", "post_logout_redirect_uris must be an array of strings")
	}
	if m.ClaimsRedirectURIs, ok = strs("claims_redirect_uris"); !ok {
		return bad("invalid_client_metadata", "claims_redirect_uris must be an array of strings")
	}
	// oxd sends the singular name.
	legacy, ok := strs("claims_redirect_uri")
	if !ok {
		return bad("invalid_client_metadata", "claims_redirect_uri must be an array of strings")
	}
	for _, u := range legacy {
		if !slices.Contains(m.ClaimsRedirectURIs, u) {
			m.ClaimsRedirectURIs = append(m.ClaimsRedirectURIs, u)
		}
	}
	if m.GrantTypes, ok = strs("grant_types"); !ok {
		return bad("invalid_client_metadata", "grant_types must be an array of strings")
	}
	if m.ResponseTypes, ok = strs("response_types"); !ok {
		return bad("invalid_client_metadata", "response_types must be an array of strings")
	}
	if m.TokenEndpointAuthMethod, ok = str("token_endpoint_auth_method"); !ok {
		return bad("invalid_client_metadata", "token_endpoint_auth_method must be a string")
	}
	if m.ClientName, ok = str("client_name"); !ok {
		return bad("invalid_client_metadata", "client_name must be a string")
	}
	if m.ApplicationType, ok = str("application_type"); !ok {
		return bad("invalid_client_metadata", "application_type must be a string")
	}
	if m.TokenEndpointAuthSigningAlg, ok = str("token_endpoint_auth_signing_alg"); !ok {
		return bad("invalid_client_metadata", "token_endpoint_auth_signing_alg must be a string")
	}
	if m.JWKSURI, ok = str("jwks_uri"); !ok {
		return bad("invalid_client_metadata", "jwks_uri must be a string")
	}
	if v, present := raw["jwks"]; present && string(v) != "null" {
		m.JWKS = v
	}
	// Front-Channel and Back-Channel Logout: absolute http(s) URLs.
	for key, dst := range map[string]*string{"frontchannel_logout_uri": &m.FrontChannelLogoutURI, "backchannel_logout_uri": &m.BackChannelLogoutURI} {
		if *dst, ok = str(key); !ok {
			return bad("invalid_client_metadata", key+" must be a string")
		}
		if u, err := url.Parse(*dst); *dst != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "") {
			return bad("invalid_client_metadata", key+" must be an absolute http(s) URL without fragment")
		}
	}
	m.FrontChannelLogoutSessionRequired = string(raw["frontchannel_logout_session_required"]) == "true"
	m.BackChannelLogoutSessionRequired = string(raw["backchannel_logout_session_required"]) == "true"

	// scope: RFC 7591 says a space-separated string; accept an array too.
	if v, present := raw["scope"]; present && string(v) != "null" {
		if s, ok := str("scope"); ok {
			m.Scope = s
		} else if arr, ok := strs("scope"); ok {
			m.Scope = joinScope(arr)
		} else {
			return bad("invalid_client_metadata", "scope must be a string")
		}
	}

	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{grantAuthorizationCode}
	}
	for _, g := range m.GrantTypes {
		if !slices.Contains(supportedGrantTypes, g) {
			return bad("invalid_client_metadata", "unsupported grant type "+g)
		}
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return bad("invalid_client_metadata", "only response type code is supported")
		}
	}
	switch m.TokenEndpointAuthMethod {
	case "":
		m.TokenEndpointAuthMethod = authBasic
	case authBasic, authPost:
	case authSecretJWT:
		if a := m.TokenEndpointAuthSigningAlg; a != "" && !slices.Contains(hmacAssertionAlgs, a) {
			return bad("invalid_client_metadata", "token_endpoint_auth_signing_alg of a client_secret_jwt client must be one of "+strings.Join(hmacAssertionAlgs, ", "))
		}
	case authPrivateKeyJWT:
		if a := m.TokenEndpointAuthSigningAlg; a != "" && !slices.Contains(keyAssertionAlgs, a) {
			return bad("invalid_client_metadata", "token_endpoint_auth_signing_alg of a private_key_jwt client must be one of "+strings.Join(keyAssertionAlgs, ", "))
		}
		if (m.JWKSURI == "") == (m.JWKS == nil) {
			return bad("invalid_client_metadata", "a private_key_jwt client registers exactly one of jwks and jwks_uri")
		}
	case authNone:
		if slices.Contains(m.GrantTypes, grantClientCredentials) || slices.Contains(m.GrantTypes, GrantTypeUMATicket) {
			return bad("invalid_client_metadata", "public clients cannot use client_credentials or the uma-ticket grant")
		}
	default:
		return bad("invalid_client_metadata", "unsupported token_endpoint_auth_method")
	}
	if m.JWKSURI != "" && !validRedirectURI(m.JWKSURI) {
		return bad("invalid_client_metadata", "jwks_uri must be an absolute http(s) URL without fragment")
	}
	if m.JWKS != nil {
		if _, oe := parseClientJWKS(m.JWKS); oe != nil {
			return clientMeta{}, nil, oe
		}
	}
	if m.ApplicationType == "" {
		m.ApplicationType = "web"
	}
	if m.ApplicationType != "web" && m.ApplicationType != "native" {
		return bad("invalid_client_metadata", "application_type must be web or native")
	}
	if slices.Contains(m.GrantTypes, grantAuthorizationCode) && len(m.RedirectURIs) == 0 {
		return bad("invalid_redirect_uri", "redirect_uris are required for the authorization_code grant")
	}
	for _, list := range [][]string{m.RedirectURIs, m.PostLogoutRedirectURIs, m.ClaimsRedirectURIs} {
		for _, u := range list {
			if !validRedirectURI(u) {
				return bad("invalid_redirect_uri", "redirect URIs must be absolute http(s) URLs without fragment")
			}
		}
	}
	if m.Scope == "" {
		m.Scope = joinScope(supportedScopes)
	}
	for _, s := range splitScope(m.Scope) {
		if !slices.Contains(supportedScopes, s) {
			return bad("invalid_client_metadata", "unsupported scope "+s)
		}
	}
	m.Scope = joinScope(intersect(splitScope(m.Scope), supportedScopes))

	extra := map[string]json.RawMessage{}
	known := map[string]bool{
		"redirect_uris": true, "post_logout_redirect_uris": true, "claims_redirect_uris": true,
		"claims_redirect_uri": true, "grant_types": true, "response_types": true, "scope": true,
		"token_endpoint_auth_method": true, "client_name": true, "application_type": true,
		"token_endpoint_auth_signing_alg": true, "jwks_uri": true, "jwks": true,
		// credentials are the server's to assign (RFC 7591 §3.2.1, RFC 7592 §2.2)
		"client_id": true, "client_secret": true, "registration_access_token": true,
		"registration_client_uri": true, "client_id_issued_at": true, "client_secret_expires_at": true,
	}
	for k, v := range raw {
		if known[k] {
			continue
		}
		if len(extra) >= maxExtraMetadata {
			return bad("invalid_client_metadata", "too many metadata fields")
		}
		extra[k] = v
	}
	return m, extra, nil
}

// validRedirectURI accepts absolute http(s) URLs with a host and without
// a fragment or user info.
func validRedirectURI(s string) bool {
	if strings.Contains(s, "#") || len(s) > 2048 {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// clientResponse is the registration response (RFC 7591 §3.2.1).
func (op *OP) clientResponse(c *clientRec) map[string]any {
	out := map[string]any{}
	for k, v := range c.extra {
		out[k] = v
	}
	out["client_id"] = c.id
	out["client_id_issued_at"] = c.issuedAt
	if c.secret != "" {
		out["client_secret"] = c.secret
		out["client_secret_expires_at"] = 0
	}
	out["registration_access_token"] = c.regToken
	out["registration_client_uri"] = op.url(pathRegistration + "/" + url.PathEscape(c.id))
	out["redirect_uris"] = nonNil(c.meta.RedirectURIs)
	out["post_logout_redirect_uris"] = nonNil(c.meta.PostLogoutRedirectURIs)
	out["claims_redirect_uris"] = nonNil(c.meta.ClaimsRedirectURIs)
	out["grant_types"] = c.meta.GrantTypes
	out["response_types"] = c.meta.ResponseTypes
	out["scope"] = c.meta.Scope
	out["token_endpoint_auth_method"] = c.meta.TokenEndpointAuthMethod
	out["application_type"] = c.meta.ApplicationType
	if c.meta.TokenEndpointAuthSigningAlg != "" {
		out["token_endpoint_auth_signing_alg"] = c.meta.TokenEndpointAuthSigningAlg
	}
	if c.meta.JWKSURI != "" {
		out["jwks_uri"] = c.meta.JWKSURI
	}
	if c.meta.JWKS != nil {
		out["jwks"] = c.meta.JWKS
	}
	if c.meta.ClientName != "" {
		out["client_name"] = c.meta.ClientName
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// handleRegister serves POST /register (RFC 7591 §3). Registration is
// open: no initial access token is needed.
func (op *OP) handleRegister(w http.ResponseWriter, r *http.Request, _ string) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	var raw map[string]json.RawMessage
	if err := readJSON(r, &raw); err != nil || raw == nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "body must be a JSON object")
		return
	}
	meta, extra, oe := op.parseClientMeta(raw)
	if oe != nil {
		writeErr(w, oe)
		return
	}
	c := &clientRec{
		id:       randomID(),
		regToken: randomValue(),
		issuedAt: op.now().Unix(),
		meta:     meta,
		scopes:   splitScope(meta.Scope),
		extra:    extra,
	}
	c.jwks, _ = parseClientJWKS(meta.JWKS)
	c.secret = newClientSecret(meta.TokenEndpointAuthMethod)
	op.mu.Lock()
	op.st.clients[c.id] = c
	resp := op.clientResponse(c)
	op.mu.Unlock()
	w.Header().Set("Location", op.url(pathRegistration+"/"+url.PathEscape(c.id)))
	writeJSON(w, http.StatusCreated, resp)
}

// handleRegistrationClient serves GET/PUT/DELETE on the registration
// client URI (RFC 7592), authenticated with the registration access token.
func (op *OP) handleRegistrationClient(w http.ResponseWriter, r *http.Request, id string) {
	if !allowMethods(w, r, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	tok, ok := bearerToken(r)
	op.mu.Lock()
	c := op.st.clients[id]
	op.mu.Unlock()
	// RFC 7592 §2: an unknown client and a wrong token answer the same.
	// Static clients have no registration access token.
	if !ok || c == nil || c.regToken == "" || !secretEqual(tok, c.regToken) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "invalid registration access token")
		return
	}
	switch r.Method {
	case http.MethodGet:
		op.mu.Lock()
		resp := op.clientResponse(c)
		op.mu.Unlock()
		writeJSON(w, http.StatusOK, resp)
	case http.MethodDelete:
		op.mu.Lock()
		delete(op.st.clients, c.id)
		for k, t := range op.st.tokens {
			if t.clientID == c.id {
				delete(op.st.tokens, k)
			}
		}
		for k, cd := range op.st.codes {
			if cd.clientID == c.id {
				delete(op.st.codes, k)
			}
		}
		op.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		var raw map[string]json.RawMessage
		if err := readJSON(r, &raw); err != nil || raw == nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "body must be a JSON object")
			return
		}
		// RFC 7592 §2.2: client_id must match; a client_secret, if sent,
		// must be the current one. oxd's update_site sends neither.
		var sentID, sentSecret string
		if v, ok := raw["client_id"]; ok && json.Unmarshal(v, &sentID) == nil && sentID != c.id {
			writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "client_id does not match")
			return
		}
		if v, ok := raw["client_secret"]; ok && json.Unmarshal(v, &sentSecret) == nil && sentSecret != "" && !secretEqual(sentSecret, c.secret) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "client_secret does not match")
			return
		}
		meta, extra, oe := op.parseClientMeta(raw)
		if oe != nil {
			writeErr(w, oe)
			return
		}
		if (meta.TokenEndpointAuthMethod == authNone) != (c.meta.TokenEndpointAuthMethod == authNone) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "a client cannot switch between public and confidential")
			return
		}
		jwks, _ := parseClientJWKS(meta.JWKS)
		op.mu.Lock()
		c.meta, c.extra, c.scopes, c.jwks = meta, extra, splitScope(meta.Scope), jwks
		if usesSecret(meta.TokenEndpointAuthMethod) && len(c.secret) < len(newClientSecret(meta.TokenEndpointAuthMethod)) {
			// A client switching to a secret-based method (or to
			// client_secret_jwt, which needs a longer secret) gets a new one.
			c.secret = newClientSecret(meta.TokenEndpointAuthMethod)
		}
		resp := op.clientResponse(c)
		op.mu.Unlock()
		writeJSON(w, http.StatusOK, resp)
	}
}

// clientByID returns the registered client or nil.
func (op *OP) clientByID(id string) *clientRec {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.st.clients[id]
}
