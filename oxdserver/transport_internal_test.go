package oxdserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOwnTransportKeepsConnectionsForConcurrentLogins: the engine's own
// HTTP client keeps the connections that 16 concurrent OP requests opened
// and reuses them for the next rounds, instead of closing all but two and
// dialling again (http.DefaultTransport's MaxIdleConnsPerHost).
func TestOwnTransportKeepsConnectionsForConcurrentLogins(t *testing.T) {
	const inFlight, rounds = 16, 3
	var conns atomic.Int64
	var mu sync.Mutex
	arrived, all := 0, make(chan struct{})
	op := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Answer only when the whole round is in flight: each request
		// of a round holds its own connection.
		mu.Lock()
		arrived++
		wait := all
		if arrived == inFlight {
			close(all)
			arrived, all = 0, make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-wait:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	op.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	op.Start()
	t.Cleanup(op.Close)
	e, err := New(Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })

	for range rounds {
		var wg sync.WaitGroup
		for range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, op.URL, nil)
				resp, err := e.http.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	assert.Equal(t, int64(inFlight), conns.Load(), "connections dialled for %d rounds of %d concurrent requests", rounds, inFlight)
}
