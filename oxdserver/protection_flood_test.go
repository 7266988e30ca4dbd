package oxdserver_test

import (
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// heldIntrospections counts the introspection requests to the OP in
// flight and holds them while gated.
type heldIntrospections struct {
	next                http.RoundTripper
	inflight, max, seen atomic.Int64
	gate                chan struct{}
}

func (h *heldIntrospections) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/introspect") {
		return h.next.RoundTrip(r)
	}
	h.seen.Add(1)
	n := h.inflight.Add(1)
	defer h.inflight.Add(-1)
	for m := h.max.Load(); n > m && !h.max.CompareAndSwap(m, n); m = h.max.Load() {
	}
	<-h.gate
	return h.next.RoundTrip(r)
}

// TestMadeUpProtectionTokensBoundedAtOP: anyone who knows an oxd_id can
// send protected commands with made-up tokens, each of which the engine
// must check at the OP. The checks in flight are bounded, and callers
// beyond the waiting bound are refused at once without a request to the
// OP; a real token is still checked once the flood ends.
func TestMadeUpProtectionTokensBoundedAtOP(t *testing.T) {
	held := &heldIntrospections{next: http.DefaultTransport, gate: make(chan struct{})}
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{HTTPClient: &http.Client{Transport: held, Timeout: 30 * time.Second}}))
	good := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "openid", "oxd")
	const inFlight, waiting = oxdserver.ProtectionChecksInFlight, oxdserver.ProtectionChecksWaiting
	var wg sync.WaitGroup
	codes := make(chan string, inFlight+waiting)
	for range inFlight + waiting {
		wg.Go(func() {
			_, oe := execProtected(t, srv.Engine, "get_authorization_url", rand.Text(), map[string]any{"oxd_id": srv.OxdID})
			if oe != nil {
				codes <- oe.Code
			}
		})
	}
	oxdserver.AwaitCond(t, "the checks fill their bounds", func() bool {
		return held.inflight.Load() == inFlight && oxdserver.ProtectionChecksWaitingNow(srv.Engine) == waiting
	})
	_, oe := execProtected(t, srv.Engine, "get_authorization_url", rand.Text(), map[string]any{"oxd_id": srv.OxdID})
	require.NotNil(t, oe)
	require.Equal(t, oxdclient.CodeInternalError, oe.Code)
	busy := oe.Description
	assert.Contains(t, busy, "Too many protection access token checks")
	assert.Equal(t, int64(inFlight), held.max.Load(), "introspections in flight")
	close(held.gate)
	wg.Wait()
	close(codes)
	for c := range codes {
		assert.Equal(t, oxdclient.CodeInactiveProtectionAccessToken, c)
	}
	assert.Equal(t, int64(inFlight+waiting), held.seen.Load(), "a refused caller reached the OP")
	_, oe = execProtected(t, srv.Engine, "get_authorization_url", good, map[string]any{"oxd_id": srv.OxdID})
	require.Nil(t, oe, "%v", oe)
}
