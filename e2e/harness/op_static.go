package harness

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/clientauth"
)

// Default URIs of the static profile's clients (nothing listens there:
// tests read the code from the redirect instead of following it).
const (
	DefaultStaticRedirectURI   = "http://127.0.0.1:9/callback"
	DefaultStaticPostLogoutURI = "http://127.0.0.1:9/logged-out"
)

// StaticScope is the scope every static client may request.
const StaticScope = "openid profile email offline_access oxd uma_protection uma_authorization"

// StaticClient is a pre-registered client of the provider's static profile
// (WithStaticProfile): one per token_endpoint_auth_method.
type StaticClient struct {
	Method clientauth.Method
	ID     string
	// Secret is the client secret (client_secret_basic, client_secret_post,
	// client_secret_jwt; 512 bits plus ":+/ %&=", which Basic must
	// form-urlencode); empty for private_key_jwt and none.
	Secret string
	// Keys holds the private key of a private_key_jwt client; the provider
	// knows its public JWKS (registered as the client's jwks).
	Keys                                 *clientauth.KeySet
	RedirectURIs, PostLogoutRedirectURIs []string
	GrantTypes                           []string
	Scope                                string
}

// Credentials returns the client's credentials for internal/clientauth at
// a provider whose token endpoint is tokenEndpoint (public clients are
// marked as using PKCE, which the provider requires of them).
func (c StaticClient) Credentials(tokenEndpoint string) clientauth.Credentials {
	return clientauth.Credentials{
		ClientID: c.ID, Method: c.Method, Secret: c.Secret, Keys: c.Keys,
		TokenEndpoint: tokenEndpoint, PKCE: c.Method == clientauth.MethodNone,
	}
}

// String leaves the secret out.
func (c StaticClient) String() string { return "static client " + c.ID + " (" + string(c.Method) + ")" }

type staticProfile struct {
	keyAlg                string
	jwksURI               string
	redirects, postLogout []string
	clients               []StaticClient
}

// StaticOption configures WithStaticProfile.
type StaticOption func(*staticProfile)

// WithStaticKeyAlg sets the algorithm of the private_key_jwt client's key
// (RS256, PS256 or ES256; default ES256).
func WithStaticKeyAlg(alg string) StaticOption { return func(p *staticProfile) { p.keyAlg = alg } }

// WithStaticJWKSURI registers the private_key_jwt client with jwks_uri uri
// instead of a key the harness generates (its Keys are then nil): the way
// an OP learns the public keys oxd generates and serves for a site. The
// provider fetches uri when it verifies a client assertion (and again
// when its copy is older than the answer's Cache-Control max-age, at
// least 60 s).
func WithStaticJWKSURI(uri string) StaticOption { return func(p *staticProfile) { p.jwksURI = uri } }

// WithStaticURIs sets the redirect URIs and post-logout redirect URIs of
// every static client (defaults DefaultStaticRedirectURI and
// DefaultStaticPostLogoutURI).
func WithStaticURIs(redirectURIs, postLogoutRedirectURIs []string) StaticOption {
	return func(p *staticProfile) { p.redirects, p.postLogout = redirectURIs, postLogoutRedirectURIs }
}

// WithStaticProfile starts the provider's "static" profile: no
// registration endpoint, and one pre-registered client per token endpoint
// authentication method (client_secret_basic, client_secret_post,
// client_secret_jwt, private_key_jwt, none), whose credentials the harness
// generates (StaticClients). Introspection, revocation, RP-initiated
// logout and RFC 9207 iss are on. The client list reaches the provider in
// a 0600 file in the test's temporary directory, not in its environment.
func WithStaticProfile(opts ...StaticOption) OPOption {
	p := &staticProfile{keyAlg: "ES256", redirects: []string{DefaultStaticRedirectURI}, postLogout: []string{DefaultStaticPostLogoutURI}}
	for _, o := range opts {
		o(p)
	}
	return func(c *opConfig) { c.static = p }
}

// StaticClients returns the static profile's clients (nil for the open
// profile), in the order basic, post, client_secret_jwt, private_key_jwt,
// none.
func (op *OIDCProvider) StaticClients() []StaticClient {
	if op.static == nil {
		return nil
	}
	return append([]StaticClient(nil), op.static.clients...)
}

// StaticClient returns the static client of a method.
func (op *OIDCProvider) StaticClient(t testing.TB, m clientauth.Method) StaticClient {
	t.Helper()
	for _, c := range op.StaticClients() {
		if c.Method == m {
			return c
		}
	}
	t.Fatalf("e2e: the provider has no static %s client (start it WithStaticProfile)", m)
	return StaticClient{}
}

// write generates the clients and writes their metadata for the provider;
// it returns the file's path.
func (p *staticProfile) write(t testing.TB) string {
	t.Helper()
	confidential := []string{"authorization_code", "refresh_token", "client_credentials", UMAGrantType}
	public := []string{"authorization_code", "refresh_token"}
	p.clients = nil
	for _, m := range []clientauth.Method{clientauth.MethodSecretBasic, clientauth.MethodSecretPost, clientauth.MethodSecretJWT, clientauth.MethodPrivateKeyJWT, clientauth.MethodNone} {
		c := StaticClient{
			Method: m, ID: "e2e-" + string(m), RedirectURIs: p.redirects, PostLogoutRedirectURIs: p.postLogout,
			GrantTypes: confidential, Scope: StaticScope,
		}
		switch m {
		case clientauth.MethodPrivateKeyJWT:
			if p.jwksURI != "" {
				break
			}
			ks, err := clientauth.GenerateKeySet(p.keyAlg, time.Now().Add(-time.Minute))
			if err != nil {
				t.Fatalf("e2e: static private_key_jwt client: %v", err)
			}
			c.Keys = ks
		case clientauth.MethodNone:
			c.GrantTypes = public
		default:
			var b [64]byte
			_, _ = rand.Read(b[:])
			// Characters that RFC 6749 §2.3.1's form-urlencoding must
			// carry through HTTP Basic intact.
			c.Secret = base64.RawURLEncoding.EncodeToString(b[:]) + ":+/ %&="
		}
		p.clients = append(p.clients, c)
	}
	meta := make([]map[string]any, 0, len(p.clients))
	for _, c := range p.clients {
		m := map[string]any{
			"client_id":                  c.ID,
			"token_endpoint_auth_method": string(c.Method),
			"redirect_uris":              c.RedirectURIs,
			"post_logout_redirect_uris":  c.PostLogoutRedirectURIs,
			"grant_types":                c.GrantTypes,
			"response_types":             []string{"code"},
			"scope":                      c.Scope,
		}
		if c.Secret != "" {
			m["client_secret"] = c.Secret
		}
		if c.Method == clientauth.MethodPrivateKeyJWT && p.jwksURI != "" {
			m["jwks_uri"] = p.jwksURI
		}
		if c.Keys != nil {
			jwks, err := c.Keys.PublicJWKS(time.Now())
			if err != nil {
				t.Fatalf("e2e: static client JWKS: %v", err)
			}
			m["jwks"] = json.RawMessage(jwks)
		}
		meta = append(meta, m)
	}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatalf("e2e: static clients: %v", err)
	}
	path := filepath.Join(t.TempDir(), "op-clients.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("e2e: static clients: %v", err)
	}
	return path
}
