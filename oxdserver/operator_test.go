package oxdserver_test

import (
	"errors"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

// TestRegistrationsNeedOperatorToken (server hardening, "also" item):
// setup_client and register_site from a listener need the operator token
// when one is configured, are refused on a listener that requires one
// while none is configured, and are rate-limited; the in-process
// transport is not limited, and the token is never logged.
func TestRegistrationsNeedOperatorToken(t *testing.T) {
	logs := &syncBuffer{}
	const opToken = "operator-SECRET-token"
	params := map[string]any{"op_host": "https://op.invalid", "authorization_redirect_uri": "https://rp.example/cb"}
	with := func(tok string) map[string]any {
		m := map[string]any{"operator_token": tok}
		for k, v := range params {
			m[k] = v
		}
		return m
	}

	e, err := oxdserver.New(oxdserver.Config{OperatorToken: opToken, Logger: newTestLogger(logs), RegistrationsPerMinute: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	l := startListeners(t, e, newTestLogger(logs))
	for _, c := range []string{oxdclient.CmdSetupClient, oxdclient.CmdRegisterSite} {
		_, oe := l.socketCall(t, c, "", params)
		require.NotNil(t, oe)
		assert.Equal(t, oxdserver.CodeInvalidOperatorToken, oe.Code, c)
		_, oe = l.socketCall(t, c, "", with("wrong"))
		assert.Equal(t, oxdserver.CodeInvalidOperatorToken, oe.Code, c)
		status, body := l.httpsCall(t, c, "x", params)
		assert.Equal(t, 200, status)
		assert.Contains(t, body, oxdserver.CodeInvalidOperatorToken)
	}
	// With the token the command runs (and fails at the unreachable OP).
	_, oe := l.socketCall(t, oxdclient.CmdSetupClient, "", with(opToken))
	require.NotNil(t, oe)
	assert.Equal(t, oxdclient.CodeNoConnectDiscoveryResponse, oe.Code)
	// Rate limit: 4 admitted per minute, then refused.
	var last *oxdclient.Error
	for range 5 {
		_, last = l.socketCall(t, oxdclient.CmdSetupClient, "", with(opToken))
	}
	assert.Equal(t, oxdserver.CodeTooManyRegistrations, last.Code)
	// In process: neither token nor limit.
	var out map[string]any
	err = e.Do(testCtx(t), oxdclient.CmdSetupClient, params, &out)
	assert.True(t, hasCode(err, oxdclient.CodeNoConnectDiscoveryResponse), "%v", err)
	assert.NotContains(t, logs.String(), opToken)

	// A listener that requires the token refuses while none is configured.
	open, err := oxdserver.New(oxdserver.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = open.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ss := &oxdserver.SocketServer{Engine: open, RequireOperatorToken: true}
	go func() { _ = ss.Serve(ln) }()
	t.Cleanup(func() { _ = ss.Close() })
	sock, err := oxdclient.NewSocket(ln.Addr().String(), oxdclient.SocketConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sock.Close() })
	err = sock.Do(testCtx(t), oxdclient.CmdSetupClient, with("anything"), &out)
	assert.True(t, hasCode(err, oxdserver.CodeInvalidOperatorToken), "%v", err)
	hs := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(open, oxdserver.HTTPSConfig{RequireOperatorToken: true}))
	t.Cleanup(hs.Close)
	lh := &listeners{https: hs}
	_, body := lh.httpsCall(t, oxdclient.CmdRegisterSite, "x", with(""))
	assert.Contains(t, body, oxdserver.CodeInvalidOperatorToken)
}

func hasCode(err error, code string) bool {
	var oe *oxdclient.Error
	return errors.As(err, &oe) && oe.Code == code
}
