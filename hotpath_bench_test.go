package oxd

// In-process benchmarks of the two paths the peer benchmark (P6, P7)
// measures end to end, without the load generator and the HTTP hops: an
// authenticated request and a login callback, through the handler the
// load suite's replicas serve (sessions.LoadAndSave around a mux with
// RequireLogin and CallbackHandler), the engine in process against the
// development OP, sessions and the engine's store in Redis (scsredis and
// redisstore) or the sessions in memory.
//
//	go test -run '^$' -bench 'BenchmarkHotPath' -benchmem -count 6 .
//
// The figure to compare on a shared machine is cpu-ns/op: the CPU time of
// the process (the application, the engine, the development OP; not
// redis-server) per operation, which other processes' load does not
// inflate as much as the wall time. BENCHMARKS.md has the figures.

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
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdserver/redisstore"
	"github.com/oxdgo/oxd/oxdtest"
	"github.com/oxdgo/oxd/scsredis"
)

const hotPathApp = "https://app.example.test"

// hotPathRig is the load suite's replica in process.
type hotPathRig struct {
	srv  *oxdtest.Server
	sm   *scs.SessionManager
	h    http.Handler
	rdb  *redis.Client // nil with sessions in memory
	cmds redisCommands // the commands sent on rdb
	ok   atomic.Int64  // answers of the protected handler with a user
	auth *Auth
}

// newHotPathRig builds the replica; with store "redis" the sessions are in
// a private redis-server through scsredis, and the engine's store too
// (redisstore, as the in-process side of the peer benchmark).
func newHotPathRig(b *testing.B, store string) *hotPathRig {
	b.Helper()
	rig := &hotPathRig{}
	var ecfg oxdserver.Config
	if store == "redis" {
		rig.rdb = redistest.Start(b).Client(b)
		rig.rdb.AddHook(&rig.cmds)
		ecfg.Store = redisstore.New(rig.rdb, "oxd:")
	}
	rig.srv = oxdtest.NewServer(b, oxdtest.WithEngineConfig(ecfg),
		oxdtest.WithScopes("openid", "profile", "email", "offline_access"),
		oxdtest.WithRedirectURIs(hotPathApp+"/callback", hotPathApp+"/logged-out", ""))
	rig.sm = scs.New()
	rig.sm.Lifetime = time.Hour
	if rig.rdb != nil {
		rig.sm.Store = scsredis.New(rig.rdb)
	}
	a, err := New(rig.srv.Client, rig.sm, Config{
		OxdID:                 rig.srv.OxdID,
		RedirectURL:           hotPathApp + "/callback",
		PostLogoutRedirectURI: hotPathApp + "/logged-out",
		Scopes:                []string{"openid", "profile", "email", "offline_access"},
		CallTimeout:           10 * time.Second,
		PendingLoginKey:       testPendingKey,
		InsecureCookies:       true,
	})
	if err != nil {
		b.Fatal(err)
	}
	rig.auth = a
	b.Cleanup(a.revoker.wg.Wait)
	mux := http.NewServeMux()
	mux.Handle("/private/", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := UserFrom(r.Context()); ok && u.Subject == "alice" {
			rig.ok.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	})))
	mux.Handle("GET /callback", a.CallbackHandler())
	rig.h = rig.sm.LoadAndSave(mux)
	return rig
}

// serve answers one request carrying cookies.
func (rig *hotPathRig) serve(target string, cookies []*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, hotPathApp+target, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	rig.h.ServeHTTP(w, req)
	return w
}

// startLogin is the first visit and the OP's login form: it returns the
// callback target and the cookies the browser holds for the callback.
func (rig *hotPathRig) startLogin(tb testing.TB) (string, []*http.Cookie) {
	w := rig.serve("/private/page", nil)
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, rig.srv.OP.Issuer()) {
		tb.Fatalf("first visit: %d %q", w.Code, loc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cb, err := rig.srv.OP.Login(ctx, loc, "alice", "alice-password")
	if err != nil {
		tb.Fatal(err)
	}
	if !strings.HasPrefix(cb.String(), hotPathApp+"/callback?") {
		tb.Fatalf("the OP redirected to %s", cb)
	}
	return cb.RequestURI(), w.Result().Cookies()
}

// finishLogin is the callback; it returns the session cookie.
func (rig *hotPathRig) finishLogin(tb testing.TB, target string, cookies []*http.Cookie) *http.Cookie {
	w := rig.serve(target, cookies)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/private/page" {
		tb.Fatalf("callback: %d %q %q", w.Code, w.Header().Get("Location"), w.Body.String())
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == rig.sm.Cookie.Name && c.Value != "" {
			return c
		}
	}
	tb.Fatal("the callback set no session cookie")
	return nil
}

// redisCommands is a go-redis hook that counts commands by name.
type redisCommands struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *redisCommands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *redisCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *redisCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.add(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *redisCommands) add(cmd redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[cmd.Name()]++
}

// take returns the counts so far and starts again from zero.
func (c *redisCommands) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}

func hotPathStores(b *testing.B, f func(b *testing.B, rig *hotPathRig)) {
	for _, store := range []string{"memory", "redis"} {
		b.Run(store, func(b *testing.B) { f(b, newHotPathRig(b, store)) })
	}
}

// BenchmarkHotPathRequest is an authenticated request with a session of a
// real login (the development OP's ID token, userinfo claims, access and
// refresh tokens): session load and decode, RequireLogin, the handler,
// LoadAndSave's end (the session is unchanged: nothing is written).
func BenchmarkHotPathRequest(b *testing.B) {
	hotPathStores(b, func(b *testing.B, rig *hotPathRig) {
		target, cookies := rig.startLogin(b)
		sess := []*http.Cookie{rig.finishLogin(b, target, cookies)}
		req := httptest.NewRequest(http.MethodGet, hotPathApp+"/private/page", nil)
		req.AddCookie(sess[0])
		w := &benchWriter{h: http.Header{}}
		rig.ok.Store(0)
		rig.cmds.take()
		n := 0
		b.ReportAllocs()
		start := processCPU()
		for b.Loop() {
			clear(w.h)
			w.status = 0
			rig.h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
			n++
		}
		b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(n), "cpu-ns/op")
		if got := rig.ok.Load(); got != int64(n) {
			b.Fatalf("%d of %d requests saw the user", got, n)
		}
		if len(w.h.Values("Set-Cookie")) != 0 {
			b.Fatal("an unchanged session was written back")
		}
		// One round trip per request: the session's GET, no write.
		if got := rig.cmds.take(); rig.rdb != nil && (len(got) != 1 || got["get"] != n) {
			b.Fatalf("Redis commands of %d requests: %v, want %d GETs and nothing else", n, got, n)
		}
	})
}

// BenchmarkHotPathDecode is the session decoding alone, of the session a
// real login left (the part of BenchmarkHotPathRequest that is this
// package's code, without the store and HTTP serving).
func BenchmarkHotPathDecode(b *testing.B) {
	rig := newHotPathRig(b, "memory")
	target, cookies := rig.startLogin(b)
	sess := rig.finishLogin(b, target, cookies)
	enc, found, err := rig.sm.Store.Find(sess.Value)
	if err != nil || !found {
		b.Fatalf("the session is not in the store (%v)", err)
	}
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		_, values, err := rig.sm.Codec.Decode(enc)
		if err != nil {
			b.Fatal(err)
		}
		if u, _ := values[sessionKeyUser].(*User); u == nil || u.Subject != "alice" {
			b.Fatal("no user in the session")
		}
	}
	b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(enc)), "bytes")
}

// BenchmarkHotPathCallback is the login callback alone (the first visit
// and the OP's login form are outside the timer): the pending-login
// cookie, get_tokens_by_code through the engine (state and nonce taken
// from its store, the code exchange at the OP, the ID token check),
// get_user_info, the session written. The OP's token and userinfo
// endpoints answer inside the timed part.
func BenchmarkHotPathCallback(b *testing.B) {
	hotPathStores(b, func(b *testing.B, rig *hotPathRig) {
		b.ReportAllocs()
		var cpu time.Duration
		cmds := map[string]int{}
		for b.Loop() {
			b.StopTimer()
			target, cookies := rig.startLogin(b)
			rig.cmds.take()
			b.StartTimer()
			start := processCPU()
			rig.finishLogin(b, target, cookies)
			cpu += processCPU() - start
			for k, v := range rig.cmds.take() {
				cmds[k] += v
			}
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		if rig.rdb != nil {
			total := 0
			for _, v := range cmds {
				total += v
			}
			b.ReportMetric(float64(total)/float64(b.N), "redis-cmds/op")
			b.Logf("Redis commands of %d callbacks: %v", b.N, cmds)
		}
	})
}

// BenchmarkHotPathLogin is a whole login (first visit, the OP's login
// form, the callback): what one login costs the process, OP included.
func BenchmarkHotPathLogin(b *testing.B) {
	hotPathStores(b, func(b *testing.B, rig *hotPathRig) {
		b.ReportAllocs()
		start := processCPU()
		for b.Loop() {
			target, cookies := rig.startLogin(b)
			rig.finishLogin(b, target, cookies)
		}
		b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
}
