package oxdserver_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

func countingEngine(t *testing.T) (*oxdserver.Engine, *oxdserver.CountingStore) {
	t.Helper()
	st := &oxdserver.CountingStore{Store: oxdserver.NewMemoryStore()}
	eng, err := oxdserver.New(oxdserver.Config{Store: st, InsecureAllowLoopbackHTTP: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	return eng, st
}

func execCode(t *testing.T, eng *oxdserver.Engine, command string, params map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(params)
	require.NoError(t, err)
	_, err = eng.Execute(context.Background(), oxdserver.Request{Command: command, Params: raw, ProtectionToken: "not-a-token"})
	var oe *oxdclient.Error
	require.True(t, errors.As(err, &oe), "%s: %v", command, err)
	return oe.Code
}

// TestForeignOxdIDsReadNoSite: before the caller is authenticated, a
// command naming an oxd_id the engine cannot have made (not a UUID: a
// random string, a 100 KB one, upper case) is answered invalid_oxd_id
// without a store read; a UUID-shaped one costs one read.
func TestForeignOxdIDsReadNoSite(t *testing.T) {
	eng, st := countingEngine(t)
	ids := []string{"x", strings.Repeat("a", 100<<10), "2B1C6BC0-6D0E-4B6A-8A55-1F0F3C2B9A10", "../../sites"}
	for range 200 {
		ids = append(ids, rand.Text())
	}
	commands := []string{oxdclient.CmdGetAuthorizationURL, oxdclient.CmdGetTokensByCode, oxdclient.CmdUpdateSite, oxdclient.CmdRemoveSite,
		oxdclient.CmdGetClientJWKS, oxdclient.CmdUMARSProtect, oxdclient.CmdIntrospectAccessToken, oxdclient.CmdGetRP}
	for _, id := range ids {
		for _, cmd := range commands {
			require.Equal(t, oxdclient.CodeInvalidOxdID, execCode(t, eng, cmd, map[string]any{"oxd_id": id}), "%s %.20q", cmd, id)
		}
	}
	assert.Zero(t, st.SiteReads(), "a foreign oxd_id reached the store")
	for _, cmd := range commands {
		require.Equal(t, oxdclient.CodeInvalidOxdID, execCode(t, eng, cmd, map[string]any{"oxd_id": "2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a10"}), cmd)
	}
	assert.Equal(t, int64(len(commands)), st.SiteReads(), "one read per UUID-shaped oxd_id")
}

// TestGetRPListWithoutTokenListsNothing: get_rp {"list":true} reads every
// site; without a protection token it is refused before the store is
// read, and with a token the sites are listed once.
func TestGetRPListWithoutTokenListsNothing(t *testing.T) {
	eng, st := countingEngine(t)
	for range 50 {
		_, err := eng.Execute(context.Background(), oxdserver.Request{Command: oxdclient.CmdGetRP, Params: []byte(`{"list":true}`)})
		var oe *oxdclient.Error
		require.ErrorAs(t, err, &oe)
		require.Equal(t, oxdclient.CodeBlankProtectionAccessToken, oe.Code)
	}
	assert.Zero(t, st.Listings(), "sites listed for a caller without a token")
	execCode(t, eng, oxdclient.CmdGetRP, map[string]any{"list": true})
	assert.Equal(t, int64(1), st.Listings(), "sites listed more than once for one request")
}
