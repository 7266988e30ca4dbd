package oxdserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
)

// siteMethod is the site's token_endpoint_auth_method (sites stored before
// it was recorded authenticate with client_secret_basic).
func siteMethod(s *Site) clientauth.Method {
	if m := strings.TrimSpace(s.TokenEndpointAuthMethod); m != "" {
		return clientauth.Method(m)
	}
	return clientauth.DefaultMethod
}

// creds returns the credentials the engine presents for site. tokenEP is
// the token endpoint that is the audience of client assertions: the OP's
// for OpenID Connect calls (also at its introspection and revocation
// endpoints), the AS's for the UMA token endpoint. PKCE is true: the
// engine sends S256 PKCE on every authorization request.
func (e *Engine) creds(site *Site, disc *oidcConfig, tokenEP string) *clientauth.Credentials {
	c := &clientauth.Credentials{
		ClientID:      site.ClientID,
		Method:        siteMethod(site),
		Secret:        site.ClientSecret,
		Keys:          site.ClientKeys,
		SigningAlg:    site.TokenEndpointAuthSigningAlg,
		TokenEndpoint: tokenEP,
		PKCE:          true,
		// Client keys and assertions follow the wall clock (Now nil),
		// which the OP checks against its own: Config.Now moves the
		// engine's states and token lifetimes, not the OP's time.
	}
	if c.Method == clientauth.MethodPrivateKeyJWT {
		c.Secret = "" // not used; keeps it out of every request
	}
	if disc != nil {
		c.Issuer = disc.Issuer
	}
	return c
}

// authConfigError maps a client authentication failure of the engine's
// own configuration to its answer: a *clientauth.ConfigError is an
// invalid_request whose description says which parameter to fix (it
// never quotes a secret); anything else is an internal error.
func authConfigError(err error) error {
	var ce *clientauth.ConfigError
	if errors.As(err, &ce) {
		return oxdErr(oxdclient.CodeInvalidRequest, "Client authentication: "+ce.Error())
	}
	return fmt.Errorf("client authentication: %w", err)
}

// ErrNoClientKeys is returned by ClientJWKS for a site whose client does
// not authenticate with private_key_jwt.
var ErrNoClientKeys = errors.New("oxdserver: the site's client has no key set (not private_key_jwt)")

// ClientJWKS returns the public JWKS ({"keys":[…]}) of the key set of a
// private_key_jwt site: what the OP must know to verify the engine's
// client assertions. Serve it at the site's client_jwks_uri, or register
// it as the client's jwks at the OP for a pre-registered client. Keys
// waiting to sign after a rotation and superseded keys still in their
// grace period are included; private keys never are. ErrNotFound for an
// unknown oxd_id.
func (e *Engine) ClientJWKS(ctx context.Context, oxdID string) ([]byte, error) {
	s, err := e.store.GetSite(ctx, oxdID)
	if err != nil {
		return nil, err
	}
	if s.ClientKeys == nil {
		return nil, ErrNoClientKeys
	}
	return s.ClientKeys.PublicJWKS(time.Now())
}

// revokeToken answers revoke_token, an extension (not in oxd 3.1.4): RFC
// 7009 revocation of a token of the site's client at the OP's
// revocation_endpoint, authenticated with the site's method.
func (e *Engine) revokeToken(ctx context.Context, c *call, p *oxdclient.RevokeTokenParams) (any, error) {
	site := c.site
	token := strings.TrimSpace(p.Token.Reveal())
	if token == "" {
		return nil, badRequest("'token' is empty or not specified.")
	}
	hint := strings.TrimSpace(p.TokenTypeHint)
	if hint != "" && hint != "access_token" && hint != "refresh_token" {
		return nil, badRequest("'token_type_hint' must be access_token or refresh_token.")
	}
	disc, err := e.oidc(ctx, site.OPHost, site.OPDiscoveryPath)
	if err != nil {
		return nil, err
	}
	if !absURL(disc.RevocationEndpoint) {
		return nil, oxdErr(oxdclient.CodeInvalidRequest, "OP does not provide revocation_endpoint at /.well-known/openid-configuration.")
	}
	creds := e.creds(site, disc, disc.TokenEndpoint)
	if methods := disc.RevocationEndpointAuthMethodsSupported; methods != nil {
		if err := clientauth.CheckSupported(creds.Method, methods); err != nil {
			return nil, authConfigError(err)
		}
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	if _, _, err := e.send(ctx, opRequest{endpoint: "revocation", method: http.MethodPost, url: disc.RevocationEndpoint, form: form, auth: creds}); err != nil {
		return nil, err
	}
	return oxdIDAnswer{OxdID: nstr(site.OxdID)}, nil
}
