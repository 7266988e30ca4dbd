package oxdserver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// TestGetRPListPagedToFitFrame ("also" item): get_rp {"list":true} answers
// in pages of at most MaxGetRPList entries, each of which fits one socket
// frame even with long non-ASCII client names; "offset" reaches the rest.
func TestGetRPListPagedToFitFrame(t *testing.T) {
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{InsecureNoProtection: true}))
	for i := range 44 {
		_, err := srv.Client.RegisterSite(testCtx(t), oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
			OPHost: srv.OP.Issuer(), AuthorizationRedirectURI: "https://rp.example/cb",
			ClientName: fmt.Sprintf("%02d %s", i, strings.Repeat("é\u2028<>&", 40))}})
		require.NoError(t, err)
	}
	l := startListeners(t, srv.Engine, nil)
	seen := map[string]bool{}
	for _, off := range []int{0, 20, 40} {
		m, oe := l.socketCall(t, oxdclient.CmdGetRP, "", map[string]any{"list": true, "offset": off})
		require.Nil(t, oe, "offset %d: %v (the page must fit a frame)", off, oe)
		for _, n := range m["node"].([]any) {
			seen[n.(map[string]any)["oxd_id"].(string)] = true
		}
	}
	assert.Len(t, seen, 46, "44 sites plus setup_client's two")
	m, oe := l.socketCall(t, oxdclient.CmdGetRP, "", map[string]any{"list": true, "limit": 5})
	require.Nil(t, oe)
	assert.Len(t, m["node"], 5)
}
