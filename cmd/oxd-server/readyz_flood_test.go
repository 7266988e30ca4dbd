package main

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/opsserver"
)

// TestReadyzFloodRunsOneProbeAtATime: /readyz answers without
// authentication and each probe run opens connections to the server's own
// listeners (from loopback, where they count against the per-source
// limits every local application shares). Concurrent /readyz requests
// share one probe run: a flood of them never has more than one run in
// flight, and every request gets its answer.
func TestReadyzFloodRunsOneProbeAtATime(t *testing.T) {
	m := startMetricsServer(t)
	var inFlight, most, runs atomic.Int64
	probes := []readinessProbe{{Name: "slow", Check: func(context.Context) error {
		runs.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			old := most.Load()
			if n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		return nil
	}}}
	m.Ready(probes)
	url := "http://" + m.Addr().String() + "/readyz"
	const clients = opsserver.DefaultMaxConns - 4 // within the connection cap
	var wg sync.WaitGroup
	codes := make(chan int, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := http.Get(url)
			if err != nil {
				codes <- 0
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a /readyz request answered %d", c)
		}
	}
	if most.Load() != 1 {
		t.Errorf("%d probe runs in flight at once, want 1", most.Load())
	}
	if runs.Load() >= clients {
		t.Errorf("%d probe runs for %d concurrent requests", runs.Load(), clients)
	}
}
