package oxd

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdtest"
	"github.com/oxdgo/oxd/redislock"
	"github.com/oxdgo/oxd/scsredis"
)

// startReplicaB starts a second application instance for fa's site: its
// own Auth and session manager on store, sharing fa's clock.
func startReplicaB(t *testing.T, fa *flowApp, store scs.Store, lock RefreshLock) *httptest.Server {
	t.Helper()
	smB := scs.New()
	smB.Store = store
	authB, err := New(fa.srv.Client, smB, Config{
		OxdID: fa.srv.OxdID, PostLogoutRedirectURI: fa.app.URL + "/logged-out",
		PendingLoginKey: testPendingKey, RefreshLock: lock,
	})
	if err != nil {
		t.Fatal(err)
	}
	authB.now = fa.now
	mux := http.NewServeMux()
	mux.Handle("/private/", authB.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		fmt.Fprintf(w, "sub=%s|at=%s|replica=B", u.Subject, u.AccessToken().Reveal())
	})))
	mux.Handle("GET /callback", authB.CallbackHandler())
	appB := httptest.NewUnstartedServer(smB.LoadAndSave(mux))
	appB.Config.ErrorLog = log.New(io.Discard, "", 0)
	appB.StartTLS()
	t.Cleanup(appB.Close)
	return appB
}

// TestRefreshSingleFlightAcrossReplicas (load and fault suite, scenario c;
// refresh across replicas): two replicas share a Redis session store and a
// Redis refresh lock; 100 parallel requests of one user whose access token
// is due, spread over both, cause exactly one refresh at the development
// OP (which rotates refresh tokens), every request is served with the new
// access token, and the user stays signed in on both.
func TestRefreshSingleFlightAcrossReplicas(t *testing.T) {
	for _, topo := range []string{"single", "cluster"} {
		t.Run(topo, func(t *testing.T) {
			var store scs.Store
			var lock RefreshLock
			if topo == "single" {
				rdb := redistest.Start(t).Client(t)
				store, lock = scsredis.New(rdb), redislock.New(rdb, "")
			} else {
				rdb := redistest.StartCluster(t).Client(t)
				store, lock = scsredis.New(rdb), redislock.New(rdb, "")
			}
			fa := newFlowApp(t, "inprocess", func(*testing.T) scs.Store { return store })
			fa.auth.lock = lock
			appB := startReplicaB(t, fa, store, lock)

			b := fa.browser()
			if r := fa.login(b, "/private/x", "alice", "alice-password"); r.status != http.StatusSeeOther {
				t.Fatalf("login: %d", r.status)
			}
			r := fa.do(b, "GET", "/private/x", nil)
			at1 := field(r.body, "at")
			if r.status != 200 || at1 == "" {
				t.Fatalf("signed in: %d %q", r.status, r.body)
			}
			// The access token lives 2 minutes: past half of it, it is due.
			fa.clockD.Add(int64(61 * time.Second))
			before := fa.srv.OP.Calls(oxdtest.EndpointToken)
			const n = 100
			ats := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					target := "/private/r"
					if i%2 == 1 {
						target = appB.URL + "/private/r"
					}
					r := fa.do(b, "GET", target, nil)
					if r.status != 200 {
						t.Errorf("request %d: %d %q", i, r.status, r.body)
					}
					ats[i] = field(r.body, "at")
				})
			}
			wg.Wait()
			refreshes := fa.srv.OP.Calls(oxdtest.EndpointToken) - before
			t.Logf("%d parallel requests over two replicas: %d refresh(es) at the OP", n, refreshes)
			if refreshes != 1 {
				t.Fatalf("token endpoint called %d times, want exactly 1", refreshes)
			}
			for i, at := range ats {
				if at == "" || at == at1 || at != ats[0] {
					t.Fatalf("request %d: access token %q (first %q, before %q)", i, at, ats[0], at1)
				}
			}
			for _, target := range []string{"/private/after", appB.URL + "/private/after"} {
				if r := fa.do(b, "GET", target, nil); r.status != 200 || field(r.body, "at") != ats[0] {
					t.Fatalf("%s after the refresh: %d %q", target, r.status, r.body)
				}
			}
		})
	}
}

// deadHolderLock plays a replica that took the refresh lock and died
// before releasing it: the first TryLock finds the lock held by "dead"
// for ttl.
type deadHolderLock struct {
	RefreshLock
	once sync.Once
	ttl  time.Duration
}

func (d *deadHolderLock) TryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	d.once.Do(func() { _, _ = d.RefreshLock.TryLock(ctx, key, "dead", d.ttl) })
	return d.RefreshLock.TryLock(ctx, key, token, ttl)
}

// TestRefreshLockHolderDied: a replica that dies holding the refresh lock
// delays the refresh by the lock's lifetime only; then exactly one refresh
// happens and nobody is thrown out.
func TestRefreshLockHolderDied(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	store := scsredis.New(rdb)
	lock := &deadHolderLock{RefreshLock: redislock.New(rdb, ""), ttl: time.Second}
	fa := newFlowApp(t, "inprocess", func(*testing.T) scs.Store { return store })
	fa.auth.lock = lock
	appB := startReplicaB(t, fa, store, lock)
	b := fa.browser()
	if r := fa.login(b, "/private/x", "alice", "alice-password"); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}
	fa.clockD.Add(int64(61 * time.Second))
	before := fa.srv.OP.Calls(oxdtest.EndpointToken)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			target := "/private/r"
			if i%2 == 1 {
				target = appB.URL + "/private/r"
			}
			if r := fa.do(b, "GET", target, nil); r.status != 200 {
				t.Errorf("request %d: %d %q", i, r.status, r.body)
			}
		})
	}
	wg.Wait()
	if n := fa.srv.OP.Calls(oxdtest.EndpointToken) - before; n != 1 {
		t.Fatalf("token endpoint called %d times, want 1", n)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("the refresh did not wait for the dead holder's lock to expire (%v)", d)
	}
}
