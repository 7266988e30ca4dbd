package clientauth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertionType is the client_assertion_type of RFC 7523 §2.2.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionTTL is the longest lifetime of a client assertion, and its
// default.
const MaxAssertionTTL = 60 * time.Second

// AudienceMode says what a client assertion's aud is.
type AudienceMode int

const (
	// AudienceTokenEndpoint (the default): the OP's token endpoint URL
	// (Credentials.TokenEndpoint), whichever endpoint is called (RFC 7523
	// §3, OIDC Core §9).
	AudienceTokenEndpoint AudienceMode = iota
	// AudienceIssuer: the OP's issuer identifier (Credentials.Issuer), for
	// OPs whose metadata or documentation asks for it.
	AudienceIssuer
	// AudienceEndpoint: the URL of the endpoint the request goes to.
	AudienceEndpoint
)

// Credentials are a client's credentials and how to present them. The
// zero values of the optional fields are the secure defaults.
//
// Credentials print without their secret and keys (String, Format,
// LogValue).
type Credentials struct {
	// ClientID is the client_id (required).
	ClientID string
	// Method is the token_endpoint_auth_method ("" means DefaultMethod).
	Method Method
	// Secret is the client_secret: required for client_secret_basic,
	// client_secret_post and client_secret_jwt; refused for none;
	// ignored for private_key_jwt.
	Secret string
	// Keys sign private_key_jwt assertions (required for it).
	Keys *KeySet
	// SigningAlg is the assertion algorithm. For client_secret_jwt ""
	// means HS256 (HS384 and HS512 are accepted); for private_key_jwt ""
	// means the algorithm of the key set's signing key, and a value must
	// equal it.
	SigningAlg string
	// Audience selects the aud of assertions (default
	// AudienceTokenEndpoint).
	Audience AudienceMode
	// TokenEndpoint is the OP's token_endpoint (discovery); needed by the
	// assertion methods with AudienceTokenEndpoint.
	TokenEndpoint string
	// Issuer is the OP's issuer; needed with AudienceIssuer.
	Issuer string
	// PKCE states that the caller sends PKCE (S256) on every code flow of
	// this client; a public client (none) is refused without it.
	PKCE bool
	// AssertionTTL is the lifetime of assertions, in (0, MaxAssertionTTL]
	// (0 means MaxAssertionTTL).
	AssertionTTL time.Duration
	// Now is the clock (nil means time.Now).
	Now func() time.Time
}

func (c Credentials) method() Method {
	if c.Method == "" {
		return DefaultMethod
	}
	return c.Method
}

func (c Credentials) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Validate checks that the credentials can authenticate with their
// method. The *ConfigError it returns names the field and says what to
// pass; in particular a client without a secret is valid only with
// none (and PKCE) or private_key_jwt (and a key set).
func (c Credentials) Validate() error {
	m := c.method()
	if _, err := ParseMethod(string(m)); err != nil {
		return err
	}
	if strings.TrimSpace(c.ClientID) == "" {
		return &ConfigError{Err: ErrMissingClientID, Field: "client_id", Reason: "no client_id", Fix: "pass the client_id the OP assigned to the client"}
	}
	if m.usesSecret() && c.Secret == "" {
		return &ConfigError{Err: ErrMissingSecret, Field: "client_secret",
			Reason: fmt.Sprintf("%s authenticates with the client secret and none was given", m),
			Fix:    "pass client_secret, or, for a client without a secret, client_token_endpoint_auth_method=none (public client, PKCE) or private_key_jwt (with a key set whose public keys the OP knows)"}
	}
	switch m {
	case MethodNone:
		if c.Secret != "" {
			return &ConfigError{Err: ErrSecretNotAllowed, Field: "client_secret",
				Reason: "client_token_endpoint_auth_method is none (a public client) but a client_secret was given",
				Fix:    "drop client_secret, or pass the method the client is registered with (client_secret_basic, client_secret_post or client_secret_jwt)"}
		}
		if !c.PKCE {
			return &ConfigError{Err: ErrPKCERequired, Field: "client_token_endpoint_auth_method",
				Reason: "a public client has no credentials, so its code flows must be bound by PKCE",
				Fix:    "enable PKCE (S256) for this client, or use a confidential method"}
		}
	case MethodSecretJWT:
		alg, err := c.hmacAlg()
		if err != nil {
			return err
		}
		if need := hmacMinLen(alg); len(c.Secret) < need {
			return &ConfigError{Err: ErrWeakSecret, Field: "client_secret",
				Reason: fmt.Sprintf("%s needs a client secret of at least %d bytes (RFC 7518 §3.2)", alg, need),
				Fix:    "ask the OP for a longer secret, or use client_secret_basic"}
		}
	case MethodPrivateKeyJWT:
		if _, err := c.keyAlg(c.now()); err != nil {
			return err
		}
	default:
		if c.SigningAlg != "" {
			_, err := SigningAlg(m, c.SigningAlg, nil)
			return err
		}
	}
	if m.usesAssertion() {
		if c.AssertionTTL < 0 || c.AssertionTTL > MaxAssertionTTL {
			return &ConfigError{Err: ErrBadAssertionTTL, Field: "AssertionTTL",
				Reason: fmt.Sprintf("%s is outside (0, %s]", c.AssertionTTL, MaxAssertionTTL), Fix: "use 0 for the default of 60s"}
		}
		switch c.Audience {
		case AudienceTokenEndpoint:
			if !absHTTP(c.TokenEndpoint) {
				return &ConfigError{Err: ErrMissingAudience, Field: "token_endpoint",
					Reason: "client assertions are addressed to the token endpoint and none (or no absolute URL) was given",
					Fix:    "pass the token_endpoint of the OP's discovery document"}
			}
		case AudienceIssuer:
			if !absHTTP(c.Issuer) {
				return &ConfigError{Err: ErrMissingAudience, Field: "issuer",
					Reason: "client assertions are addressed to the issuer and none (or no absolute URL) was given",
					Fix:    "pass the issuer of the OP's discovery document"}
			}
		case AudienceEndpoint:
		default:
			return &ConfigError{Err: ErrMissingAudience, Field: "Audience", Reason: "unknown audience mode"}
		}
	}
	return nil
}

func (c Credentials) hmacAlg() (string, error) {
	if c.SigningAlg == "" {
		return "HS256", nil
	}
	return SigningAlg(MethodSecretJWT, c.SigningAlg, nil)
}

func hmacMinLen(alg string) int {
	switch alg {
	case "HS384":
		return 48
	case "HS512":
		return 64
	}
	return 32
}

// keyAlg returns the algorithm of the key that signs at now, checked
// against SigningAlg.
func (c Credentials) keyAlg(now time.Time) (string, error) {
	if c.Keys == nil || c.Keys.signingIndex(now) < 0 {
		return "", &ConfigError{Err: ErrMissingKeys, Field: "client_jwks",
			Reason: "private_key_jwt signs assertions with the client's private key and no key (or none signing yet) was given",
			Fix:    "generate a key set (RS256, PS256 or ES256) and register its public JWKS as the client's jwks or jwks_uri"}
	}
	_, alg := c.Keys.SigningKID(now)
	if c.SigningAlg != "" && c.SigningAlg != alg {
		return "", &ConfigError{Err: ErrUnsupportedAlg, Field: "client_token_endpoint_auth_signing_alg",
			Reason: fmt.Sprintf("the signing key is %s, not %s", alg, echo(c.SigningAlg)),
			Fix:    "pass the algorithm of the key set, or rotate to a key of the wanted algorithm"}
	}
	return alg, nil
}

func absHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// Apply adds client authentication to a request to endpoint (the URL the
// request is sent to: token, introspection, revocation, …): an
// Authorization header in h or parameters in form, per c.Method. The
// caller encodes form as the body afterwards. It refuses a request that
// already carries client authentication (ErrAlreadyAuthenticated) and
// invalid credentials (Validate). Each assertion is new (fresh jti).
//
//   - client_secret_basic: Authorization: Basic base64(urlenc(id) ":" urlenc(secret))
//   - client_secret_post:  client_id, client_secret
//   - client_secret_jwt, private_key_jwt: client_id, client_assertion_type, client_assertion
//   - none:                client_id
func Apply(h http.Header, form url.Values, endpoint string, c Credentials) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if h == nil || form == nil {
		return fmt.Errorf("clientauth: Apply needs a header and a form (use url.Values{} for an empty body)")
	}
	if h.Get("Authorization") != "" || form.Has("client_secret") || form.Has("client_assertion") || form.Has("client_assertion_type") {
		return ErrAlreadyAuthenticated
	}
	if id := form.Get("client_id"); id != "" && id != c.ClientID {
		return fmt.Errorf("%w: the form names another client_id", ErrAlreadyAuthenticated)
	}
	switch m := c.method(); m {
	case MethodSecretBasic:
		form.Del("client_id")
		h.Set("Authorization", BasicAuthorization(c.ClientID, c.Secret))
	case MethodSecretPost:
		form.Set("client_id", c.ClientID)
		form.Set("client_secret", c.Secret)
	case MethodNone:
		form.Set("client_id", c.ClientID)
	case MethodSecretJWT, MethodPrivateKeyJWT:
		a, err := c.Assertion(endpoint)
		if err != nil {
			return err
		}
		form.Set("client_id", c.ClientID)
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", a)
	}
	return nil
}

// BasicAuthorization is the Authorization header value of
// client_secret_basic: RFC 6749 §2.3.1 form-urlencodes client_id and
// secret (application/x-www-form-urlencoded, Appendix B) before joining
// them with ':' and base64-encoding.
func BasicAuthorization(clientID, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID)+":"+url.QueryEscape(secret)))
}

// Assertion returns a fresh client assertion (RFC 7523 §3) for a request
// to endpoint, for client_secret_jwt or private_key_jwt credentials.
func (c Credentials) Assertion(endpoint string) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	now := c.now()
	aud := c.TokenEndpoint
	switch c.Audience {
	case AudienceIssuer:
		aud = c.Issuer
	case AudienceEndpoint:
		if !absHTTP(endpoint) {
			return "", &ConfigError{Err: ErrMissingAudience, Field: "endpoint", Reason: "the endpoint URL is not absolute"}
		}
		aud = endpoint
	}
	var key jose.SigningKey
	switch c.method() {
	case MethodSecretJWT:
		alg, _ := c.hmacAlg()
		key = jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: []byte(c.Secret)}
	case MethodPrivateKeyJWT:
		i := c.Keys.signingIndex(now)
		k := c.Keys.keys[i]
		key = jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(k.alg)}}
	default:
		return "", &ConfigError{Err: ErrAlgNotApplicable, Field: "client_token_endpoint_auth_method",
			Reason: fmt.Sprintf("%s sends no client assertion", c.method())}
	}
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		// go-jose's messages name algorithms and sizes, not key bytes;
		// still, only the sentinel is returned.
		return "", ErrSign
	}
	ttl := c.AssertionTTL
	if ttl == 0 {
		ttl = MaxAssertionTTL
	}
	claims := jwt.Claims{
		Issuer:   c.ClientID,
		Subject:  c.ClientID,
		Audience: jwt.Audience{aud},
		ID:       newJTI(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", ErrSign
	}
	return s, nil
}

// newJTI returns 256 bits from crypto/rand, base64url: unique without
// coordination between replicas.
func newJTI() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// String shows the client_id, method and which credentials are set,
// never the secret or keys.
func (c Credentials) String() string {
	secret := "no"
	if c.Secret != "" {
		secret = "[redacted]"
	}
	return fmt.Sprintf("clientauth.Credentials{client_id=%q method=%s secret=%s keys=%s}", c.ClientID, c.method(), secret, c.Keys.String())
}

// GoString is String.
func (c Credentials) GoString() string { return c.String() }

// Format prints String for every verb.
func (c Credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue is String, for log/slog.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON refuses: Credentials are built per request from stored
// fields and are not a storage form (this keeps the secret out of JSON
// logs and dumps).
func (c Credentials) MarshalJSON() ([]byte, error) {
	return nil, fmt.Errorf("clientauth: Credentials are not serialised (they hold a secret)")
}

// RegistrationMetadata returns the client metadata (RFC 7591 §2, OIDC
// Dynamic Client Registration §2) that registers the method of c at an
// OP, for a registration request or an RFC 7592 update:
// token_endpoint_auth_method; token_endpoint_auth_signing_alg for the
// assertion methods; and for private_key_jwt either jwks_uri (when
// jwksURI is set: the caller serves KeySet.PublicJWKS there) or jwks (the
// key set's public keys published at now). c.ClientID may still be empty
// (dynamic registration assigns it).
func RegistrationMetadata(c Credentials, jwksURI string, now time.Time) (map[string]any, error) {
	m := c.method()
	if _, err := ParseMethod(string(m)); err != nil {
		return nil, err
	}
	out := map[string]any{"token_endpoint_auth_method": string(m)}
	switch m {
	case MethodSecretJWT:
		alg, err := c.hmacAlg()
		if err != nil {
			return nil, err
		}
		out["token_endpoint_auth_signing_alg"] = alg
	case MethodPrivateKeyJWT:
		alg, err := c.keyAlg(now)
		if err != nil {
			return nil, err
		}
		out["token_endpoint_auth_signing_alg"] = alg
		if jwksURI != "" {
			if !absHTTP(jwksURI) {
				return nil, &ConfigError{Err: ErrMissingKeys, Field: "client_jwks_uri", Reason: "not an absolute http(s) URL", Fix: "pass the URL where the key set's public JWKS is served"}
			}
			out["jwks_uri"] = jwksURI
		} else {
			out["jwks"] = c.Keys.Public(now)
		}
	case MethodNone:
		if !c.PKCE {
			return nil, &ConfigError{Err: ErrPKCERequired, Field: "client_token_endpoint_auth_method",
				Reason: "a public client has no credentials, so its code flows must be bound by PKCE", Fix: "enable PKCE (S256) for this client, or use a confidential method"}
		}
	}
	return out, nil
}
