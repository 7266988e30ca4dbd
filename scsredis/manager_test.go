package scsredis_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/scsredis"
)

// backend gives a test a fresh UniversalClient on a real Redis (a new
// client, with its own pool, on each call: one per replica).
type backend struct {
	name      string
	newClient func(t *testing.T) redis.UniversalClient
}

func backends(t *testing.T) []backend {
	t.Helper()
	srv := redistest.Start(t)
	cl := redistest.StartCluster(t)
	return []backend{
		{"single", func(t *testing.T) redis.UniversalClient { return singleClient(t, srv) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return clusterClient(t, cl) }},
	}
}

// newManager is an scs SessionManager on a Store of client, with its own
// prefix when prefix is not empty.
func newManager(client redis.UniversalClient, prefix string) (*scs.SessionManager, *scsredis.Store) {
	st := scsredis.NewWithPrefix(client, prefix)
	sm := scs.New()
	sm.Store = st
	sm.Lifetime = time.Hour
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "session store: "+err.Error(), http.StatusInternalServerError)
	}
	return sm, st
}

// newApp serves /put?v=…, /get, /renew and /destroy through sm.LoadAndSave.
func newApp(t *testing.T, sm *scs.SessionManager, name string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "v", r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s", sm.GetString(r.Context(), "v"), name)
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	srv := httptest.NewUnstartedServer(sm.LoadAndSave(mux))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

type browser struct {
	t   *testing.T
	c   *http.Client
	jar *cookiejar.Jar
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// get requests base+path and returns the status and body.
func (b *browser) get(base, path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// value is the session value the app at base shows (the part before "|").
func (b *browser) value(base string) string {
	b.t.Helper()
	code, body := b.get(base, "/get")
	if code != http.StatusOK {
		b.t.Fatalf("GET %s/get: %d %q", base, code, body)
	}
	v, _, _ := strings.Cut(body, "|")
	return v
}

// token is the session cookie the browser holds for base ("" when none).
func (b *browser) token(base string) string {
	u, _ := url.Parse(base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

// setToken makes the browser present token as its session cookie.
func (b *browser) setToken(base, token string) {
	u, _ := url.Parse(base)
	b.jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: token, Path: "/"}})
}

func mustFound(t *testing.T, st *scsredis.Store, token string, want bool) {
	t.Helper()
	_, found, err := st.FindCtx(ctxOf(t), token)
	if err != nil || found != want {
		t.Fatalf("session in Redis: found %v (%v), want %v", found, err, want)
	}
}

func countSessions(t *testing.T, st *scsredis.Store) int {
	t.Helper()
	all, err := st.AllCtx(ctxOf(t))
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// TestSessionManager drives scs's LoadAndSave over the store through real
// HTTP: put, get, renew the token, destroy, expiry by Lifetime and by
// IdleTimeout, hashed tokens, on a single node and on a Cluster.
func TestSessionManager(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			t.Run("PutGetRenewDestroy", func(t *testing.T) {
				sm, st := newManager(be.newClient(t), uniquePrefix())
				app := newApp(t, sm, "a")
				b := newBrowser(t)
				if v := b.value(app.URL); v != "" || b.token(app.URL) != "" || countSessions(t, st) != 0 {
					t.Fatalf("a first visit that stores nothing made a session: %q", v)
				}
				b.get(app.URL, "/put?v=hello")
				tok1 := b.token(app.URL)
				if tok1 == "" {
					t.Fatal("no session cookie after put")
				}
				mustFound(t, st, tok1, true)
				if v := b.value(app.URL); v != "hello" {
					t.Fatalf("get = %q", v)
				}
				b.get(app.URL, "/renew")
				tok2 := b.token(app.URL)
				if tok2 == "" || tok2 == tok1 {
					t.Fatal("RenewToken did not change the token")
				}
				mustFound(t, st, tok1, false)
				mustFound(t, st, tok2, true)
				if v := b.value(app.URL); v != "hello" {
					t.Fatalf("get after renew = %q", v)
				}
				// Someone holding the old token has nothing.
				old := newBrowser(t)
				old.setToken(app.URL, tok1)
				if v := old.value(app.URL); v != "" {
					t.Fatalf("the old token still reads the session: %q", v)
				}
				b.get(app.URL, "/destroy")
				mustFound(t, st, tok2, false)
				if b.token(app.URL) != "" {
					t.Fatal("the cookie survived Destroy")
				}
				stale := newBrowser(t)
				stale.setToken(app.URL, tok2)
				if v := stale.value(app.URL); v != "" {
					t.Fatalf("a destroyed token still reads the session: %q", v)
				}
				if n := countSessions(t, st); n != 0 {
					t.Fatalf("%d sessions left after destroy", n)
				}
			})
			t.Run("Lifetime", func(t *testing.T) {
				// The reads within the lifetime have a second on a loaded
				// machine; the wait for its end counts from the put.
				const lifetime = time.Second
				sm, st := newManager(be.newClient(t), uniquePrefix())
				sm.Lifetime = lifetime
				app := newApp(t, sm, "a")
				b := newBrowser(t)
				b.get(app.URL, "/put?v=short")
				createdBy := time.Now() // the session was made before this
				tok := b.token(app.URL)
				if v := b.value(app.URL); v != "short" {
					t.Fatalf("get = %q", v)
				}
				time.Sleep(time.Until(createdBy.Add(lifetime + 50*time.Millisecond)))
				if v := b.value(app.URL); v != "" {
					t.Fatalf("get after the lifetime = %q", v)
				}
				mustFound(t, st, tok, false) // Redis expired the key itself
			})
			t.Run("IdleTimeout", func(t *testing.T) {
				// Each visit comes a third of the idle timeout after the
				// previous one (two thirds of it left for the requests on a
				// loaded machine), 1.6 s in all: longer than the timeout.
				const idle = 1200 * time.Millisecond
				sm, st := newManager(be.newClient(t), uniquePrefix())
				sm.IdleTimeout = idle
				app := newApp(t, sm, "a")
				b := newBrowser(t)
				b.get(app.URL, "/put?v=idle")
				tok := b.token(app.URL)
				for range 4 {
					time.Sleep(idle / 3)
					if v := b.value(app.URL); v != "idle" {
						t.Fatalf("get while active = %q", v)
					}
				}
				lastBy := time.Now() // the last visit renewed the session before this
				time.Sleep(time.Until(lastBy.Add(idle + 50*time.Millisecond)))
				mustFound(t, st, tok, false)
				if v := b.value(app.URL); v != "" {
					t.Fatalf("get after the idle timeout = %q", v)
				}
			})
			t.Run("HashTokenInStore", func(t *testing.T) {
				sm, st := newManager(be.newClient(t), uniquePrefix())
				sm.HashTokenInStore = true
				app := newApp(t, sm, "a")
				b := newBrowser(t)
				b.get(app.URL, "/put?v=hashed")
				tok := b.token(app.URL)
				mustFound(t, st, tok, false) // the cookie's token is not a key
				all, err := st.AllCtx(ctxOf(t))
				if err != nil || len(all) != 1 {
					t.Fatalf("All: %d, %v", len(all), err)
				}
				for k := range all {
					if strings.Contains(k, tok) {
						t.Fatal("the stored key holds the token")
					}
				}
				if v := b.value(app.URL); v != "hashed" {
					t.Fatalf("get = %q", v)
				}
			})
		})
	}
}

// TestTwoReplicas: two application replicas, each with its own
// SessionManager, client and Store, share one Redis (single node or
// Cluster) behind a load balancer that sends each request anywhere.
func TestTwoReplicas(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			prefix := uniquePrefix()
			smA, stA := newManager(be.newClient(t), prefix)
			smB, _ := newManager(be.newClient(t), prefix)
			a, bApp := newApp(t, smA, "A"), newApp(t, smB, "B")

			u := newBrowser(t) // host-only cookies of 127.0.0.1 go to both ports
			u.get(a.URL, "/put?v=from-A")
			if _, body := u.get(bApp.URL, "/get"); body != "from-A|B" {
				t.Fatalf("B reads %q", body)
			}
			u.get(bApp.URL, "/put?v=from-B")
			if v := u.value(a.URL); v != "from-B" {
				t.Fatalf("A reads %q", v)
			}
			old := u.token(a.URL)
			u.get(bApp.URL, "/renew")
			if u.token(a.URL) == old {
				t.Fatal("renew on B did not change the token")
			}
			if v := u.value(a.URL); v != "from-B" {
				t.Fatalf("A after renew on B reads %q", v)
			}
			thief := newBrowser(t)
			thief.setToken(a.URL, old)
			if v := thief.value(a.URL); v != "" {
				t.Fatalf("the old token reads %q on A", v)
			}
			u.get(a.URL, "/destroy")
			if v := u.value(bApp.URL); v != "" {
				t.Fatalf("B after destroy on A reads %q", v)
			}

			// Many users at once, each alternating replicas on every request.
			const users, rounds = 16, 10
			var wg sync.WaitGroup
			errs := make(chan string, users)
			for i := range users {
				wg.Add(1)
				go func() {
					defer wg.Done()
					b := &browser{t: t}
					jar, _ := cookiejar.New(nil)
					b.jar, b.c = jar, &http.Client{Jar: jar, Timeout: 10 * time.Second}
					apps := []string{a.URL, bApp.URL}
					for r := range rounds {
						want := fmt.Sprintf("u%d-r%d", i, r)
						resp, err := b.c.Get(apps[r%2] + "/put?v=" + want)
						if err != nil {
							errs <- err.Error()
							return
						}
						resp.Body.Close()
						resp, err = b.c.Get(apps[(r+1)%2] + "/get")
						if err != nil {
							errs <- err.Error()
							return
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if v, _, _ := strings.Cut(string(body), "|"); v != want {
							errs <- fmt.Sprintf("user %d round %d: read %q, want %q", i, r, body, want)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatal(e)
			}
			if n := countSessions(t, stA); n != users {
				t.Fatalf("%d sessions in Redis, want %d (one per user)", n, users)
			}
		})
	}
}

// TestSessionManagerRedisDown: with Redis down the app answers 500 for a
// signed-in user instead of treating them as new (scs calls ErrorFunc), and
// the session is there again once Redis is back with its data.
func TestSessionManagerRedisDown(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{Persist: true})
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr()}, MaxRetries: -1,
		DialTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	sm, _ := newManager(c, uniquePrefix())
	app := newApp(t, sm, "a")
	b := newBrowser(t)
	b.get(app.URL, "/put?v=kept")
	tok := b.token(app.URL)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	code, body := b.get(app.URL, "/get")
	if code != http.StatusInternalServerError || strings.Contains(body, tok) {
		t.Fatalf("with Redis down: %d %q", code, body)
	}
	srv.Restart(t)
	if v := b.value(app.URL); v != "kept" {
		t.Fatalf("after restart: %q", v)
	}
}
