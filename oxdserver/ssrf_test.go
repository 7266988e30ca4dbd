package oxdserver_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

// TestSSRFIntoLoopback (server hardening, defect 4): through the socket
// listener of an engine with the default configuration, a caller cannot
// make the engine talk plain http to a loopback service, follow a
// discovery document to another origin, read an OP's error body, tell open
// ports from closed ones, or reach an OP off the allow-list.
func TestSSRFIntoLoopback(t *testing.T) {
	// An internal loopback service that must never be reached.
	var internalHits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		_, _ = w.Write([]byte(`{"access_token":"INTERNAL-SECRET-DATA","error":"x"}`))
	}))
	defer internal.Close()

	// An attacker's https OP: its discovery sends token requests to the
	// internal service, or (same origin) answers with a large error body.
	var attacker *httptest.Server
	attacker = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss := attacker.URL + strings.TrimSuffix(strings.TrimSuffix(r.URL.Path, "/.well-known/openid-configuration"), "/")
		switch {
		case strings.HasPrefix(r.URL.Path, "/cross/.well-known/"):
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize",
				"token_endpoint": internal.URL + "/admin", "jwks_uri": iss + "/jwks"})
		case strings.HasPrefix(r.URL.Path, "/same/.well-known/"):
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize",
				"token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks"})
		case r.URL.Path == "/same/token":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"bad \"client\"\u0001` + strings.Repeat("d", 600) +
				`","internal":"INTERNAL-SECRET-DATA"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer attacker.Close()

	// A closed loopback port and an open one that does not speak TLS/HTTP.
	closedLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closedLn.Addr().String()
	closedLn.Close()
	openLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer openLn.Close()
	go func() {
		for {
			c, err := openLn.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			_ = c.Close()
		}
	}()

	logs := &syncBuffer{}
	e, err := oxdserver.New(oxdserver.Config{HTTPClient: attacker.Client(), Logger: newTestLogger(logs)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	l := startListeners(t, e, newTestLogger(logs))

	token := func(opHost string) *oxdclient.Error {
		_, oe := l.socketCall(t, oxdclient.CmdGetClientToken, "", map[string]any{"op_host": opHost,
			"client_id": "c", "client_secret": "s", "scope": []string{"oxd"}})
		require.NotNil(t, oe, "get_client_token at %s succeeded", opHost)
		return oe
	}

	// Plain http to loopback: refused before any request.
	oe := token(internal.URL)
	assert.Contains(t, oe.Description, "plain http")
	// A discovery document that points the token endpoint elsewhere.
	oe = token(attacker.URL + "/cross")
	assert.Equal(t, oxdclient.CodeNoConnectDiscoveryResponse, oe.Code)
	assert.Zero(t, internalHits.Load(), "the internal service was reached")

	// An OP error: only error and error_description, sanitized and cut.
	oe = token(attacker.URL + "/same")
	assert.Equal(t, "http_status_400", oe.Code)
	assert.NotContains(t, oe.Description, "INTERNAL-SECRET-DATA")
	var desc map[string]string
	require.NoError(t, json.Unmarshal([]byte(oe.Description), &desc), oe.Description)
	assert.Equal(t, "invalid_client", desc["error"])
	assert.True(t, strings.HasPrefix(desc["error_description"], "bad ?client??ddd"), desc["error_description"])
	assert.LessOrEqual(t, len(desc["error_description"]), 256)
	assert.Len(t, desc, 2)

	// Closed port, open non-HTTP port, and a 404: one answer, apart from
	// the URL tried, which the caller's own op_host names.
	tried := func(opHost string) string { return opHost + "/.well-known/openid-configuration" }
	a, b := token("https://"+closedAddr), token("https://"+openLn.Addr().String())
	c := token(attacker.URL + "/nothing-here")
	ad := strings.Replace(a.Description, tried("https://"+closedAddr), "URL", 1)
	bd := strings.Replace(b.Description, tried("https://"+openLn.Addr().String()), "URL", 1)
	cd := strings.Replace(c.Description, tried(attacker.URL+"/nothing-here"), "URL", 1)
	assert.Contains(t, ad, " from URL (unreachable, or not a valid discovery document)")
	assert.Equal(t, ad, bd)
	assert.Equal(t, ad, cd)
	assert.Equal(t, a.Code, b.Code)

	// An allow-list keeps every other OP out, without a request.
	var hits atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer other.Close()
	strict, err := oxdserver.New(oxdserver.Config{HTTPClient: other.Client(), OPHosts: []string{"op.example.test"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = strict.Close() })
	ls := startListeners(t, strict, nil)
	_, oe = ls.socketCall(t, oxdclient.CmdGetClientToken, "", map[string]any{"op_host": other.URL, "client_id": "c", "client_secret": "s"})
	require.NotNil(t, oe)
	assert.Contains(t, oe.Description, "allow-list")
	_, oe = ls.socketCall(t, oxdclient.CmdSetupClient, "", map[string]any{"op_host": other.URL, "authorization_redirect_uri": "https://rp.example/cb"})
	require.NotNil(t, oe)
	assert.Contains(t, oe.Description, "allow-list")
	assert.Zero(t, hits.Load())
	_, err = oxdserver.New(oxdserver.Config{OPHosts: []string{"https://op.example/path"}})
	assert.Error(t, err, "an allow-list entry with a path is refused")

	assert.NotContains(t, logs.String(), "INTERNAL-SECRET-DATA")
}
