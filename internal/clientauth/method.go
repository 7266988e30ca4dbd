// Package clientauth authenticates an OAuth 2.0 / OpenID Connect client at
// the endpoints of its OP that require client authentication: the token
// endpoint (code exchange, refresh, client_credentials, the UMA
// uma-ticket grant, protection tokens), introspection (RFC 7662) and
// revocation (RFC 7009).
//
// # Methods
//
// The five token_endpoint_auth_method values of OIDC Core §9 and RFC 7591:
//
//   - client_secret_basic: HTTP Basic with client_id and client_secret,
//     each form-urlencoded first (RFC 6749 §2.3.1), so a secret with
//     ':' or non-ASCII characters survives.
//   - client_secret_post: client_id and client_secret in the form body.
//   - client_secret_jwt: a client assertion (RFC 7523) signed with HMAC
//     (HS256 by default) keyed by the client_secret.
//   - private_key_jwt: a client assertion signed with a private key of a
//     KeySet (RS256, PS256 or ES256); the OP verifies it with the public
//     keys the client registered (jwks or jwks_uri).
//   - none: a public client; it sends its client_id only and must use
//     PKCE on every code flow (Credentials.PKCE).
//
// # Client assertions
//
// iss and sub are the client_id, jti is 256 bits from crypto/rand, iat is
// now and exp at most MaxAssertionTTL (60 s) later. aud is, by default,
// the OP's token endpoint URL, whichever endpoint the assertion is sent
// to: RFC 7523 §3 names the token endpoint as the audience and OIDC Core
// §9 says "The Audience SHOULD be the URL of the Authorization Server's
// Token Endpoint"; most OPs accept it at their introspection and
// revocation endpoints too. Some OPs want their issuer identifier
// instead (AudienceIssuer), and some want the URL of the endpoint being
// called (AudienceEndpoint). private_key_jwt assertions carry the kid of
// the signing key.
//
// # Choosing a method
//
// ChooseMethod picks the strongest method the OP lists in
// token_endpoint_auth_methods_supported when the caller names none;
// SigningAlg picks or checks client_token_endpoint_auth_signing_alg
// against token_endpoint_auth_signing_alg_values_supported. Credentials.
// Validate says exactly what is missing for the chosen method (for
// example: a pre-registered client without a secret is valid only with
// none or private_key_jwt).
//
// Secrets (the client secret, private keys, assertions) never appear in
// errors, in fmt output or in slog output of the types of this package.
package clientauth

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/oxdgo/oxd/internal/truncate"
)

// Method is a token_endpoint_auth_method (OIDC Core §9, RFC 7591 §2).
type Method string

// The supported methods.
const (
	MethodSecretBasic   Method = "client_secret_basic"
	MethodSecretPost    Method = "client_secret_post"
	MethodSecretJWT     Method = "client_secret_jwt"
	MethodPrivateKeyJWT Method = "private_key_jwt"
	MethodNone          Method = "none"
)

// DefaultMethod is the method of a client that names none: RFC 7591 §2
// and OIDC Dynamic Client Registration §2 make client_secret_basic the
// default, and it is what an OP without token_endpoint_auth_methods_supported
// supports (OIDC Discovery §3).
const DefaultMethod = MethodSecretBasic

// methods lists every supported method, strongest first as ChooseMethod
// ranks them, with none (a public client, never chosen automatically)
// last.
var methods = []Method{MethodPrivateKeyJWT, MethodSecretJWT, MethodSecretBasic, MethodSecretPost, MethodNone}

// Methods returns every supported method, strongest first as ChooseMethod
// ranks them, with none (a public client, never chosen automatically)
// last.
func Methods() []Method { return slices.Clone(methods) }

// strength is the order ChooseMethod prefers: an asymmetric key never
// leaves the client; an HMAC assertion keeps the secret off the wire and
// cannot be replayed; Basic keeps the secret out of bodies that
// frameworks log; post is the last resort.
var strength = []Method{MethodPrivateKeyJWT, MethodSecretJWT, MethodSecretBasic, MethodSecretPost}

// ParseMethod returns the Method named s. The empty string is an error:
// callers decide what "not given" means (ChooseMethod, DefaultMethod).
func ParseMethod(s string) (Method, error) {
	m := Method(strings.TrimSpace(s))
	if slices.Contains(methods, m) {
		return m, nil
	}
	return "", &ConfigError{
		Err:    ErrUnknownMethod,
		Field:  "client_token_endpoint_auth_method",
		Reason: echo(s) + " is not a supported method",
		Fix:    "pass one of " + joinMethods(methods),
	}
}

// usesSecret reports whether the method needs the client secret.
func (m Method) usesSecret() bool {
	return m == MethodSecretBasic || m == MethodSecretPost || m == MethodSecretJWT
}

// usesAssertion reports whether the method sends a client assertion.
func (m Method) usesAssertion() bool {
	return m == MethodSecretJWT || m == MethodPrivateKeyJWT
}

// ChooseMethod picks the method for a dynamic registration in which the
// caller named none. supported is the OP's
// token_endpoint_auth_methods_supported; nil (absent from discovery)
// means the OAuth default, client_secret_basic. Otherwise the strongest
// listed method wins: private_key_jwt > client_secret_jwt >
// client_secret_basic > client_secret_post. none is never chosen: a
// public client is a decision the caller states. An OP that lists none
// of these gives an error that says what it does list.
func ChooseMethod(supported []string) (Method, error) {
	if supported == nil {
		return DefaultMethod, nil
	}
	for _, m := range strength {
		if slices.Contains(supported, string(m)) {
			return m, nil
		}
	}
	fix := "register the client at the OP by hand and pass client_id with client_token_endpoint_auth_method"
	if slices.Contains(supported, string(MethodNone)) {
		fix = "the OP accepts only public clients here: pass client_token_endpoint_auth_method=none (PKCE is always used)"
	}
	return "", &ConfigError{
		Err:    ErrNoCommonMethod,
		Field:  "token_endpoint_auth_methods_supported",
		Reason: fmt.Sprintf("the OP lists %s, none of which this client supports (%s)", quoteList(supported), joinMethods(strength)),
		Fix:    fix,
	}
}

// CheckSupported reports whether the OP lists method m in supported
// (its token_endpoint_auth_methods_supported; nil means only
// client_secret_basic, per OIDC Discovery §3). It is the check for a
// method the caller named.
func CheckSupported(m Method, supported []string) error {
	list := supported
	if list == nil {
		list = []string{string(DefaultMethod)}
	}
	if slices.Contains(list, string(m)) {
		return nil
	}
	reason := fmt.Sprintf("the OP lists %s in token_endpoint_auth_methods_supported, not %s", quoteList(list), m)
	if supported == nil {
		reason = fmt.Sprintf("the OP does not list token_endpoint_auth_methods_supported, which means client_secret_basic only, not %s", m)
	}
	return &ConfigError{
		Err:    ErrMethodNotSupportedByOP,
		Field:  "client_token_endpoint_auth_method",
		Reason: reason,
		Fix:    "pass one of the methods the OP lists, or leave client_token_endpoint_auth_method empty to choose the strongest",
	}
}

// Signing algorithms of client assertions.
var (
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	// keyAlgs in order of preference when the caller names none: ES256
	// (small, fast keys), PS256, RS256 (the one every OP implements).
	keyAlgs = []string{"ES256", "PS256", "RS256"}
)

// SigningAlg returns the client_token_endpoint_auth_signing_alg to use
// with method m. requested is the caller's choice ("" for none);
// supported is the OP's token_endpoint_auth_signing_alg_values_supported
// (nil when absent). For client_secret_jwt the default is HS256 and
// HS384/HS512 are accepted; for private_key_jwt the default is the first
// of ES256, PS256, RS256 the OP lists (RS256 when it lists none), and
// those three are accepted. A requested algorithm must be one this
// package implements and, when the OP publishes its list, one the OP
// lists. For the other methods requested must be empty.
func SigningAlg(m Method, requested string, supported []string) (string, error) {
	requested = strings.TrimSpace(requested)
	var ours []string
	switch m {
	case MethodSecretJWT:
		ours = hmacAlgs
	case MethodPrivateKeyJWT:
		ours = keyAlgs
	default:
		if requested != "" {
			return "", &ConfigError{
				Err:    ErrAlgNotApplicable,
				Field:  "client_token_endpoint_auth_signing_alg",
				Reason: fmt.Sprintf("%s sends no assertion, so it has no signing algorithm", m),
				Fix:    "leave client_token_endpoint_auth_signing_alg empty, or use client_secret_jwt or private_key_jwt",
			}
		}
		return "", nil
	}
	common := ours
	if supported != nil {
		common = nil
		for _, a := range ours {
			if slices.Contains(supported, a) {
				common = append(common, a)
			}
		}
	}
	if requested != "" {
		if !slices.Contains(ours, requested) {
			return "", &ConfigError{
				Err:    ErrUnsupportedAlg,
				Field:  "client_token_endpoint_auth_signing_alg",
				Reason: fmt.Sprintf("%s is not supported with %s", echo(requested), m),
				Fix:    "pass one of " + strings.Join(ours, ", "),
			}
		}
		if !slices.Contains(common, requested) {
			return "", algNotAtOP(m, requested, supported, common)
		}
		return requested, nil
	}
	if supported == nil {
		if m == MethodSecretJWT {
			return "HS256", nil
		}
		return "RS256", nil
	}
	if m == MethodSecretJWT && slices.Contains(common, "HS256") {
		return "HS256", nil
	}
	if len(common) == 0 {
		return "", algNotAtOP(m, "", supported, nil)
	}
	return common[0], nil
}

func algNotAtOP(m Method, requested string, supported, common []string) error {
	reason := fmt.Sprintf("the OP lists %s in token_endpoint_auth_signing_alg_values_supported", quoteList(supported))
	if requested != "" {
		reason += ", not " + requested
	}
	fix := fmt.Sprintf("pass one of %s as client_token_endpoint_auth_signing_alg", strings.Join(common, ", "))
	if len(common) == 0 {
		fix = fmt.Sprintf("the OP signs no assertion algorithm this client implements for %s; choose another client_token_endpoint_auth_method", m)
	}
	return &ConfigError{Err: ErrAlgNotSupportedByOP, Field: "client_token_endpoint_auth_signing_alg", Reason: reason, Fix: fix}
}

func joinMethods(ms []Method) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

// quoteList renders a list the OP sent (bounded: it is untrusted input).
func quoteList(l []string) string { return QuoteList(l, 16, 64) }

// QuoteList renders a list of strings an OP sent for an error message,
// bounded because it is untrusted input: at most most entries, each cut to
// width bytes on a character boundary (the cut marked with "…").
func QuoteList(l []string, most, width int) string {
	if len(l) > most {
		l = l[:most]
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = truncate.String(s, width)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// echo quotes a value the caller passed in an error only when it looks
// like a method or algorithm name: a secret pasted into the wrong field
// must not reach a log through the error.
func echo(s string) string {
	if len(s) == 0 || len(s) > 20 {
		return "the value given"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "the value given"
		}
	}
	return strconv.Quote(s)
}
