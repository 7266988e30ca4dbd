package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
)

// Environment variables of the pre-registered clients' secrets. Secrets
// are read from the environment only: command-line arguments are visible
// to every user of the machine (ps, /proc).
const (
	envClientSecret      = "OXD_DEMO_CLIENT_SECRET"
	envSetupClientSecret = "OXD_DEMO_SETUP_CLIENT_SECRET"
)

// clientOptions are the client authentication options of the demo: a
// client pre-registered at the OP (an OP without dynamic registration, or
// one the administrator registers) and its token_endpoint_auth_method,
// and the protection (setup) client.
type clientOptions struct {
	ClientID, ClientAuthMethod           string
	ClientSecret                         oxdclient.Secret // OXD_DEMO_CLIENT_SECRET
	SetupClientID, SetupClientAuthMethod string
	SetupClientSecret                    oxdclient.Secret // OXD_DEMO_SETUP_CLIENT_SECRET
}

// readSecrets takes the secrets from the environment.
func (c *clientOptions) readSecrets() {
	c.ClientSecret = oxdclient.Secret(os.Getenv(envClientSecret))
	c.SetupClientSecret = oxdclient.Secret(os.Getenv(envSetupClientSecret))
}

// check says what is missing or contradictory, naming the flag or the
// variable (never a secret's value).
func (c *clientOptions) check() error {
	for _, m := range []struct{ flag, v string }{{"-client-auth-method", c.ClientAuthMethod}, {"-setup-client-auth-method", c.SetupClientAuthMethod}} {
		if m.v == "" {
			continue
		}
		if _, err := clientauth.ParseMethod(m.v); err != nil {
			return fmt.Errorf("%s: %w", m.flag, err)
		}
	}
	if c.ClientID != "" {
		switch clientauth.Method(c.ClientAuthMethod) {
		case clientauth.MethodNone, clientauth.MethodPrivateKeyJWT:
			if !c.ClientSecret.IsZero() {
				return fmt.Errorf("-client-auth-method %s uses no client secret: unset %s", c.ClientAuthMethod, envClientSecret)
			}
		default:
			if c.ClientSecret.IsZero() {
				return fmt.Errorf("-client-id with a secret-based method (-client-auth-method %s) needs the secret in %s", cmp(c.ClientAuthMethod, string(clientauth.DefaultMethod)), envClientSecret)
			}
		}
	} else if !c.ClientSecret.IsZero() {
		return fmt.Errorf("%s is set but -client-id is not", envClientSecret)
	}
	if c.SetupClientID != "" {
		if c.ClientID == "" {
			return errors.New("-setup-client-id needs -client-id (the OP has no registration endpoint for the other client)")
		}
		if c.SetupClientSecret.IsZero() {
			return fmt.Errorf("-setup-client-id needs the protection client's secret in %s (protection tokens come from the client_credentials grant)", envSetupClientSecret)
		}
	} else if !c.SetupClientSecret.IsZero() || c.SetupClientAuthMethod != "" {
		return fmt.Errorf("%s and -setup-client-auth-method need -setup-client-id", envSetupClientSecret)
	}
	return nil
}

// apply adds the pre-registered clients to setup_client's parameters.
func (c *clientOptions) apply(p *oxdclient.SetupClientParams) {
	p.ClientID, p.ClientSecret, p.ClientTokenEndpointAuthMethod = c.ClientID, c.ClientSecret, c.ClientAuthMethod
	p.SetupClientID, p.SetupClientSecret, p.SetupClientTokenEndpointAuthMethod = c.SetupClientID, c.SetupClientSecret, c.SetupClientAuthMethod
}

// protectionMethod is the authentication method of the setup client that
// setup_client answered with (setupClientID): the protection client's, or
// the one client's when it plays both roles; "" for a registered one.
// client_secret_basic is left "" (get_client_token's default).
func (c *clientOptions) protectionMethod(setupClientID string) string {
	m := ""
	switch {
	case c.SetupClientID != "":
		m = c.SetupClientAuthMethod
	case c.ClientID != "" && setupClientID == c.ClientID:
		m = c.ClientAuthMethod
	}
	if m == string(clientauth.MethodSecretBasic) {
		return ""
	}
	return m
}
