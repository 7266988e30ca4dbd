package oxd

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
	"github.com/oxdgo/oxd/sessionindex"
)

// inFlight runs one request of the session with cookie token through
// sm.LoadAndSave(h) in the background; h has loaded the session when
// inFlight returns, and finishes (scs then commits) when release is
// closed. The returned channel is closed when the request is done.
func inFlight(t *testing.T, sm *scs.SessionManager, token string, put bool) (release chan struct{}, done chan struct{}) {
	t.Helper()
	loaded, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(loaded)
		<-release
		if put {
			sm.Put(r.Context(), "app.visits", 2)
		}
	}))
	req := httptest.NewRequest("GET", "https://app.example/private/", nil)
	req.AddCookie(&http.Cookie{Name: sm.Cookie.Name, Value: token})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}()
	<-loaded
	return release, done
}

// storedSession returns a new session's token, committed to sm's store.
func storedSession(t *testing.T, sm *scs.SessionManager) string {
	t.Helper()
	ctx, err := sm.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	sm.Put(ctx, "app.visits", 1)
	token, _, err := sm.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestEndedSessionNotWrittenBack: a request that loaded a session before a
// logout ended it (mark, then delete, as every logout of the middleware
// does) and that writes the session afterwards (the handler changed it,
// or scs's IdleTimeout rewrites every session) does not bring it back:
// the store guard deletes it again. The control without the guard shows
// the write-back the guard prevents.
func TestEndedSessionNotWrittenBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		idle    time.Duration
		put     bool
		hash    bool
		guarded bool
	}{
		{"PutGuarded", 0, true, false, true},
		{"IdleTimeoutGuarded", time.Hour, false, false, true},
		{"HashTokenInStoreGuarded", time.Hour, true, true, true},
		{"PutUnguardedControl", 0, true, false, false},
		{"IdleTimeoutUnguardedControl", time.Hour, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := sessionindex.NewMemory(sessionindex.MemoryOptions{})
			sm := scs.New()
			sm.IdleTimeout = tc.idle
			sm.HashTokenInStore = tc.hash
			a, err := New(oxdclientFor(t), sm, Config{OxdID: "oxd-id-1", SessionIndex: idx})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := sm.Store.(*endedGuard); !ok {
				t.Fatalf("New did not guard the store (%T)", sm.Store)
			}
			if !tc.guarded {
				sm.Store = unguarded(sm.Store)
			}
			token := storedSession(t, sm)
			key := a.storeKey(token)
			release, done := inFlight(t, sm, token, tc.put)
			if err := a.endStoreKey(context.Background(), key); err != nil {
				t.Fatal(err)
			}
			if _, found, _ := sm.Store.Find(key); found {
				t.Fatal("the session is still in the store after it was ended")
			}
			close(release)
			<-done
			_, found, err := sm.Store.Find(key)
			if err != nil {
				t.Fatal(err)
			}
			if tc.guarded && found {
				t.Fatal("the request in flight wrote the ended session back")
			}
			if !tc.guarded && !found {
				t.Fatal("control: without the guard the write-back should have happened (the race this guards against)")
			}
		})
	}
}

// failingEnded is an index whose Ended fails.
type failingEnded struct{ SessionIndex }

func (failingEnded) Ended(context.Context, string) (bool, error) {
	return false, errors.New("index down")
}

// TestGuardFailsClosed: when the index cannot be asked after a write, the
// session is deleted and the write reports an error (scs answers 500).
func TestGuardFailsClosed(t *testing.T) {
	sm := scs.New()
	if _, err := New(oxdclientFor(t), sm, Config{OxdID: "oxd-id-1", SessionIndex: failingEnded{sessionindex.NewMemory(sessionindex.MemoryOptions{})}}); err != nil {
		t.Fatal(err)
	}
	ctx, _ := sm.Load(context.Background(), "")
	sm.Put(ctx, "app.visits", 1)
	token, _, err := sm.Commit(ctx)
	if err == nil || !strings.Contains(err.Error(), "index down") {
		t.Fatalf("Commit = %v; want the index's error", err)
	}
	if _, found, _ := sm.Store.Find(token); found {
		t.Fatal("a session written while the index was down was kept")
	}
}

// TestGuardPassesThrough: reads, deletes, iteration and a second New on
// the same manager (no second wrapper) behave as the wrapped store's; a
// session that was not ended is written normally.
func TestGuardPassesThrough(t *testing.T) {
	idx := sessionindex.NewMemory(sessionindex.MemoryOptions{})
	sm := scs.New()
	inner := sm.Store
	for range 2 {
		if _, err := New(oxdclientFor(t), sm, Config{OxdID: "oxd-id-1", SessionIndex: idx}); err != nil {
			t.Fatal(err)
		}
	}
	g, ok := sm.Store.(*endedGuard)
	if !ok || g.Unwrap() != inner {
		t.Fatalf("store = %T; want one guard over the memstore", sm.Store)
	}
	token := storedSession(t, sm)
	if _, found, _ := sm.Store.Find(token); !found {
		t.Fatal("a live session was not written")
	}
	if err := sm.Iterate(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("Iterate through the guard: %v", err)
	}
	if err := sm.Store.Delete(token); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := inner.Find(token); found {
		t.Fatal("Delete did not reach the wrapped store")
	}
	// A store that cannot iterate: an error, not a panic.
	ng := &endedGuard{inner: findOnly{memstore.New()}, idx: idx}
	if _, err := ng.All(); !errors.Is(err, errNotIterable) {
		t.Fatalf("All on a non-iterable store = %v", err)
	}
}

type findOnly struct{ s *memstore.MemStore }

func (f findOnly) Find(t string) ([]byte, bool, error)          { return f.s.Find(t) }
func (f findOnly) Commit(t string, b []byte, e time.Time) error { return f.s.Commit(t, b, e) }
func (f findOnly) Delete(t string) error                        { return f.s.Delete(t) }

// TestBackChannelLogoutRaceWithRequestInFlight: alice's request on replica
// 1 loaded her session and is still running when she signs out at the OP;
// the back-channel logout ends the session on both replicas; the request
// then changes the session (scs commits it after the handler). The
// session stays ended on both replicas (shared Redis store and index).
func TestBackChannelLogoutRaceWithRequestInFlight(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{}, true, false, nil)
	alice := rs.browser()
	rs.login(alice, 0, "alice", "alice-password")
	rs.holdLoaded = make(chan struct{})
	rs.holdRelease = make(chan struct{})
	done := make(chan int)
	go func() {
		st, _, _ := rs.do(alice, "GET", rs.apps[1].URL+"/private/hold", nil)
		done <- st
	}()
	<-rs.holdLoaded
	rs.opLogout(alice)
	rs.waitAnonymous(alice, time.Second, "alice still signed in one second after the OP's logout")
	close(rs.holdRelease)
	if st := <-done; st != http.StatusOK {
		t.Fatalf("the request in flight: %d", st)
	}
	for i := range 2 {
		rs.expect(alice, i, "")
	}
}

func oxdclientFor(t *testing.T) *oxdclient.Client {
	t.Helper()
	return oxdclient.New(newFakeOxd(), oxdclient.Config{})
}

// TestGuardCanceledRequestKeepsLiveSession: scs writes the session of a
// request whose client went away (its context canceled); the guard still
// asks the index (detached from the request) and keeps a session that was
// not ended, rather than failing closed on the canceled context.
func TestGuardCanceledRequestKeepsLiveSession(t *testing.T) {
	sm := scs.New()
	if _, err := New(oxdclientFor(t), sm, Config{OxdID: "oxd-id-1", SessionIndex: sessionindex.NewMemory(sessionindex.MemoryOptions{})}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sctx, err := sm.Load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	sm.Put(sctx, "app.visits", 1)
	cancel()
	token, _, err := sm.Commit(sctx)
	if err != nil {
		t.Fatalf("Commit of a canceled request: %v", err)
	}
	if _, found, _ := sm.Store.Find(token); !found {
		t.Fatal("a live session of a canceled request was deleted")
	}
}
