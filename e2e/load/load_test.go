package load_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oxdgo/oxd/e2e/load"
)

// TestLoad runs the scenarios of the load and fault suite on one stack, in
// order: (a) concurrent logins across replicas, (b) authenticated requests
// across replicas, (e) oxd killed and restarted, (f) OP slow then dead,
// (h) slow-loris and garbage clients, (d) Redis restarted, then the
// secrets audit of every log of ours. Each scenario asserts that nothing
// was lost and records its figures in e2e/artifacts/load-main.json.
func TestLoad(t *testing.T) {
	users := 50
	if longMode() {
		users = 500
	}
	start := time.Now()
	s := startStack(t, "main")
	t.Logf("stack up in %v (oxd %s, OP %s, LB %s)", time.Since(start).Round(time.Millisecond), s.oxd.Addr, s.op.Issuer, s.rr.URL)

	bs := make([]*load.Browser, users)
	for i := range bs {
		bs[i] = s.browser(fmt.Sprintf("user%04d", i))
	}
	g0 := s.goroutines(t)

	// A lost login fails (a); the scenarios after it run with the users
	// that signed in, as long as there are enough of them to measure.
	t.Run("a_concurrent_logins", func(t *testing.T) { bs = scenarioLogins(t, s, bs) })
	if len(bs) < 20 || !t.Run("b_authenticated_requests", func(t *testing.T) { scenarioAuthenticated(t, s, bs, 20) }) {
		t.FailNow()
	}
	t.Run("e_oxd_killed", func(t *testing.T) { scenarioOxdKilled(t, s, bs) })
	t.Run("f_op_slow_then_dead", func(t *testing.T) { scenarioOPSlowDead(t, s, bs) })
	t.Run("h_slowloris_garbage", func(t *testing.T) { scenarioSlowloris(t, s, bs) })
	t.Run("d_redis_restarted", func(t *testing.T) { scenarioRedisRestart(t, s, bs) })

	// No goroutine left behind by the whole run.
	if g := s.settledGoroutines(t, g0+20, 20*time.Second); g > g0+20 {
		t.Errorf("goroutines of the replicas: %d at start, %d at the end", g0, g)
	}
	t.Run("secrets_audit", func(t *testing.T) { secretsAudit(t, s) })
	t.Logf("load suite (%d users) took %v", users, time.Since(start).Round(time.Millisecond))
}

// TestLoadDevOP runs (a), (b) and the secrets audit against the
// development OP (oxdtest) instead of the certified OP.
func TestLoadDevOP(t *testing.T) {
	users := 20
	if longMode() {
		users = 200
	}
	s := startStack(t, "devop")
	bs := make([]*load.Browser, users)
	for i := range bs {
		bs[i] = s.browser(fmt.Sprintf("user%04d", i))
	}
	t.Run("a_concurrent_logins", func(t *testing.T) { bs = scenarioLogins(t, s, bs) })
	if len(bs) < 10 || !t.Run("b_authenticated_requests", func(t *testing.T) { scenarioAuthenticated(t, s, bs, 20) }) {
		t.FailNow()
	}
	t.Run("secrets_audit", func(t *testing.T) { secretsAudit(t, s) })
}

func scenarioLogins(t *testing.T, s *stack, bs []*load.Browser) []*load.Browser {
	t0 := time.Now()
	lat, in := s.loginAll(t, bs)
	d := time.Since(t0)
	s.rec(t, "a_concurrent_logins", map[string]any{
		"users": len(bs), "lost": len(bs) - len(in), "seconds": d.Seconds(), "logins_per_s": float64(len(in)) / d.Seconds(),
		"login_p50_ms": load.Ms(lat.Quantile(0.5)), "login_p99_ms": load.Ms(lat.Quantile(0.99)), "login_max_ms": load.Ms(lat.Max()),
	})
	return in
}

// hammer makes perUser authenticated requests per browser (the browsers in
// parallel, each one's requests in sequence) through the round-robin proxy
// and fails on any answer that is not this user's page.
func hammer(t *testing.T, s *stack, bs []*load.Browser, perUser int) (*load.Latencies, map[string]int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lat := &load.Latencies{}
	var mu sync.Mutex
	replicas := map[string]int{}
	var lost atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perUser {
				r, err := b.Get(ctx, fmt.Sprintf("/private/%s/%d", b.User, i), -1)
				if err != nil || r.Status != http.StatusOK || !strings.Contains(r.Body, "sub="+b.User+" ") {
					lost.Add(1)
					if err == nil {
						err = fmt.Errorf("HTTP %d from %q to %q: %.120s", r.Status, r.Replica, r.Location, r.Body)
					}
					firstErr.CompareAndSwap(nil, fmt.Errorf("%s request %d: %w", b.User, i, err))
					continue
				}
				lat.Add(r.Elapsed)
				mu.Lock()
				replicas[r.Replica]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	if n := lost.Load(); n > 0 {
		t.Fatalf("%d of %d authenticated requests not authenticated; first: %v", n, len(bs)*perUser, firstErr.Load())
	}
	return lat, replicas, d
}

func scenarioAuthenticated(t *testing.T, s *stack, bs []*load.Browser, perUser int) {
	lat, replicas, d := hammer(t, s, bs, perUser)
	if len(replicas) != 2 || replicas["A"] == 0 || replicas["B"] == 0 {
		t.Fatalf("requests were not spread over both replicas: %v", replicas)
	}
	// The UMA route: a signed-in browser without an RPT gets the UMA
	// challenge with a permission ticket from the AS, on either replica.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, b := range bs[:min(len(bs), 10)] {
		r, err := b.Get(ctx, "/photos/1", i%2, "Accept", "application/json")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
			t.Fatalf("UMA route without RPT: HTTP %d %.200s", r.Status, r.Body)
		}
	}
	s.rec(t, "b_authenticated_requests", map[string]any{
		"users": len(bs), "requests": len(bs) * perUser, "lost": 0, "seconds": d.Seconds(),
		"requests_per_s": float64(len(bs)*perUser) / d.Seconds(), "replica_A": replicas["A"], "replica_B": replicas["B"],
		"p50_ms": load.Ms(lat.Quantile(0.5)), "p99_ms": load.Ms(lat.Quantile(0.99)), "max_ms": load.Ms(lat.Max()),
	})
}
