package scsredis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/internal/scsstoretest"
	"github.com/oxdgo/oxd/scsredis"
)

var prefixSeq atomic.Int64

// uniquePrefix separates the subtests sharing one Redis.
func uniquePrefix() string {
	return fmt.Sprintf("test:%d:session:", prefixSeq.Add(1))
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// singleClient is a UniversalClient of a fresh redis-server (one address:
// a *redis.Client).
func singleClient(t *testing.T, srv *redistest.Server) redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { _ = c.Close() })
	if _, ok := c.(*redis.Client); !ok {
		t.Fatalf("NewUniversalClient with one address made a %T", c)
	}
	return c
}

// clusterClient is a UniversalClient of a Cluster (several addresses: a
// *redis.ClusterClient).
func clusterClient(t *testing.T, cl *redistest.Cluster) redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { _ = c.Close() })
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("NewUniversalClient with several addresses made a %T", c)
	}
	return c
}

func TestContractSingleNode(t *testing.T) {
	c := singleClient(t, redistest.Start(t))
	scsstoretest.Run(t, func(t *testing.T) scs.Store { return scsredis.NewWithPrefix(c, uniquePrefix()) })
}

func TestContractCluster(t *testing.T) {
	c := clusterClient(t, redistest.StartCluster(t))
	scsstoretest.Run(t, func(t *testing.T) scs.Store { return scsredis.NewWithPrefix(c, uniquePrefix()) })
}

// TestContractRing: a Ring shards the keys over independent servers; All
// walks every shard.
func TestContractRing(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": a.Addr(), "b": b.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	scsstoretest.Run(t, func(t *testing.T) scs.Store { return scsredis.NewWithPrefix(ring, uniquePrefix()) })
	// Both shards hold sessions (so All did walk both).
	for _, s := range []*redistest.Server{a, b} {
		if n, err := s.Client(t).DBSize(ctxOf(t)).Result(); err != nil || n == 0 {
			t.Fatalf("shard %s holds %d keys (%v)", s.Addr(), n, err)
		}
	}
}

// TestClusterSpreadsSessions: keys carry no hash tag, so sessions land on
// every primary, and All finds the ones on every primary.
func TestClusterSpreadsSessions(t *testing.T) {
	cl := redistest.StartCluster(t)
	st := scsredis.New(clusterClient(t, cl))
	ctx := ctxOf(t)
	want := map[string]bool{}
	for range 60 {
		tok := scsstoretest.Token()
		want[tok] = true
		if err := st.CommitCtx(ctx, tok, []byte("x"), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range cl.Nodes() {
		if size, err := n.Client(t).DBSize(ctx).Result(); err != nil || size == 0 {
			t.Fatalf("primary %s holds %d sessions (%v)", n.Addr(), size, err)
		}
	}
	all, err := st.AllCtx(ctx)
	if err != nil || len(all) != len(want) {
		t.Fatalf("AllCtx: %d sessions, %v; want %d", len(all), err, len(want))
	}
	for tok := range want {
		if _, ok := all[tok]; !ok {
			t.Fatalf("AllCtx misses a session of primary %s", cl.NodeForKey(t, scsredis.DefaultPrefix+tok).Addr())
		}
	}
}

// TestKeyLayout: a session is the string prefix+token holding exactly the
// committed bytes, with an expiry no later than the session's deadline
// (rounded up to the millisecond) and never without one.
func TestKeyLayout(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	st := scsredis.New(singleClient(t, srv))
	if st.Prefix() != scsredis.DefaultPrefix || scsredis.DefaultPrefix != "scs:session:" {
		t.Fatalf("prefix %q, DefaultPrefix %q", st.Prefix(), scsredis.DefaultPrefix)
	}
	ctx := ctxOf(t)
	for _, ttl := range []time.Duration{1500 * time.Microsecond, 2 * time.Second, 90 * time.Minute, 30 * 24 * time.Hour} {
		tok := scsstoretest.Token()
		data := []byte("data\x00\xff" + ttl.String())
		before := time.Now()
		if err := st.CommitCtx(ctx, tok, data, before.Add(ttl)); err != nil {
			t.Fatal(err)
		}
		pttl, err := raw.PTTL(ctx, "scs:session:"+tok).Result()
		if ttl < time.Second {
			// 2 ms at most; it may be gone already.
			if err != nil || pttl > 2*time.Millisecond || pttl == -1 {
				t.Fatalf("ttl %v: PTTL %v, %v", ttl, pttl, err)
			}
			continue
		}
		if err != nil || pttl <= 0 || pttl > ttl+time.Millisecond || pttl < ttl-time.Second {
			t.Fatalf("ttl %v: PTTL %v, %v", ttl, pttl, err)
		}
		if v, err := raw.Get(ctx, "scs:session:"+tok).Bytes(); err != nil || string(v) != string(data) {
			t.Fatalf("value %q, %v", v, err)
		}
		if typ, _ := raw.Type(ctx, "scs:session:"+tok).Result(); typ != "string" {
			t.Fatalf("TYPE %s", typ)
		}
	}
	// Nothing else was written.
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "scs:session:") {
			t.Fatalf("key %q outside the prefix", k)
		}
	}
}

// TestPrefixIsolation: two stores on one Redis with different prefixes see
// only their own sessions, and All takes nothing else of the database: not
// a key sharing the start of the prefix, not a key a glob reading of the
// prefix would match.
func TestPrefixIsolation(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	c := singleClient(t, srv)
	ctx := ctxOf(t)
	globby := scsredis.NewWithPrefix(c, "app[1]*?\\:")
	plain := scsredis.NewWithPrefix(c, "app1:")
	def := scsredis.New(c)
	for k, v := range map[string]string{
		"app1x:tok": "foreign", "app1": "foreign", "appX:tok": "foreign", "app1:": "empty token of plain",
		"scs:session": "foreign", "scs:sessionX:tok": "foreign", "other": "foreign",
		"app1*?\\:tok": "looks like globby after glob expansion", "app[1]*?\\": "foreign",
	} {
		if err := raw.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	exp := time.Now().Add(time.Minute)
	for st, tok := range map[*scsredis.Store]string{globby: "g", plain: "p", def: "d"} {
		if err := st.CommitCtx(ctx, tok, []byte(tok), exp); err != nil {
			t.Fatal(err)
		}
	}
	for st, want := range map[*scsredis.Store]map[string]string{
		globby: {"g": "g"},
		plain:  {"p": "p", "": "empty token of plain"},
		def:    {"d": "d"},
	} {
		all, err := st.AllCtx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(want) {
			t.Fatalf("prefix %q: All = %q, want %q", st.Prefix(), all, want)
		}
		for k, v := range want {
			if string(all[k]) != v {
				t.Fatalf("prefix %q: All = %q, want %q", st.Prefix(), all, want)
			}
		}
	}
	if _, found, err := plain.FindCtx(ctx, "g"); found || err != nil {
		t.Fatalf("a session of another prefix found: %v %v", found, err)
	}
}

func TestNewPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil client":   func() { scsredis.New(nil) },
		"empty prefix": func() { scsredis.NewWithPrefix(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), "") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "scsredis") {
					t.Fatalf("recovered %v, want a scsredis panic", r)
				}
			}()
			f()
		})
	}
}

// TestRedisDown: with Redis gone, every operation fails with an error (a
// missing session is never reported for an unreachable Redis: scs would
// start a new, empty session), the error names no token, and the sessions
// are back when Redis is (restarted with its data).
func TestRedisDown(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{Persist: true})
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr()}, MaxRetries: -1,
		DialTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	st := scsredis.New(c)
	ctx := ctxOf(t)
	tok := scsstoretest.Token()
	if err := st.CommitCtx(ctx, tok, []byte("kept"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	checkDown(t, st, tok)
	srv.Restart(t)
	if b, found, err := st.FindCtx(ctx, tok); err != nil || !found || string(b) != "kept" {
		t.Fatalf("after restart: %q %v %v", b, found, err)
	}
}

// checkDown asserts every operation of st fails, without naming tok.
func checkDown(t *testing.T, st *scsredis.Store, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, found, errFind := st.FindCtx(ctx, tok)
	if found {
		t.Fatal("found a session on a Redis that is down")
	}
	_, errAll := st.AllCtx(ctx)
	for name, err := range map[string]error{
		"Find":   errFind,
		"Commit": st.CommitCtx(ctx, tok, []byte("x"), time.Now().Add(time.Minute)),
		"Delete": st.DeleteCtx(ctx, tok),
		"All":    errAll,
	} {
		if err == nil {
			t.Fatalf("%s succeeded on a Redis that is down", name)
		}
		if !strings.HasPrefix(err.Error(), "scsredis: ") || strings.Contains(err.Error(), tok) {
			t.Fatalf("%s error %q: want a scsredis error without the token", name, err)
		}
	}
}

// TestClusterPrimaryDown: the sessions of a killed primary fail with errors
// (not "not found"), and are back when it is restarted with its data.
func TestClusterPrimaryDown(t *testing.T) {
	cl := redistest.StartClusterWith(t, redistest.ClusterOptions{Persist: true, NodeTimeout: 500 * time.Millisecond})
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs(), MaxRetries: -1,
		DialTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	st := scsredis.New(c)
	ctx := ctxOf(t)
	tok := scsstoretest.Token()
	if err := st.CommitCtx(ctx, tok, []byte("kept"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	victim := cl.NodeForKey(t, scsredis.DefaultPrefix+tok)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	checkDown(t, st, tok)
	cl.RestartNode(t, victim)
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, found, err := st.FindCtx(ctx, tok)
		if err == nil && found && string(b) == "kept" {
			break
		}
		if err == nil && !found {
			t.Fatal("the session is gone after the primary came back")
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %q %v %v", b, found, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestContextDeadlineOnAStalledRedis: with ContextTimeoutEnabled (as the
// package doc advises), a Redis that does not answer holds a call no longer
// than the context allows.
func TestContextDeadlineOnAStalledRedis(t *testing.T) {
	for _, mode := range []string{"single", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var c redis.UniversalClient
			var pause []*redistest.Server
			if mode == "single" {
				srv := redistest.Start(t)
				c = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr()}, ContextTimeoutEnabled: true})
				pause = []*redistest.Server{srv}
			} else {
				cl := redistest.StartCluster(t)
				c = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
				pause = cl.Nodes()
			}
			t.Cleanup(func() { _ = c.Close() })
			st := scsredis.New(c)
			ctx := ctxOf(t)
			tok := scsstoretest.Token()
			if err := st.CommitCtx(ctx, tok, []byte("x"), time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			for _, s := range pause {
				if err := s.Client(t).Do(ctx, "CLIENT", "PAUSE", "3000", "ALL").Err(); err != nil {
					t.Fatal(err)
				}
			}
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, found, err := st.FindCtx(short, tok)
			if el := time.Since(start); el > 1500*time.Millisecond {
				t.Fatalf("FindCtx took %v on a paused Redis with a 200ms context", el)
			}
			if err == nil || found {
				t.Fatalf("FindCtx on a paused Redis: found %v, err %v", found, err)
			}
			if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
				t.Fatalf("FindCtx error %v: want a deadline or timeout", err)
			}
		})
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
