package devop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// assertionType is the client_assertion_type of RFC 7523 §2.2.
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// jwksFetchTimeout and maxClientJWKS bound fetching a client's jwks_uri.
const (
	jwksFetchTimeout = 5 * time.Second
	maxClientJWKS    = 64 << 10
	maxClientKeys    = 16
)

// StaticClient is a client configured at construction (OPConfig.Clients):
// a pre-registered client, as at an OP without dynamic registration. It
// has no registration access token, so RFC 7592 management does not
// apply to it.
type StaticClient struct {
	// ClientID is required and unique.
	ClientID string
	// ClientSecret is required for client_secret_basic,
	// client_secret_post and client_secret_jwt (at least 32 bytes for
	// client_secret_jwt with HS256, 48 with HS384, 64 with HS512), and
	// must be empty for none and private_key_jwt.
	ClientSecret string
	// TokenEndpointAuthMethod is the token_endpoint_auth_method (default
	// client_secret_basic).
	TokenEndpointAuthMethod string
	// TokenEndpointAuthSigningAlg, when set, is the only assertion
	// algorithm accepted from the client.
	TokenEndpointAuthSigningAlg string
	// JWKS (a JWKS document with public keys) or JWKSURI (where the OP
	// fetches it at each authentication) holds the keys of a
	// private_key_jwt client; exactly one is required for it.
	JWKS    []byte
	JWKSURI string
	// RedirectURIs, PostLogoutRedirectURIs and ClaimsRedirectURIs are
	// absolute http(s) URLs without fragment.
	RedirectURIs, PostLogoutRedirectURIs, ClaimsRedirectURIs []string
	// GrantTypes (default authorization_code) and Scope (default every
	// supported scope) as in registration.
	GrantTypes []string
	Scope      string
	ClientName string
}

// ErrInvalidClient is returned by NewOP and StartOP for a StaticClient
// that cannot be used; the message says which field is wrong.
var ErrInvalidClient = errors.New("devop: invalid static client")

// staticClient validates sc like a registration request and returns its
// record.
func (op *OP) staticClient(sc StaticClient) (*clientRec, error) {
	if strings.TrimSpace(sc.ClientID) == "" {
		return nil, fmt.Errorf("%w: ClientID is required", ErrInvalidClient)
	}
	method := sc.TokenEndpointAuthMethod
	if method == "" {
		method = authBasic
	}
	raw := map[string]json.RawMessage{}
	put := func(k string, v any) {
		b, _ := json.Marshal(v)
		raw[k] = b
	}
	put("token_endpoint_auth_method", method)
	for k, v := range map[string][]string{
		"redirect_uris": sc.RedirectURIs, "post_logout_redirect_uris": sc.PostLogoutRedirectURIs,
		"claims_redirect_uris": sc.ClaimsRedirectURIs, "grant_types": sc.GrantTypes,
	} {
		if v != nil {
			put(k, v)
		}
	}
	for k, v := range map[string]string{
		"scope": sc.Scope, "client_name": sc.ClientName, "jwks_uri": sc.JWKSURI,
		"token_endpoint_auth_signing_alg": sc.TokenEndpointAuthSigningAlg,
	} {
		if v != "" {
			put(k, v)
		}
	}
	if sc.JWKS != nil {
		raw["jwks"] = json.RawMessage(sc.JWKS)
	}
	meta, _, oe := op.parseClientMeta(raw)
	if oe != nil {
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidClient, sc.ClientID, oe.Description)
	}
	switch {
	case usesSecret(method) && sc.ClientSecret == "":
		return nil, fmt.Errorf("%w %q: %s needs a ClientSecret", ErrInvalidClient, sc.ClientID, method)
	case !usesSecret(method) && sc.ClientSecret != "":
		return nil, fmt.Errorf("%w %q: a %s client has no ClientSecret", ErrInvalidClient, sc.ClientID, method)
	case method == authSecretJWT && len(sc.ClientSecret) < hmacKeyLen(meta.TokenEndpointAuthSigningAlg):
		return nil, fmt.Errorf("%w %q: the ClientSecret of a client_secret_jwt client needs at least %d bytes", ErrInvalidClient, sc.ClientID, hmacKeyLen(meta.TokenEndpointAuthSigningAlg))
	}
	c := &clientRec{
		id: sc.ClientID, secret: sc.ClientSecret, issuedAt: op.now().Unix(),
		meta: meta, scopes: splitScope(meta.Scope), extra: map[string]json.RawMessage{}, static: true,
	}
	c.jwks, _ = parseClientJWKS(meta.JWKS)
	return c, nil
}

func hmacKeyLen(alg string) int {
	switch alg {
	case "HS384":
		return 48
	case "HS512":
		return 64
	}
	return 32
}

// usesSecret reports whether a method authenticates with the client secret.
func usesSecret(method string) bool {
	return method == authBasic || method == authPost || method == authSecretJWT
}

// newClientSecret returns a fresh secret for a method ("" for none and
// private_key_jwt). client_secret_jwt clients get 512 bits, enough for
// HS512 (RFC 7518 §3.2).
func newClientSecret(method string) string {
	switch {
	case method == authSecretJWT:
		return randomValue() + randomValue()
	case usesSecret(method):
		return randomValue()
	}
	return ""
}

// authMethods is token_endpoint_auth_methods_supported.
func (op *OP) authMethods() []string {
	if op.cfg.ClientAuthMethods != nil {
		return op.cfg.ClientAuthMethods
	}
	return allAuthMethods
}

// parseClientMeta is parseClientMeta restricted to the methods the OP
// offers.
func (op *OP) parseClientMeta(raw map[string]json.RawMessage) (clientMeta, map[string]json.RawMessage, *oauthError) {
	m, extra, oe := parseClientMeta(raw)
	if oe != nil {
		return m, extra, oe
	}
	if !slices.Contains(op.authMethods(), m.TokenEndpointAuthMethod) {
		return clientMeta{}, nil, oauthErr(http.StatusBadRequest, "invalid_client_metadata",
			"token_endpoint_auth_method "+m.TokenEndpointAuthMethod+" is not offered by this OP (see token_endpoint_auth_methods_supported)")
	}
	return m, extra, nil
}

// parseClientJWKS parses registered public keys: a JWKS of at most
// maxClientKeys public RSA (2048 bits or more) or P-256 keys.
func parseClientJWKS(raw json.RawMessage) (*jose.JSONWebKeySet, *oauthError) {
	if raw == nil {
		return nil, nil
	}
	bad := oauthErr(http.StatusBadRequest, "invalid_client_metadata", "jwks must be a JWKS ({\"keys\":[…]}) of public RSA (2048+ bits) or P-256 keys")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 || len(set.Keys) > maxClientKeys {
		return nil, bad
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, oauthErr(http.StatusBadRequest, "invalid_client_metadata", "jwks must not contain private keys")
		}
		if !usableKey(k) {
			return nil, bad
		}
	}
	return &set, nil
}

func usableKey(k jose.JSONWebKey) bool {
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		return pk.N.BitLen() >= 2048 && (k.Algorithm == "" || k.Algorithm == "RS256" || k.Algorithm == "PS256")
	case *ecdsa.PublicKey:
		return pk.Curve == elliptic.P256() && (k.Algorithm == "" || k.Algorithm == "ES256")
	}
	return false
}

// authenticateClient authenticates the caller of the token,
// introspection and revocation endpoints (path is the endpoint's path,
// one of the audiences a client assertion may name). One mechanism per
// request (RFC 6749 §2.3): HTTP Basic, client_secret in the body, a
// client assertion (RFC 7523), or client_id alone for public clients.
// A client may use only its registered method, except that
// client_secret_basic and client_secret_post clients may use either one
// unless OPConfig.StrictClientAuthMethod is set.
func (op *OP) authenticateClient(r *http.Request, form url.Values, path string) (*clientRec, *oauthError) {
	user, pass, basic := r.BasicAuth()
	postID, postSecret := form.Get("client_id"), form.Get("client_secret")
	assertion := form.Get("client_assertion")
	invalid := &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "client authentication failed", Basic: basic}
	n := 0
	for _, b := range []bool{basic, postSecret != "", assertion != "" || form.Has("client_assertion_type")} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "more than one client authentication method")
	}
	if r.Header.Get("Authorization") != "" && !basic {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "unsupported Authorization scheme for client authentication")
	}
	wrongMethod := func(c *clientRec, used string) *oauthError {
		return &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Basic: basic,
			Description: "the client is registered with token_endpoint_auth_method " + c.meta.TokenEndpointAuthMethod + ", not " + used}
	}
	switch {
	case basic:
		// RFC 6749 §2.3.1: both parts are form-urlencoded.
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, invalid
		}
		if postID != "" && postID != id {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "client_id does not match the credentials")
		}
		c := op.clientByID(id)
		if c == nil || c.secret == "" || !secretEqual(secret, c.secret) {
			return nil, invalid
		}
		if !op.secretMethodOK(c, authBasic) {
			return nil, wrongMethod(c, authBasic)
		}
		return c, nil
	case postSecret != "":
		c := op.clientByID(postID)
		if postID == "" || c == nil || c.secret == "" || !secretEqual(postSecret, c.secret) {
			return nil, invalid
		}
		if !op.secretMethodOK(c, authPost) {
			return nil, wrongMethod(c, authPost)
		}
		return c, nil
	case assertion != "" || form.Has("client_assertion_type"):
		return op.verifyAssertion(r.Context(), form, path)
	}
	if postID == "" {
		return nil, invalid
	}
	c := op.clientByID(postID)
	if c == nil {
		return nil, invalid
	}
	if !c.public() {
		return nil, &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client",
			Description: "the client is confidential (" + c.meta.TokenEndpointAuthMethod + ") and sent no credentials"}
	}
	return c, nil
}

// secretMethodOK reports whether client c may authenticate with the
// secret method used (basic or post).
func (op *OP) secretMethodOK(c *clientRec, used string) bool {
	reg := c.meta.TokenEndpointAuthMethod
	if reg == used {
		return true
	}
	return !op.cfg.StrictClientAuthMethod && (reg == authBasic || reg == authPost)
}

// verifyAssertion authenticates a client_secret_jwt or private_key_jwt
// client (RFC 7523 §3, OIDC Core §9): signature with the client secret or
// the client's registered keys, iss = sub = client_id, aud the token
// endpoint, the issuer or the endpoint called, exp in the future, and a
// jti never seen before (kept until the assertion expires). Error
// descriptions say which check failed; they never quote the assertion.
func (op *OP) verifyAssertion(ctx context.Context, form url.Values, path string) (*clientRec, *oauthError) {
	fail := func(desc string) (*clientRec, *oauthError) {
		return nil, &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: desc}
	}
	if t := form.Get("client_assertion_type"); t != assertionType {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "client_assertion_type must be "+assertionType)
	}
	var algs []jose.SignatureAlgorithm
	for _, a := range assertionAlgs() {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), algs)
	if err != nil || len(tok.Headers) != 1 {
		return fail("client_assertion is not a JWS-signed JWT with an accepted algorithm (" + strings.Join(assertionAlgs(), ", ") + ")")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return fail("client_assertion claims are not valid JSON")
	}
	if unverified.Subject == "" {
		return fail("client_assertion has no sub (it must be the client_id)")
	}
	if id := form.Get("client_id"); id != "" && id != unverified.Subject {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "client_id does not match the client_assertion's sub")
	}
	c := op.clientByID(unverified.Subject)
	if c == nil {
		return fail("client authentication failed")
	}
	method := c.meta.TokenEndpointAuthMethod
	if method != authSecretJWT && method != authPrivateKeyJWT {
		return fail("the client is registered with token_endpoint_auth_method " + method + ", not a client assertion")
	}
	hdr := tok.Headers[0]
	alg := hdr.Algorithm
	if reg := c.meta.TokenEndpointAuthSigningAlg; reg != "" && alg != reg {
		return fail("client_assertion is signed with " + alg + "; the client registered token_endpoint_auth_signing_alg " + reg)
	}
	var candidates []any
	switch method {
	case authSecretJWT:
		if !slices.Contains(hmacAssertionAlgs, alg) {
			return fail("a client_secret_jwt assertion is signed with HMAC (" + strings.Join(hmacAssertionAlgs, ", ") + "), not " + alg)
		}
		candidates = []any{[]byte(c.secret)}
	case authPrivateKeyJWT:
		if !slices.Contains(keyAssertionAlgs, alg) {
			return fail("a private_key_jwt assertion is signed with " + strings.Join(keyAssertionAlgs, ", ") + ", not " + alg)
		}
		set, oe := op.clientKeys(ctx, c)
		if oe != nil {
			return nil, oe
		}
		for _, k := range set.Keys {
			if (hdr.KeyID == "" || k.KeyID == hdr.KeyID) && keyFitsAlg(k, alg) {
				candidates = append(candidates, k.Key)
			}
		}
		if len(candidates) == 0 {
			return fail(fmt.Sprintf("no %s key with kid %q among the client's registered keys", alg, hdr.KeyID))
		}
	}
	var claims jwt.Claims
	verified := false
	for _, k := range candidates {
		if tok.Claims(k, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		if method == authSecretJWT {
			return fail("client_assertion signature does not verify with the client secret")
		}
		return fail("client_assertion signature does not verify with the client's registered keys (forged or signed with an unregistered key)")
	}
	now := op.now()
	switch {
	case claims.Issuer != c.id || claims.Subject != c.id:
		return fail("client_assertion iss and sub must both be the client_id")
	case !slices.ContainsFunc(claims.Audience, func(a string) bool {
		return a == op.url(pathToken) || a == op.issuer || a == op.url(path)
	}):
		return fail("client_assertion aud must be the token endpoint URL " + op.url(pathToken) + " (or the issuer, or the URL of the endpoint called)")
	case claims.Expiry == nil:
		return fail("client_assertion has no exp")
	case !now.Before(claims.Expiry.Time()):
		return fail("client_assertion has expired")
	case claims.NotBefore != nil && now.Before(claims.NotBefore.Time()):
		return fail("client_assertion is not valid yet (nbf)")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(time.Minute)):
		return fail("client_assertion is issued in the future (iat)")
	case claims.ID == "":
		return fail("client_assertion has no jti")
	}
	key := digestOf(c.id + "\x00" + claims.ID)
	op.mu.Lock()
	op.sweepLocked(now)
	if exp, seen := op.st.jtis[key]; seen && now.Before(exp) {
		op.mu.Unlock()
		return fail("client_assertion jti was already used (replay refused)")
	}
	op.st.jtis[key] = claims.Expiry.Time()
	op.mu.Unlock()
	return c, nil
}

func keyFitsAlg(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" || alg == "PS256"
	case *ecdsa.PublicKey:
		return alg == "ES256"
	}
	return false
}

// clientKeys returns the client's registered public keys: its jwks, or
// its jwks_uri fetched now (so a rotated key is seen at once).
func (op *OP) clientKeys(ctx context.Context, c *clientRec) (*jose.JSONWebKeySet, *oauthError) {
	op.mu.Lock()
	set, uri := c.jwks, c.meta.JWKSURI
	op.mu.Unlock()
	if set != nil {
		return set, nil
	}
	fail := &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "the client's jwks_uri could not be fetched or holds no usable public keys"}
	if uri == "" {
		return nil, fail
	}
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fail
	}
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fail
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxClientJWKS+1))
	if err != nil || res.StatusCode != http.StatusOK || len(b) > maxClientJWKS {
		return nil, fail
	}
	set, oe := parseClientJWKS(b)
	if oe != nil {
		return nil, fail
	}
	return set, nil
}
