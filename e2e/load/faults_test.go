package load_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/e2e/load"
)

// traffic is background load: workers that each use one signed-in browser
// in a loop, recording every answer, until stopped.
type traffic struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	counts map[int]int
	bad    []string // answers that are neither 200 nor (when allowed) 503
	lat    load.Latencies
	after  map[int]int // answers after markRecovered
	mark   atomic.Bool
}

// startTraffic runs workers over bs until stop; allow503 accepts 503 as a
// clean answer (an outage); anything else but 200 for the user is bad.
func startTraffic(s *stack, bs []*load.Browser, allow503 bool) *traffic {
	tr := &traffic{stop: make(chan struct{}), counts: map[int]int{}, after: map[int]int{}}
	for _, b := range bs {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-tr.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r, err := b.Get(ctx, fmt.Sprintf("/private/%s/t%d", b.User, i), -1)
				cancel()
				tr.mu.Lock()
				switch {
				case err != nil:
					tr.bad = append(tr.bad, fmt.Sprintf("%s: %v", b.User, err))
				case r.Status == http.StatusOK && strings.Contains(r.Body, "sub="+b.User+" "):
					tr.lat.Add(r.Elapsed)
				case r.Status == http.StatusServiceUnavailable && allow503:
				default:
					tr.bad = append(tr.bad, fmt.Sprintf("%s: HTTP %d from %q to %q: %.100s", b.User, r.Status, r.Replica, r.Location, r.Body))
				}
				if err == nil {
					tr.counts[r.Status]++
					if tr.mark.Load() {
						tr.after[r.Status]++
					}
				}
				tr.mu.Unlock()
				if r != nil && r.Status != http.StatusOK {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	return tr
}

func (tr *traffic) end(t *testing.T, what string) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	if len(tr.bad) > 0 {
		t.Errorf("%s: %d unclean answers to signed-in users, e.g. %q", what, len(tr.bad), tr.bad[:min(5, len(tr.bad))])
	}
}

// scenarioOxdKilled: oxd-server hung (SIGSTOP) and killed (SIGKILL), then
// restarted on its address; the replicas are not restarted.
func scenarioOxdKilled(t *testing.T, s *stack, bs []*load.Browser) {
	base := s.settledGoroutines(t, 0, 2*time.Second)
	bg := startTraffic(s, bs[:10], false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// navigate: n fresh browsers ask for a guarded page at once; every
	// answer must be a clean 503 within the call timeout (plus slack for
	// this loaded machine).
	navigate := func(phase string, n int) *load.Latencies {
		lat := &load.Latencies{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.anonymousStatus(ctx)
				if err != nil {
					t.Errorf("%s: %v", phase, err)
					return
				}
				if r.Status != http.StatusServiceUnavailable {
					t.Errorf("%s, navigation %d: HTTP %d to %q, want 503: %.100s", phase, i, r.Status, r.Location, r.Body)
				}
				if r.Elapsed > callTimeout+1500*time.Millisecond {
					t.Errorf("%s, navigation %d: answered after %v, call timeout %v", phase, i, r.Elapsed, callTimeout)
				}
				lat.Add(r.Elapsed)
			}()
		}
		wg.Wait()
		return lat
	}

	pid := s.oxd.Proc.PID()
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung := navigate("oxd hung", 20)
	if err := syscall.Kill(-pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	s.oxd.Proc.Kill()
	killed := navigate("oxd killed", 20)
	down := time.Now()
	if err := s.oxd.Restart(ctx); err != nil {
		t.Fatalf("restart oxd-server: %v", err)
	}
	// Recovery without restarting the replicas: a navigation is redirected
	// to the OP again, on both replicas.
	var recovered time.Duration
	for pin := range 2 {
		for {
			r, err := s.browser("anon").Get(ctx, "/private/anon", pin)
			if err == nil && isOPRedirect(r, s.op.Issuer) {
				break
			}
			if ctx.Err() != nil || time.Since(down) > 30*time.Second {
				t.Fatalf("replica %d did not recover after oxd-server restarted: %v %+v", pin, err, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	recovered = time.Since(down)
	// and a whole login works, across replicas.
	if _, err := s.browser("after-oxd-restart").Login(ctx, s.op.Issuer, 0, 1); err != nil {
		t.Fatalf("login after oxd-server restarted: %v", err)
	}
	bg.end(t, "signed-in traffic while oxd was down")
	after := s.settledGoroutines(t, base+20, 20*time.Second)
	if after > base+20 {
		t.Errorf("goroutine leak: %d before, %d after", base, after)
	}
	s.rec(t, "e_oxd_killed", map[string]any{
		"call_timeout_ms": callTimeout.Milliseconds(),
		"hung_p50_ms":     load.Ms(hung.Quantile(0.5)), "hung_max_ms": load.Ms(hung.Max()),
		"killed_p50_ms": load.Ms(killed.Quantile(0.5)), "killed_max_ms": load.Ms(killed.Max()),
		"recovered_after_restart_ms": recovered.Milliseconds(), "goroutines_before": base, "goroutines_after": after,
		"signed_in_requests": bg.lat.N(), "signed_in_p99_ms": load.Ms(bg.lat.Quantile(0.99)),
	})
}

// scenarioOPSlowDead: the OP's back channel delayed by 2 s, then the OP
// dead, then back.
func scenarioOPSlowDead(t *testing.T, s *stack, bs []*load.Browser) {
	const n = 10
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := s.settledGoroutines(t, 0, 2*time.Second)
	bg := startTraffic(s, bs[:10], false)
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(200 * time.Millisecond):
			}
			sctx, c := context.WithTimeout(ctx, 2*time.Second)
			g := 0
			for _, a := range s.apps {
				v, err := a.Goroutines(sctx)
				if err == nil {
					g += v
				}
			}
			c()
			if int64(g) > peak.Load() {
				peak.Store(int64(g))
			}
		}
	}()

	// Slow: every request oxd makes to the OP takes 2 s more. A login
	// completes, or (should a callback pass the call timeout) ends in a
	// clean 503 within the call timeout.
	s.op.Proxy.SetDelay(2 * time.Second)
	slow := &load.Latencies{}
	var slowOK, slow503 atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := s.browser(fmt.Sprintf("slow%02d", i))
			cb, _, err := b.LoginBegin(ctx, s.op.Issuer, i%2)
			if err != nil {
				t.Errorf("slow OP, login %d: %v", i, err)
				return
			}
			t0 := time.Now()
			r, err := b.LoginFinish(ctx, cb, 1-i%2)
			el := time.Since(t0)
			slow.Add(el)
			switch {
			case err == nil:
				slowOK.Add(1)
			case r != nil && r.Status == http.StatusServiceUnavailable && r.Elapsed <= callTimeout+1500*time.Millisecond:
				slow503.Add(1)
			default:
				t.Errorf("slow OP, callback %d after %v: %v", i, el, err)
			}
		}()
	}
	wg.Wait()

	// Dead: logins started before the OP died end in a clean 502/503
	// within the call timeout; nobody signed in notices.
	cbs := make([]string, n)
	dbs := make([]*load.Browser, n)
	s.op.Proxy.SetDelay(0)
	for i := range n {
		dbs[i] = s.browser(fmt.Sprintf("dead%02d", i))
		var err error
		if cbs[i], _, err = dbs[i].LoginBegin(ctx, s.op.Issuer, i%2); err != nil {
			t.Fatalf("login before the OP dies: %v", err)
		}
	}
	s.op.Proxy.SetDead(true)
	dead := &load.Latencies{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := dbs[i].Get(ctx, cbs[i], 1-i%2)
			if err != nil {
				t.Errorf("dead OP, callback %d: %v", i, err)
				return
			}
			if r.Status != http.StatusBadGateway && r.Status != http.StatusServiceUnavailable {
				t.Errorf("dead OP, callback %d: HTTP %d to %q, want 502 or 503: %.100s", i, r.Status, r.Location, r.Body)
			}
			if r.Elapsed > callTimeout+1500*time.Millisecond {
				t.Errorf("dead OP, callback %d answered after %v (call timeout %v)", i, r.Elapsed, callTimeout)
			}
			dead.Add(r.Elapsed)
		}()
	}
	wg.Wait()
	time.Sleep(time.Second) // signed-in traffic keeps running on a dead OP

	// Back: the same browsers sign in from the start.
	s.op.Proxy.SetDead(false)
	back := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := dbs[i].Login(ctx, s.op.Issuer, i%2, 1-i%2); err != nil {
				t.Errorf("after the OP came back, login %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	recovered := time.Since(back)
	close(stopSampling)
	sampler.Wait()
	bg.end(t, "signed-in traffic while the OP was slow and dead")
	// No pile-up: at most a few goroutines per request in flight.
	if p := peak.Load(); p > int64(base+40*n+100) {
		t.Errorf("goroutines piled up: %d at rest, %d at the peak", base, p)
	}
	after := s.settledGoroutines(t, base+20, 20*time.Second)
	if after > base+20 {
		t.Errorf("goroutine leak: %d before, %d after", base, after)
	}
	s.rec(t, "f_op_slow_then_dead", map[string]any{
		"op_delay_ms": 2000, "call_timeout_ms": callTimeout.Milliseconds(),
		"slow_logins_completed": slowOK.Load(), "slow_logins_clean_503": slow503.Load(),
		"slow_callback_p50_ms": load.Ms(slow.Quantile(0.5)), "slow_callback_max_ms": load.Ms(slow.Max()),
		"dead_callback_p50_ms": load.Ms(dead.Quantile(0.5)), "dead_callback_max_ms": load.Ms(dead.Max()),
		"logins_after_recovery_ms": recovered.Milliseconds(),
		"goroutines_before":        base, "goroutines_peak": peak.Load(), "goroutines_after": after,
		"signed_in_requests": bg.lat.N(), "signed_in_p99_ms": load.Ms(bg.lat.Quantile(0.99)),
	})
}

// attack opens n slow-loris connections and garbage senders to addr until
// stop; frame is what a slow-loris sends first, then one byte a second.
func attack(addr string, n int, first string, stop <-chan struct{}, wg *sync.WaitGroup, opened *atomic.Int64) {
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			opened.Add(1)
			if i%2 == 0 { // slow-loris
				if _, err := c.Write([]byte(first)); err != nil {
					return
				}
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
					}
					if _, err := c.Write([]byte("a")); err != nil {
						return
					}
				}
			}
			// garbage: random bytes, reconnecting whenever the server hangs up
			buf := make([]byte, 512)
			for {
				select {
				case <-stop:
					return
				default:
				}
				rand.Read(buf)
				if _, err := c.Write(buf); err != nil {
					c.Close()
					if c, err = net.DialTimeout("tcp", addr, time.Second); err != nil {
						return
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
}

// scenarioSlowloris: slow-loris and garbage clients against both replicas
// and the oxd socket; a well-behaved client's requests (signed-in pages and
// anonymous navigations, which call oxd) keep their latency.
func scenarioSlowloris(t *testing.T, s *stack, bs []*load.Browser) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	measure := func(d time.Duration) (*load.Latencies, *load.Latencies) {
		signed, anon := &load.Latencies{}, &load.Latencies{}
		end := time.Now().Add(d)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := bs[w]
				for i := 0; time.Now().Before(end); i++ {
					r, err := b.Get(ctx, fmt.Sprintf("/private/%s/h%d", b.User, i), -1)
					if err != nil || r.Status != http.StatusOK {
						t.Errorf("well-behaved signed-in request: %v %+v", err, r)
						return
					}
					signed.Add(r.Elapsed)
					r, err = s.anonymousStatus(ctx)
					if err != nil || !isOPRedirect(r, s.op.Issuer) {
						t.Errorf("well-behaved navigation: %v %+v", err, r)
						return
					}
					anon.Add(r.Elapsed)
				}
			}()
		}
		wg.Wait()
		return signed, anon
	}
	base := s.settledGoroutines(t, 0, 2*time.Second)
	s1, a1 := measure(3 * time.Second)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opened atomic.Int64
	for _, a := range s.apps {
		attack(strings.TrimPrefix(a.URL, "http://"), 100, "GET /private/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ", stop, &wg, &opened)
	}
	attack(s.oxd.Addr, 100, "0200{\"command\":\"get_authorization_url\",", stop, &wg, &opened)
	time.Sleep(500 * time.Millisecond)
	s2, a2 := measure(6 * time.Second)
	close(stop)
	wg.Wait()

	for _, c := range []struct {
		what         string
		before, then *load.Latencies
	}{{"signed-in request", s1, s2}, {"anonymous navigation (one oxd call)", a1, a2}} {
		p99 := c.then.Quantile(0.99)
		bound := max(10*c.before.Quantile(0.99), 500*time.Millisecond)
		if p99 > bound {
			t.Errorf("%s under attack: p99 %v, %v before (bound %v)", c.what, p99, c.before.Quantile(0.99), bound)
		}
	}
	after := s.settledGoroutines(t, base+20, 20*time.Second)
	if after > base+20 {
		t.Errorf("goroutines after the attack: %d, %d before", after, base)
	}
	s.rec(t, "h_slowloris_garbage", map[string]any{
		"attack_connections":   opened.Load(),
		"signed_p99_before_ms": load.Ms(s1.Quantile(0.99)), "signed_p99_during_ms": load.Ms(s2.Quantile(0.99)),
		"navigation_p99_before_ms": load.Ms(a1.Quantile(0.99)), "navigation_p99_during_ms": load.Ms(a2.Quantile(0.99)),
		"requests_during": s2.N() + a2.N(), "goroutines_before": base, "goroutines_after": after,
	})
}

// scenarioRedisRestart: Redis killed mid-run and started again (its
// append-only file kept): clean 503s meanwhile, every session back after.
// afterOutage ends the background traffic of an outage scenario (what
// names it) and checks it: 503s were seen while outage, only 200s after
// recovery, and every session of bs from before the outage is still signed
// in (asked at /private/<user>/<path>); it returns how many were lost
// across restart.
func afterOutage(t *testing.T, ctx context.Context, bg *traffic, bs []*load.Browser, what, outage, restart, path string) int {
	t.Helper()
	bg.mark.Store(true)
	time.Sleep(2 * time.Second)
	bg.end(t, what)
	if bg.counts[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 seen while %s: the outage was not exercised (%v)", outage, bg.counts)
	}
	if n := len(bg.after) - bg.after[http.StatusOK]; bg.after[http.StatusOK] == 0 || n > 0 {
		t.Errorf("after recovery: %v, want only 200", bg.after)
	}
	lost := 0
	for _, b := range bs {
		r, err := b.Get(ctx, "/private/"+b.User+"/"+path, -1)
		if err != nil || r.Status != http.StatusOK || !strings.Contains(r.Body, "sub="+b.User+" ") {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d sessions lost across %s", lost, len(bs), restart)
	}
	return lost
}

func scenarioRedisRestart(t *testing.T, s *stack, bs []*load.Browser) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bg := startTraffic(s, bs[:16], true)
	time.Sleep(time.Second)
	if err := s.redis.Kill(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// Anonymous navigations during the outage: a clean 503, or 502 when
	// oxd-server (whose store is this Redis too) answers the login's
	// get_authorization_url with an error; never a 500 or a redirect.
	var anon []int
	for range 5 {
		r, err := s.anonymousStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		anon = append(anon, r.Status)
		if r.Status != http.StatusServiceUnavailable && r.Status != http.StatusBadGateway {
			t.Errorf("anonymous navigation during the Redis outage: HTTP %d to %q, want 503 or 502: %.100s", r.Status, r.Location, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Until(down.Add(2 * time.Second)))
	s.redis.Restart(t)
	up := time.Now()
	// Wait until the replicas answer 200 again, then let traffic run.
	var recovered time.Duration
	for {
		r, err := bs[0].Get(ctx, "/private/"+bs[0].User, -1)
		if err == nil && r.Status == http.StatusOK {
			recovered = time.Since(up)
			break
		}
		if time.Since(up) > 30*time.Second {
			t.Fatalf("no recovery 30 s after Redis came back: %v %+v", err, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	lost := afterOutage(t, ctx, bg, bs, "signed-in traffic across the Redis restart", "Redis was down", "the Redis restart", "after-redis")
	s.rec(t, "d_redis_restarted", map[string]any{
		"outage_ms": up.Sub(down).Milliseconds(), "recovered_after_ms": recovered.Milliseconds(),
		"answers": bg.counts, "sessions_before": len(bs), "sessions_lost": lost, "anonymous_during": anon,
	})
}

// secretsAudit stops the replicas and oxd-server (their logs complete)
// and looks for every secret the OP issued or received (seen on the wire
// by its fault proxy and, for the certified OP, written to its ledger:
// client secrets, codes, tokens, RPTs, client assertions) in every line
// they logged (debug level).
func secretsAudit(t *testing.T, s *stack) {
	for _, a := range s.apps {
		a.Proc.Stop()
	}
	s.oxd.Proc.Stop()
	if s.op.Ledger != "" {
		if err := s.op.Proxy.Secrets.AddLedger(s.op.Ledger); err != nil {
			t.Fatal(err)
		}
	}
	secrets := s.op.Proxy.Secrets.List()
	files := s.env.OwnLogs("app-", "oxd-server")
	if len(secrets) < 10 || len(files) < 3 {
		t.Fatalf("audit has too little to look at: %d secrets, %d logs", len(secrets), len(files))
	}
	// The audit finds a planted secret (it can fail).
	canary := filepath.Join(t.TempDir(), "canary.log")
	if err := os.WriteFile(canary, []byte("level=DEBUG msg=x token="+secrets[0]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if leaks, _, err := harness.AuditLogs(secrets, []string{canary}); err != nil || len(leaks) != 1 {
		t.Fatalf("audit missed a planted secret: %v %v", leaks, err)
	}
	leaks, lines, err := harness.AuditLogs(secrets, files)
	if err != nil {
		t.Fatal(err)
	}
	if lines < 100 {
		t.Fatalf("only %d log lines: is debug logging on?", lines)
	}
	for i, l := range leaks {
		if i < 20 {
			t.Errorf("secret in a log: %s line %d: %s", filepath.Base(l.File), l.Line, l.Kind)
		}
	}
	s.rec(t, "secrets_audit", map[string]any{"secrets": len(secrets), "logs": len(files), "lines": lines, "leaks": len(leaks)})
}
