package oxdserver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// attackerOP is a minimal OP run by a tenant: it registers any client and
// records every token sent to its introspection endpoint.
type attackerOP struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
	n    int
}

func newAttackerOP(t *testing.T) *attackerOP {
	a := &attackerOP{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss := a.srv.URL
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			writeJSONAny(w, map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize",
				"token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks", "registration_endpoint": iss + "/register",
				"introspection_endpoint": iss + "/introspect"})
		case "/register":
			a.mu.Lock()
			a.n++
			id := "attacker-client-" + strings.Repeat("x", a.n)
			a.mu.Unlock()
			writeJSONAny(w, map[string]any{"client_id": id, "client_secret": "attacker-secret"})
		case "/introspect":
			_ = r.ParseForm()
			a.mu.Lock()
			a.seen = append(a.seen, r.PostForm.Get("token"))
			a.mu.Unlock()
			writeJSONAny(w, map[string]any{"active": false})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *attackerOP) sawToken(tok string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.seen {
		if s == tok {
			return true
		}
	}
	return false
}

func writeJSONAny(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// TestGetRPListDoesNotSendTokenToOtherTenantsOP: get_rp {"list":true}
// finds the caller's tenant by its protection token. It must not do so by
// introspecting the token at every OP some tenant has set up: a tenant
// that runs its own OP (setup_client with its op_host, open on loopback)
// would receive the other tenants' protection tokens and could then use
// them against their sites.
func TestGetRPListDoesNotSendTokenToOtherTenantsOP(t *testing.T) {
	srv := oxdtest.NewServer(t)
	l := startListeners(t, srv.Engine, nil)
	evil := newAttackerOP(t)
	victimSetup := srv.Setup.SetupClientOxdID
	// The attacker sets up tenants on its own OP until one sorts before
	// the victim's setup site (then its OP is asked first).
	for i := 0; ; i++ {
		out, oe := l.socketCall(t, oxdclient.CmdSetupClient, "", map[string]any{"op_host": evil.srv.URL,
			"authorization_redirect_uri": "https://attacker.example/cb"})
		require.Nil(t, oe, "%v", oe)
		if out["setup_client_oxd_id"].(string) < victimSetup || i >= 20 {
			// Sorted first (the old lookup asked its OP first), or the
			// victim's id is so small that none does: either way the
			// attacker's OP must receive nothing below.
			break
		}
	}
	tokA := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	list, oe := l.socketCall(t, oxdclient.CmdGetRP, tokA, map[string]any{"list": true, "op_host": srv.OP.Issuer()})
	require.Nil(t, oe, "%v", oe)
	require.Len(t, list["node"], 2, "the victim lists its own setup and regular sites")
	require.False(t, evil.sawToken(tokA), "the victim's protection token was sent to another tenant's OP")

	// Without op_host, several OPs: the server cannot tell which OP the
	// token belongs to without showing it to each, and refuses.
	_, oe = l.socketCall(t, oxdclient.CmdGetRP, tokA, map[string]any{"list": true})
	require.NotNil(t, oe)
	require.Equal(t, oxdclient.CodeBadRequest, oe.Code)
	require.False(t, evil.sawToken(tokA), "the victim's protection token was sent to another tenant's OP")
}
