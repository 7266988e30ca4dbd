package oxd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
	"github.com/oxdgo/oxd/scsredis"
)

// keyRecordingStore is the engine's in-memory store, recording the keys of
// the one-time values put into it, so that a test can count how many are
// still held.
type keyRecordingStore struct {
	*oxdserver.MemoryStore
	mu   sync.Mutex
	keys []string
}

func (s *keyRecordingStore) PutValue(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	return s.MemoryStore.PutValue(ctx, key, v, ttl)
}

// held takes every recorded key and counts those still present (it
// empties the store of them).
func (s *keyRecordingStore) held(ctx context.Context) int {
	s.mu.Lock()
	keys := s.keys
	s.keys = nil
	s.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, err := s.MemoryStore.TakeValue(ctx, k); err == nil {
			n++
		}
	}
	return n
}

func countSessions(t *testing.T, st scs.Store) int {
	t.Helper()
	all, err := st.(scs.IterableStore).All()
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// TestAnonymousFloodHoldsNoSession (load and fault suite, scenario g;
// unbounded anonymous state): 100,000 anonymous navigations to a
// RequireLogin page, in process, through the real engine and development
// OP, leave the session store (memory and Redis) without a single new
// session, the engine's pending states and nonces within its bounds, and a
// user signed in before the flood still signed in after it.
func TestAnonymousFloodHoldsNoSession(t *testing.T) {
	// 100,000 in a normal run; with -race or -short a quarter, still more
	// than the engine's bounds on states and nonces together.
	navigations := int64(100_000)
	if raceEnabled || testing.Short() {
		navigations = 25_000
	}
	for _, st := range []struct {
		name string
		mk   func(*testing.T) scs.Store
	}{{"memstore", memStore}, {"scsredis", func(t *testing.T) scs.Store {
		return scsredis.New(redistest.Start(t).Client(t))
	}}} {
		t.Run(st.name, func(t *testing.T) {
			engineStore := &keyRecordingStore{MemoryStore: oxdserver.NewMemoryStore()}
			fa := newFlowApp(t, "inprocess", st.mk, oxdtest.WithEngineConfig(oxdserver.Config{Store: engineStore}))
			alice := fa.browser()
			if r := fa.login(alice, "/private/before", "alice", "alice-password"); r.status != http.StatusSeeOther {
				t.Fatalf("login: %d", r.status)
			}
			before := countSessions(t, fa.sm.Store)
			if before != 1 {
				t.Fatalf("%d sessions after one login", before)
			}

			h := fa.sm.LoadAndSave(fa.auth.RequireLogin(http.NotFoundHandler()))
			var redirected, sessionCookies, cookieBytes atomic.Int64
			var next atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for next.Add(1) <= navigations {
						req := httptest.NewRequest(http.MethodGet, fa.app.URL+"/private/page", nil)
						req.Header.Set("Accept", "text/html")
						w := httptest.NewRecorder()
						h.ServeHTTP(w, req)
						if w.Code == http.StatusSeeOther && strings.HasPrefix(w.Header().Get("Location"), fa.srv.OP.Issuer()) {
							redirected.Add(1)
						}
						for _, c := range w.Result().Cookies() {
							if c.Name == fa.sm.Cookie.Name {
								sessionCookies.Add(1)
							} else {
								cookieBytes.Add(int64(len(c.Name) + len(c.Value)))
							}
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			if redirected.Load() != navigations {
				t.Fatalf("%d of %d navigations redirected to the OP", redirected.Load(), navigations)
			}
			if n := sessionCookies.Load(); n != 0 {
				t.Fatalf("%d session cookies set for anonymous navigations", n)
			}
			if after := countSessions(t, fa.sm.Store); after != before {
				t.Fatalf("sessions: %d before the flood, %d after", before, after)
			}
			// The engine keeps at most DefaultMaxValuesPerGroup states and
			// as many nonces for the site.
			held := engineStore.held(context.Background())
			if held > 2*oxdserver.DefaultMaxValuesPerGroup {
				t.Fatalf("the engine holds %d pending values, over its bound %d", held, 2*oxdserver.DefaultMaxValuesPerGroup)
			}
			t.Logf("%d anonymous navigations in %v: 0 sessions, engine holds %d pending values (bound %d), %.0f cookie bytes per navigation sent to the browser",
				navigations, elapsed.Round(time.Millisecond), held, 2*oxdserver.DefaultMaxValuesPerGroup, float64(cookieBytes.Load())/float64(navigations))

			// Alice was not affected.
			if r := fa.do(alice, "GET", "/private/after", nil); r.status != http.StatusOK || field(r.body, "sub") != "alice" {
				t.Fatalf("signed-in user after the flood: %d %q", r.status, r.body)
			}
			// A login started now still completes.
			if r := fa.login(fa.browser(), "/private/new", "bob", "bob-password"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/private/new" {
				t.Fatalf("login after the flood: %d %q", r.status, r.header.Get("Location"))
			}
		})
	}
}
