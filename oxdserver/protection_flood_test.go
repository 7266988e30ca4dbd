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

	"github.com/oxdgo/oxd/internal/testwait"
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
// must check at the OP. The checks with one setup site's credentials take
// at most their share, the checks in flight and waiting are bounded, and
// callers beyond a bound are refused at once without a request to the OP;
// a real token is still checked once the flood ends.
func TestMadeUpProtectionTokensBoundedAtOP(t *testing.T) {
	held := &heldIntrospections{next: http.DefaultTransport, gate: make(chan struct{})}
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{HTTPClient: &http.Client{Transport: held, Timeout: 30 * time.Second}}))
	good := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "openid", "oxd")
	const inFlight, waiting, share = oxdserver.ProtectionChecksInFlight, oxdserver.ProtectionChecksWaiting, oxdserver.ProtectionChecksPerSetup
	// Enough tenants for their shares to exceed the bounds, and one more.
	tenants := []string{srv.OxdID}
	for len(tenants) < (inFlight+waiting)/share+2 {
		m, oe := exec(t, srv.Engine, "setup_client", map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://t.example/cb"})
		require.Nil(t, oe, "%v", oe)
		tenants = append(tenants, m["oxd_id"].(string))
	}
	var wg sync.WaitGroup
	var returned atomic.Int64
	codes := make(chan *oxdclient.Error, len(tenants)*share+1)
	flood := func(oxdID string, n int) {
		for range n {
			wg.Go(func() {
				_, oe := execProtected(t, srv.Engine, "get_authorization_url", rand.Text(), map[string]any{"oxd_id": oxdID})
				codes <- oe
				returned.Add(1)
			})
		}
	}
	busy := func(oe *oxdclient.Error) bool {
		return oe != nil && oe.Code == oxdclient.CodeInternalError && strings.Contains(oe.Description, "Too many protection access token checks")
	}

	// One tenant: its share, no more.
	flood(tenants[0], share+5)
	testwait.Until(t, "one tenant's checks fill its share", func() bool {
		return held.inflight.Load() == inFlight && oxdserver.ProtectionChecksWaitingNow(srv.Engine) == share-inFlight && returned.Load() == 5
	})
	// Then the shares of all but the last tenant: the bounds.
	for _, id := range tenants[1 : len(tenants)-1] {
		flood(id, share)
	}
	refused := int64(5 + (len(tenants)-1)*share - inFlight - waiting)
	testwait.Until(t, "the checks fill their bounds", func() bool {
		return held.inflight.Load() == inFlight && oxdserver.ProtectionChecksWaitingNow(srv.Engine) == waiting && returned.Load() == refused
	})
	_, oe := execProtected(t, srv.Engine, "get_authorization_url", rand.Text(), map[string]any{"oxd_id": tenants[len(tenants)-1]})
	require.True(t, busy(oe), "%v", oe)
	assert.Equal(t, int64(inFlight), held.max.Load(), "introspections in flight")
	close(held.gate)
	wg.Wait()
	close(codes)
	n := 0
	for oe := range codes {
		require.NotNil(t, oe)
		if !busy(oe) {
			assert.Equal(t, oxdclient.CodeInactiveProtectionAccessToken, oe.Code)
			n++
		}
	}
	assert.Equal(t, int64(n), held.seen.Load(), "a refused caller reached the OP")
	assert.Equal(t, inFlight+waiting, n)
	_, oe = execProtected(t, srv.Engine, "get_authorization_url", good, map[string]any{"oxd_id": srv.OxdID})
	require.Nil(t, oe, "%v", oe)
}

// TestProtectionFloodSparesOtherTenants: made-up tokens aimed at one
// tenant's oxd_id (or at get_rp's list, which needs no oxd_id) take at most
// a share of the protection checks: another tenant's real token is still
// checked (it waits for a turn) instead of being refused as busy.
func TestProtectionFloodSparesOtherTenants(t *testing.T) {
	held := &heldIntrospections{next: http.DefaultTransport, gate: make(chan struct{})}
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{HTTPClient: &http.Client{Transport: held, Timeout: 30 * time.Second}}))
	b, oe := exec(t, srv.Engine, "setup_client", map[string]any{"op_host": srv.OP.Issuer(), "authorization_redirect_uri": "https://b.example/cb"})
	require.Nil(t, oe, "%v", oe)
	tokB := clientToken(t, srv, b["client_id"].(string), oxdclient.Secret(b["client_secret"].(string)), "openid", "oxd")

	const inFlight, waiting = oxdserver.ProtectionChecksInFlight, oxdserver.ProtectionChecksWaiting
	var wg sync.WaitGroup
	var returned atomic.Int64
	for range inFlight + waiting {
		wg.Go(func() {
			_, _ = execProtected(t, srv.Engine, "get_authorization_url", rand.Text(), map[string]any{"oxd_id": srv.OxdID})
			returned.Add(1)
		})
	}
	testwait.Until(t, "the flood takes what it may", func() bool {
		return held.inflight.Load() == inFlight &&
			int64(oxdserver.ProtectionChecksWaitingNow(srv.Engine))+returned.Load() == waiting
	})
	w0 := oxdserver.ProtectionChecksWaitingNow(srv.Engine)
	var bErr atomic.Pointer[oxdclient.Error]
	var bDone atomic.Bool
	wg.Go(func() {
		_, oe := execProtected(t, srv.Engine, "get_authorization_url", tokB, map[string]any{"oxd_id": b["oxd_id"]})
		bErr.Store(oe)
		bDone.Store(true)
	})
	testwait.Until(t, "tenant B's check waits or ends", func() bool {
		return bDone.Load() || oxdserver.ProtectionChecksWaitingNow(srv.Engine) == w0+1
	})
	close(held.gate)
	wg.Wait()
	require.Nil(t, bErr.Load(), "tenant B's real token during a flood aimed at tenant A: %v", bErr.Load())
}
