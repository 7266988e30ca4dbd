package oxdclient_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

func devSiteParams(op *oxdtest.OP) oxdclient.SetupClientParams {
	return oxdclient.SetupClientParams{SiteParams: oxdclient.SiteParams{
		OPHost:                   op.Issuer(),
		AuthorizationRedirectURI: "http://127.0.0.1:8080/callback",
		PostLogoutRedirectURI:    "http://127.0.0.1:8080/logged-out",
		Scope:                    []string{"openid", "profile"},
	}}
}

func protectedEngine(t *testing.T, store oxdserver.Store) *oxdserver.Engine {
	t.Helper()
	e, err := oxdserver.New(oxdserver.Config{Store: store, InsecureAllowLoopbackHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// TestEnsureSiteFirstRunWithProtection: against the engine with protection
// tokens enforced and the development OP, a client created without any
// credentials works from the first run on: EnsureSite registers the site
// and installs its setup client's credentials, and a PAT-protected command
// succeeds. The next start (a new client, the same engine and file) reads
// the file and works the same way.
func TestEnsureSiteFirstRunWithProtection(t *testing.T) {
	ctx := context.Background()
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	eng := protectedEngine(t, nil)
	path := filepath.Join(t.TempDir(), "oxd-site.json")

	// Without credentials a protected command fails: protection is on.
	bare := oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{})
	first, err := oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{}).SetupClient(ctx, devSiteParams(op))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: first.OxdID}); !oxdclient.IsProtectionTokenError(err) {
		t.Fatalf("protection is not enforced: %v", err)
	}

	for run := 1; run <= 2; run++ {
		client := oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{})
		site, err := oxdclient.EnsureSite(ctx, client, path, devSiteParams(op))
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		au, err := client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: site.OxdID})
		if err != nil || !strings.HasPrefix(au.AuthorizationURL, op.Issuer()) {
			t.Fatalf("run %d: %v", run, err)
		}
	}
}

// TestEnsureSiteAfterDevOPRestart: the development OP came back on another
// port (op_host differs) or oxd's store was reset (oxd_id unknown): the
// next start is told exactly what to do, and with ReRegisterOnMismatch
// registers again and works.
func TestEnsureSiteAfterDevOPRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oxd-site.json")
	op1 := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	eng := protectedEngine(t, nil)
	if _, err := oxdclient.EnsureSite(ctx, oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{}), path, devSiteParams(op1)); err != nil {
		t.Fatal(err)
	}
	op1.Close()
	op2 := oxdtest.NewTestOP(t, oxdtest.OPConfig{})

	// Same oxd, new OP address.
	_, err := oxdclient.EnsureSite(ctx, oxdclient.New(eng.ProtectedTransport(), oxdclient.Config{}), path, devSiteParams(op2))
	var me *oxdclient.SiteMismatchError
	if !errors.As(err, &me) || me.Field != "op_host" || !strings.Contains(err.Error(), op1.Issuer()) ||
		!strings.Contains(err.Error(), op2.Issuer()) || !strings.Contains(err.Error(), "delete "+path) {
		t.Fatalf("%v", err)
	}

	// A new oxd whose store does not have the site (same OP address in the
	// parameters as in the file).
	eng2 := protectedEngine(t, nil)
	_, err = oxdclient.EnsureSite(ctx, oxdclient.New(eng2.ProtectedTransport(), oxdclient.Config{}), path, devSiteParams(op1))
	if !errors.As(err, &me) || me.Field != "oxd_id" || !oxdclient.IsInvalidOxdID(err) || !strings.Contains(err.Error(), "delete "+path) {
		t.Fatalf("%v", err)
	}

	// Told to, it registers again at the new OP and works.
	client := oxdclient.New(eng2.ProtectedTransport(), oxdclient.Config{})
	site, err := oxdclient.EnsureSite(ctx, client, path, devSiteParams(op2), oxdclient.ReRegisterOnMismatch())
	if err != nil || site.OPHost != op2.Issuer() {
		t.Fatalf("%v %+v", err, site)
	}
	if _, err := client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: site.OxdID}); err != nil {
		t.Fatal(err)
	}
	// And the replaced file is reused on the next start.
	again, err := oxdclient.EnsureSite(ctx, oxdclient.New(eng2.ProtectedTransport(), oxdclient.Config{}), path, devSiteParams(op2))
	if err != nil || again.OxdID != site.OxdID {
		t.Fatalf("%v", err)
	}

	// Another redirect URI than the one registered (e.g. the app moved
	// from 127.0.0.1:8080 to localhost:8081).
	moved := devSiteParams(op2)
	moved.AuthorizationRedirectURI = "http://localhost:8081/callback"
	_, err = oxdclient.EnsureSite(ctx, oxdclient.New(eng2.ProtectedTransport(), oxdclient.Config{}), path, moved)
	if !errors.As(err, &me) || me.Field != "authorization_redirect_uri" {
		t.Fatalf("%v", err)
	}
}
