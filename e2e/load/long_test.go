package load_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/e2e/load"
	"github.com/oxdgo/oxd/oxdserver"
)

// longOnly runs a test in the long mode only (OXD_LOAD=long): these
// scenarios take minutes (the flood alone some 3 on two cores), too long for
// the short mode of CI.
func longOnly(t *testing.T) bool {
	t.Helper()
	if !longMode() {
		t.Log("long mode only (OXD_LOAD=long, bash scripts/load.sh --long)")
		return false
	}
	return true
}

// TestRefreshAcrossReplicas is scenario (c): one user whose access token
// is due sends 100 requests at once through the round-robin proxy, under
// refresh-token rotation: exactly one refresh grant reaches the OP, and no
// request is thrown out.
func TestRefreshAcrossReplicas(t *testing.T) {
	if !longOnly(t) {
		return
	}
	const ttl = 20 // access token lifetime, s; refreshed from half of it on
	s := startStack(t, "refresh", "OP_TTL_ACCESS_TOKEN="+strconv.Itoa(ttl), "OP_ROTATE_REFRESH_TOKEN=1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := s.browser("refresher")
	if _, err := b.Login(ctx, s.op.Issuer, 0, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl*time.Second/2 + 2*time.Second)
	before := s.op.Proxy.RefreshGrants()
	var ok, thrownOut, other atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := b.Get(ctx, fmt.Sprintf("/private/%s/r%d", b.User, i), -1)
			switch {
			case err != nil:
				other.Add(1)
			case r.Status == http.StatusOK && strings.Contains(r.Body, "sub="+b.User+" "):
				ok.Add(1)
			case r.Status == http.StatusSeeOther || r.Status == http.StatusUnauthorized:
				thrownOut.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	// One more request after the burst: still signed in.
	r, err := b.Get(ctx, "/private/"+b.User+"/after", -1)
	stillIn := err == nil && r.Status == http.StatusOK
	refreshes := s.op.Proxy.RefreshGrants() - before
	s.rec(t, "c_refresh_across_replicas", map[string]any{
		"requests": 100, "ok": ok.Load(), "thrown_out": thrownOut.Load(), "other": other.Load(),
		"refresh_grants_at_op": refreshes, "signed_in_after": stillIn,
	})
	if refreshes != 1 {
		t.Errorf("%d refresh grants reached the OP for one due token, want exactly 1", refreshes)
	}
	if ok.Load() != 100 || !stillIn {
		t.Errorf("%d of 100 requests answered for the user (%d thrown out, %d other); signed in afterwards: %v",
			ok.Load(), thrownOut.Load(), other.Load(), stillIn)
	}
	// Rotated refresh tokens included, no secret reached a log.
	t.Run("secrets_audit", func(t *testing.T) { secretsAudit(t, s) })
}

// floodCap is design P9: the server-side memory that 100,000 anonymous
// navigations to a guarded page may hold, replicas, oxd-server and Redis
// together.
const floodCap = 20 << 20

// TestAnonymousFlood is scenario (g): 100,000 anonymous navigations to a
// guarded page; the memory they leave held (RSS of both replicas and
// oxd-server once freed memory is returned, Redis used_memory) stays under
// floodCap; the replicas keep nothing per navigation and the engine at most
// its per-site bound of pending logins; signed-in users are served
// throughout and still signed in after; the oldest pending login, evicted,
// fails cleanly and restarts at the OP.
func TestAnonymousFlood(t *testing.T) {
	if !longOnly(t) {
		return
	}
	const navigations, workers = 100_000, 32
	s := startStack(t, "flood")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	users := make([]*load.Browser, 8)
	for i := range users {
		users[i] = s.browser(fmt.Sprintf("resident%d", i))
	}
	if _, in := s.loginAll(t, users); len(in) != len(users) {
		t.FailNow()
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.redis.Addr()})
	defer rdb.Close()
	// snap is one reading: the RSS of each process (replicas, oxd-server),
	// the replicas' live heaps after a collection, Redis used_memory; the
	// replicas' heap profiles go next to the logs.
	type snap struct {
		rss      map[string]int64
		live     map[string]int64
		rssSum   int64
		redisMem int64
		keys     int64
	}
	mem := func(label string) snap {
		sn := snap{rss: map[string]int64{}, live: map[string]int64{}}
		for _, a := range s.apps {
			h, err := a.LiveHeap(ctx) // first: it collects and returns freed memory
			if err != nil {
				t.Fatal(err)
			}
			sn.live["app-"+a.Name] = h
			sn.rss["app-"+a.Name] = load.RSSBytes(a.Proc.PID())
			if err := a.SaveHeapProfile(ctx, filepath.Join(s.env.Dir, "heap-"+a.Name+"-"+label+".pb.gz")); err != nil {
				t.Fatal(err)
			}
		}
		sn.rss["oxd-server"] = load.RSSBytes(s.oxd.Proc.PID())
		for _, v := range sn.rss {
			sn.rssSum += v
		}
		info, err := rdb.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(info))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "used_memory:"); ok {
				sn.redisMem, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		sn.keys, _ = rdb.DBSize(ctx).Result()
		return sn
	}
	before := mem("before")
	// A login started before the flood: its state is the oldest pending
	// value when the flood passes the per-site bound, so it is evicted.
	early := s.browser("early")
	earlyCallback, _, err := early.LoginBegin(ctx, s.op.Issuer, 0)
	if err != nil {
		t.Fatal(err)
	}

	bg := startTraffic(s, users, false)
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	hc := &http.Client{Transport: s.tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= navigations {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.rr.URL+"/private/flood", nil)
				req.Header.Set("Accept", "text/html")
				resp, err := hc.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	bg.end(t, "signed-in traffic during the flood")
	// Nothing signed-in was evicted: every resident is still signed in.
	for _, u := range users {
		r, err := u.Get(ctx, "/private/"+u.User+"/after-flood", -1)
		if err != nil || r.Status != http.StatusOK || !strings.Contains(r.Body, "sub="+u.User+" ") {
			t.Errorf("%s after the flood: %v %+v", u.User, err, r)
		}
	}
	// The login started before the flood fails cleanly and restarts: its
	// callback sends the browser to the OP again, and that login succeeds.
	r, err := early.Get(ctx, earlyCallback, 1)
	restarted := err == nil && isOPRedirect(r, s.op.Issuer)
	if !restarted {
		t.Errorf("callback of a login evicted by the flood: want a 303 to the OP (a restart), got %v %+v", err, r)
	}
	if _, err := early.Login(ctx, s.op.Issuer, 1, 0); err != nil {
		t.Errorf("login after the evicted one: %v", err)
	}

	after := mem("after")
	delta := func(a, b map[string]int64) map[string]int64 {
		d := map[string]int64{}
		for k, v := range b {
			d[k] = v - a[k]
		}
		return d
	}
	// What the flood leaves held: the processes' RSS once the Go runtime
	// has returned the memory it freed (the replicas at once, through
	// their debug listener; oxd-server within its periodic collection,
	// every 2 minutes, and the scavenger after it) and Redis used_memory.
	// The RSS right after the flood is recorded too: it holds the garbage
	// of the last requests, not state.
	settled, t1 := after, time.Now()
	heldOf := func(sn snap) int64 { return sn.rssSum - before.rssSum + sn.redisMem - before.redisMem }
	for heldOf(settled) > floodCap && time.Since(t1) < 150*time.Second {
		time.Sleep(5 * time.Second)
		settled = mem("settled")
	}
	held := heldOf(settled)
	s.rec(t, "g_anonymous_flood", map[string]any{
		"navigations": navigations, "seconds": el.Seconds(), "per_s": float64(navigations) / el.Seconds(), "not_redirected": bad.Load(),
		"rss_delta_right_after_bytes": after.rssSum - before.rssSum, "rss_delta_right_after_by_process": delta(before.rss, after.rss),
		"settle_seconds": time.Since(t1).Seconds(), "rss_delta_bytes": settled.rssSum - before.rssSum, "rss_delta_by_process": delta(before.rss, settled.rss),
		"live_heap_delta_by_replica":    delta(before.live, settled.live),
		"redis_used_memory_delta_bytes": settled.redisMem - before.redisMem, "redis_keys_delta": settled.keys - before.keys,
		"held_bytes": held, "held_right_after_bytes": heldOf(after), "cap_bytes": floodCap,
		"signed_in_requests": bg.lat.N(), "signed_in_p99_ms": load.Ms(bg.lat.Quantile(0.99)), "evicted_login_restarted": restarted,
	})
	// The replicas keep nothing per navigation (pending logins are in
	// sealed cookies): their live heaps grow by their connection pools at
	// most.
	for k, d := range delta(before.live, settled.live) {
		if d > 4<<20 {
			t.Errorf("%s: live heap grew by %.1f MB during the flood", k, float64(d)/(1<<20))
		}
	}
	// The engine keeps at most its per-site bound of pending logins, one
	// value each.
	if k := settled.keys - before.keys; k > oxdserver.DefaultMaxValuesPerGroup+16 {
		t.Errorf("the flood left %d more Redis keys, want at most the per-site bound %d", k, oxdserver.DefaultMaxValuesPerGroup)
	}
	if bad.Load() > 0 {
		t.Errorf("%d of %d anonymous navigations were not redirected to the OP", bad.Load(), navigations)
	}
	if held > floodCap {
		t.Errorf("100,000 anonymous navigations hold %.1f MB (replicas and oxd-server RSS %+.1f MB, Redis %+.1f MB, %+d keys), cap %d MB",
			float64(held)/(1<<20), float64(settled.rssSum-before.rssSum)/(1<<20), float64(settled.redisMem-before.redisMem)/(1<<20), settled.keys-before.keys, floodCap>>20)
	}
}
