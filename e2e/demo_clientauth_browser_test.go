package e2e_test

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdserver"
)

// jwksRelay stands for the OP administrator's step after registration:
// pointing the pre-registered client's jwks_uri at the oxd_id that
// setup_client answered (oidc-provider's static clients are fixed when it
// starts, before any oxd_id exists). Until then it answers 404; then it
// passes the HTTPS extension's answer on unchanged.
type jwksRelay struct {
	mu     sync.Mutex
	target string
	client *http.Client
	hits   int
}

func (j *jwksRelay) set(target string, c *http.Client) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.target, j.client = target, c
}

func (j *jwksRelay) fetched() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.hits
}

func (j *jwksRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.mu.Lock()
	target, c := j.target, j.client
	if target != "" {
		j.hits++
	}
	j.mu.Unlock()
	if target == "" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	res, err := c.Get(target)
	if err != nil {
		http.Error(w, "upstream unavailable", http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		http.Error(w, "upstream unavailable", http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		w.Header().Set(h, res.Header.Get(h))
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(b)
}

// TestDemoBrowserPreregisteredClients: the demo as a process, in Chromium,
// against the certified OP's static profile (no registration endpoint),
// with clients pre-registered at the OP and given to the demo by its
// flags (-client-id, -client-auth-method, -setup-client-id; the
// protection client's secret in OXD_DEMO_SETUP_CLIENT_SECRET): register
// on the settings page (setup_client), sign in through the OP's login and
// consent pages, the user-info page, sign out at the OP and back.
//
//   - private_key_jwt, with the engine behind the HTTPS extension (-oxd-https):
//     oxd generates the client's key at setup_client and the OP verifies
//     the code exchange's client assertion with the keys it fetches from
//     the extension's unauthenticated /client-jwks/<oxd_id> (its jwks_uri).
//   - none (a public client; the OP requires PKCE of it), with the engine
//     behind the socket listener (-oxd).
//
// The protection client is the OP's client_secret_basic client.
func TestDemoBrowserPreregisteredClients(t *testing.T) {
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}
	var redirects, postLogout []string
	for _, a := range addrs {
		redirects = append(redirects, "https://"+a+"/callback")
		postLogout = append(postLogout, "https://"+a+"/logged-out")
	}
	relay := &jwksRelay{}
	rs := httptest.NewServer(relay)
	t.Cleanup(rs.Close)
	op := harness.StartOIDCProvider(t, harness.WithStaticProfile(
		harness.WithStaticURIs(redirects, postLogout), harness.WithStaticJWKSURI(rs.URL+"/jwks")))
	setup := op.StaticClient(t, clientauth.MethodSecretBasic)
	env := []string{"OXD_DEMO_SETUP_CLIENT_SECRET=" + setup.Secret}
	bin := buildDemo(t)

	run := func(t *testing.T, addr string, m clientauth.Method, oxdArgs []string, oxdDesc string) (*demoApp, *pageDriver, opPages) {
		t.Helper()
		client := op.StaticClient(t, m)
		args := append([]string{"-addr", addr, "-op", op.Issuer(),
			"-client-id", client.ID, "-client-auth-method", string(m), "-setup-client-id", setup.ID}, oxdArgs...)
		demo := startDemoEnv(t, bin, env, args...)
		if want := "https://" + addr; demo.url != want {
			t.Fatalf("e2e: the demo serves %s, want %s", demo.url, want)
		}
		pages := certifiedOPPages(op)
		pages.oxd = oxdDesc
		return demo, &pageDriver{t: t, ctx: demoBrowser(t)}, pages
	}
	noSecretInOutput := func(t *testing.T, demo *demoApp) {
		t.Helper()
		if strings.Contains(demo.proc.Output(), setup.Secret) {
			t.Errorf("e2e: the demo's output contains the protection client's secret")
		}
	}

	t.Run("private_key_jwt", func(t *testing.T) {
		eng, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Logger: harness.DebugLogger(t, "oxd-engine")}) // the OP is plain http on loopback
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = eng.Close() })
		ext := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(eng, oxdserver.HTTPSConfig{Logger: harness.DebugLogger(t, "oxd-https")}))
		t.Cleanup(ext.Close)
		ca := filepath.Join(t.TempDir(), "oxd-https.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ext.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		demo, p, pages := run(t, addrs[0], clientauth.MethodPrivateKeyJWT, []string{"-oxd-https", ext.URL, "-oxd-https-ca", ca}, "oxd-https-extension")
		oxdID, _ := demoRegister(t, p, demo, pages)
		// The administrator's step: the client's jwks_uri is the
		// extension's route for this oxd_id.
		relay.set(ext.URL+oxdserver.ClientJWKSPathPrefix+oxdID, ext.Client())
		demoSignIn(t, p, demo, pages)
		if relay.fetched() == 0 {
			t.Error("e2e: the OP never fetched the client's keys from /client-jwks/")
		}
		demoSignOut(t, p, demo, pages)
		noSecretInOutput(t, demo)
	})

	t.Run("none", func(t *testing.T) {
		demo, p, pages := run(t, addrs[1], clientauth.MethodNone, []string{"-oxd", startSocketOxd(t)}, "oxd-server socket")
		demoRegister(t, p, demo, pages)
		demoSignIn(t, p, demo, pages)
		demoSignOut(t, p, demo, pages)
		noSecretInOutput(t, demo)
	})
}
