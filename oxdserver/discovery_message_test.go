package oxdserver_test

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

// TestDiscoveryErrorNamesTheURL: a failed discovery names the URL tried
// (so that a newcomer sees which OP address is wrong, for example a
// development OP that came back on another port) and tells to check
// op_host; the cause stays generic, and neither credentials nor a query
// from op_host are repeated.
func TestDiscoveryErrorNamesTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := ln.Addr().String()
	require.NoError(t, ln.Close())

	e, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	for _, tc := range []struct{ opHost, want string }{
		{"http://" + gone, "http://" + gone + "/.well-known/openid-configuration"},
		{"http://" + gone + "/", "http://" + gone + "/.well-known/openid-configuration"},
		{"http://user:hunter2@" + gone + "/realm", "http://" + gone + "/realm/.well-known/openid-configuration"},
		{"http://" + gone + "/realm?x=secret#frag", "http://" + gone + "/realm"}, // the query swallowed the path: the URL tried, without it
	} {
		_, oe := exec(t, e, "register_site", map[string]any{"op_host": tc.opHost, "authorization_redirect_uri": "https://rp.example/cb"})
		require.NotNil(t, oe, tc.opHost)
		assert.Equal(t, oxdclient.CodeNoConnectDiscoveryResponse, oe.Code)
		assert.Equal(t, "Unable to fetch Connect discovery response /.well-known/openid-configuration from "+tc.want+
			" (unreachable, or not a valid discovery document). Check op_host: is the OP running at that address?", oe.Description)
		assert.NotContains(t, oe.Description, "hunter2")
		assert.NotContains(t, oe.Description, "secret")
		assert.NotContains(t, oe.Description, "refused", "the cause of a network failure is not passed on")
	}

	// Through oxdclient, the error string names the URL as well.
	_, err = oxdclient.New(e, oxdclient.Config{}).RegisterSite(testCtx(t), oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost: "http://" + gone, AuthorizationRedirectURI: "https://rp.example/cb"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no_connect_discovery_response")
	assert.Contains(t, err.Error(), "http://"+gone+"/.well-known/openid-configuration")
}
