package oxdclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

const (
	methodRedirect = "http://127.0.0.1:8080/callback"
	// A client_secret_jwt secret must be at least 32 bytes (HS256).
	methodSecret = "method-secret-0123456789abcdefghijklmnop"
)

// methodOP is a development OP without dynamic registration whose clients
// are bound to exactly their method (StrictClientAuthMethod): a protection
// client that authenticates with any other method is refused.
func methodOP(t *testing.T, clients ...oxdtest.StaticClient) *oxdtest.OP {
	t.Helper()
	for i := range clients {
		clients[i].RedirectURIs = []string{methodRedirect}
		clients[i].GrantTypes = []string{"authorization_code", "client_credentials"}
		if clients[i].TokenEndpointAuthMethod == "none" {
			clients[i].GrantTypes = []string{"authorization_code"}
		}
	}
	return oxdtest.NewTestOP(t, oxdtest.OPConfig{Clients: clients, DisableRegistration: true, StrictClientAuthMethod: true})
}

func methodParams(op *oxdtest.OP, clientID, method string) oxdclient.SetupClientParams {
	p := oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost: op.Issuer(), AuthorizationRedirectURI: methodRedirect, Scope: []string{"openid"},
		ClientID: clientID, ClientTokenEndpointAuthMethod: method,
	}}
	if method != "private_key_jwt" && method != "none" {
		p.ClientSecret = methodSecret
	}
	return p
}

// TestEnsureSiteRecordsProtectionMethod: EnsureSite keeps the protection
// client's token endpoint authentication method in the site file and uses
// it for protection tokens, on the first run and after a restart (a new
// client reading the file): with a protection client the OP accepts only
// with client_secret_post or client_secret_jwt, a protected command works
// both times. Files without the method keep client_secret_basic.
func TestEnsureSiteRecordsProtectionMethod(t *testing.T) {
	ctx := context.Background()
	for _, method := range []string{"client_secret_post", "client_secret_jwt"} {
		t.Run(method, func(t *testing.T) {
			op := methodOP(t,
				oxdtest.StaticClient{ClientID: "site", ClientSecret: methodSecret, TokenEndpointAuthMethod: "client_secret_basic"},
				oxdtest.StaticClient{ClientID: "protection", ClientSecret: methodSecret, TokenEndpointAuthMethod: method},
				oxdtest.StaticClient{ClientID: "both", ClientSecret: methodSecret, TokenEndpointAuthMethod: method})
			eng := protectedEngine(t, nil)
			for _, tc := range []struct {
				name string
				p    oxdclient.SetupClientParams
			}{
				{"separate protection client", func() oxdclient.SetupClientParams {
					p := methodParams(op, "site", "client_secret_basic")
					p.SetupClientID, p.SetupClientSecret, p.SetupClientTokenEndpointAuthMethod = "protection", methodSecret, method
					return p
				}()},
				{"one client for both roles", methodParams(op, "both", method)},
			} {
				t.Run(tc.name, func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "oxd-site.json")
					for run := 1; run <= 2; run++ {
						client := oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{})
						site, err := oxdclient.EnsureSite(ctx, client, path, tc.p)
						if err != nil {
							t.Fatalf("run %d: %v", run, err)
						}
						if site.ClientAuthenticationMethod != method {
							t.Fatalf("run %d: the site records %q, want %q", run, site.ClientAuthenticationMethod, method)
						}
						if _, err := client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: site.OxdID}); err != nil {
							t.Fatalf("run %d: a protected command: %v", run, err)
						}
					}
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					field := `"client_authentication_method": "` + method + `"`
					if !strings.Contains(string(b), field) {
						t.Fatalf("the file does not record the method:\n%s", b)
					}

					// A file written before the method was recorded: the
					// method comes from the parameters naming the same
					// setup client, and the file is completed.
					old := strings.Replace(string(b), field+",", "", 1)
					if old == string(b) {
						t.Fatal("the method was not removed from the file")
					}
					if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
						t.Fatal(err)
					}
					client := oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{})
					site, err := oxdclient.EnsureSite(ctx, client, path, tc.p)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: site.OxdID}); err != nil {
						t.Fatalf("an old site file: a protected command: %v", err)
					}
					if b, _ := os.ReadFile(path); !strings.Contains(string(b), field) {
						t.Errorf("the old file was not completed:\n%s", b)
					}
				})
			}
		})
	}
}

// TestProtectionClientWithoutSecretIsATypedError: a protection client that
// authenticates with private_key_jwt or none cannot obtain protection
// tokens (get_client_token proves possession of the client's secret; oxd
// signs assertions only for its own sites). EnsureSite refuses such a
// setup client before registering anything; protection credentials with
// such a method make every protected command fail with
// ErrProtectionNeedsSecret naming what to pass, without calling oxd; the
// server's get_client_token answer names it too. One such client playing
// both roles registers, without protection credentials (as before: an oxd
// that does not enforce protection tokens serves it).
func TestProtectionClientWithoutSecretIsATypedError(t *testing.T) {
	ctx := context.Background()
	op := methodOP(t,
		oxdtest.StaticClient{ClientID: "site", ClientSecret: methodSecret, TokenEndpointAuthMethod: "client_secret_basic"},
		oxdtest.StaticClient{ClientID: "public", TokenEndpointAuthMethod: "none"})
	eng := protectedEngine(t, nil)
	for _, method := range []string{"private_key_jwt", "none"} {
		p := methodParams(op, "site", "client_secret_basic")
		p.SetupClientID, p.SetupClientTokenEndpointAuthMethod = "protection", method
		path := filepath.Join(t.TempDir(), "oxd-site.json")
		_, err := oxdclient.EnsureSite(ctx, oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{}), path, p)
		if !errors.Is(err, oxdclient.ErrProtectionNeedsSecret) || !strings.Contains(err.Error(), "client_secret_basic") {
			t.Fatalf("setup client with %s: %v", method, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("setup client with %s: a site file was written", method)
		}
	}

	site, err := oxdclient.EnsureSite(ctx, oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{}),
		filepath.Join(t.TempDir(), "oxd-site.json"), methodParams(op, "public", "none"))
	if err != nil {
		t.Fatal(err)
	}
	if site.ClientAuthenticationMethod != "none" || site.ProtectionCredentials() != nil {
		t.Fatalf("one public client for both roles: method %q, credentials %v", site.ClientAuthenticationMethod, site.ProtectionCredentials())
	}
	for _, pc := range []oxdclient.ProtectionCredentials{
		{ClientID: "public", OPHost: op.Issuer(), AuthenticationMethod: "none"},
		{ClientID: "site", ClientSecret: methodSecret, OPHost: op.Issuer(), AuthenticationMethod: "private_key_jwt"},
		{ClientID: "site", OPHost: op.Issuer()},
	} {
		before := op.Calls(oxdtest.EndpointToken)
		client := oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{Protection: &pc})
		_, err = client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: site.OxdID})
		if !errors.Is(err, oxdclient.ErrProtectionNeedsSecret) || !strings.Contains(err.Error(), "setup_client_secret") {
			t.Fatalf("a protected command with %s protection credentials: %v", pc.AuthenticationMethod, err)
		}
		if n := op.Calls(oxdtest.EndpointToken); n != before {
			t.Errorf("%s protection credentials reached the OP's token endpoint", pc.AuthenticationMethod)
		}
	}

	_, err = oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{}).GetClientToken(ctx, oxdclient.GetClientTokenParams{OPHost: op.Issuer(), ClientID: "site",
		AuthenticationMethod: "private_key_jwt", Algorithm: "RS256", KeyID: "k"})
	var oe *oxdclient.Error
	if !errors.As(err, &oe) || oe.Code != oxdclient.CodeInvalidAlgorithm || !strings.Contains(oe.Description, "client_secret_basic") {
		t.Fatalf("get_client_token with private_key_jwt: %v", err)
	}
}
