package redisindex_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/sessionindex"
	"github.com/oxdgo/oxd/sessionindex/indextest"
	"github.com/oxdgo/oxd/sessionindex/redisindex"
)

var _ oxd.SessionIndex = (*redisindex.Index)(nil)

// prefixFor gives each subtest its own keys on the shared server.
func prefixFor(t *testing.T) string {
	r := strings.NewReplacer("{", "_", "}", "_", " ", "_")
	return "test:" + r.Replace(t.Name()) + ":"
}

// keys lists the keys starting with the index's prefix, with or without the
// hash-tag brace, on every primary.
func keys(t *testing.T, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	scan := func(ctx context.Context, n *redis.Client) error {
		for _, pat := range []string{prefix + "*", "{" + prefix + "}*"} {
			it := n.Scan(ctx, 0, pat, 1000).Iterator()
			for it.Next(ctx) {
				out = append(out, it.Val())
			}
			if err := it.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch cc := c.(type) {
	case *redis.ClusterClient:
		// ForEachMaster runs concurrently; collect per node.
		res := make(chan []string, 16)
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			var local []string
			for _, pat := range []string{prefix + "*", "{" + prefix + "}*"} {
				it := n.Scan(ctx, 0, pat, 1000).Iterator()
				for it.Next(ctx) {
					local = append(local, it.Val())
				}
				if err := it.Err(); err != nil {
					return err
				}
			}
			res <- local
			return nil
		})
		close(res)
		for l := range res {
			out = append(out, l...)
		}
	case *redis.Client:
		err = scan(ctx, cc)
	default:
		t.Fatalf("unexpected client %T", c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func factory(newClient func(t *testing.T) redis.UniversalClient) indextest.Factory {
	return func(t *testing.T, maxPerSubject int) indextest.Subject {
		c := newClient(t)
		p := prefixFor(t)
		idx, err := redisindex.New(c, redisindex.Options{Prefix: p, MaxPerSubject: maxPerSubject})
		if err != nil {
			t.Fatal(err)
		}
		peer, err := redisindex.New(newClient(t), redisindex.Options{Prefix: p, MaxPerSubject: maxPerSubject})
		if err != nil {
			t.Fatal(err)
		}
		return indextest.Subject{Index: idx, Peer: peer, Stored: func(t *testing.T) int { return len(keys(t, c, p)) }}
	}
}

func TestRedisContractSingleServer(t *testing.T) {
	srv := redistest.Start(t)
	indextest.Run(t, factory(func(t *testing.T) redis.UniversalClient { return srv.Client(t) }))
}

func TestRedisContractCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	indextest.Run(t, factory(func(t *testing.T) redis.UniversalClient { return cl.Client(t) }))
}

// TestRedisBoundsMemoryUsage: 10,000 sessions of one subject leave at most
// 2×cap+1 keys, measured with MEMORY USAGE and INFO memory.
func TestRedisBoundsMemoryUsage(t *testing.T) {
	const n = 10_000
	ctx := context.Background()
	c := redistest.Start(t).Client(t)
	usedMemory := func() int64 {
		info, err := c.InfoMap(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		var v int64
		fmt.Sscan(info["Memory"]["used_memory"], &v)
		return v
	}
	p := "bounds:"
	idx, err := redisindex.New(c, redisindex.Options{Prefix: p})
	if err != nil {
		t.Fatal(err)
	}
	before := usedMemory()
	for i := range n {
		_, err := idx.Add(ctx, sessionindex.Entry{
			Token: fmt.Sprintf("%043d", i), Issuer: "https://op.example.test", Subject: "alice",
			SID: fmt.Sprintf("sid-%036d", i), Expires: time.Now().Add(time.Hour + time.Duration(i)*time.Millisecond),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ks := keys(t, c, p)
	var bytes int64
	for _, k := range ks {
		u, err := c.MemoryUsage(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		bytes += u
	}
	grown := usedMemory() - before
	bound := indextest.StoredBound(sessionindex.DefaultMaxPerSubject)
	t.Logf("after %d sessions of one subject: %d keys (bound %d), MEMORY USAGE sum %d bytes, used_memory grew %d bytes",
		n, len(ks), bound, bytes, grown)
	if len(ks) > bound {
		t.Fatalf("%d keys, over the bound %d", len(ks), bound)
	}
	// About 350 bytes per live session; 10,000 unbounded sessions would take
	// several MB.
	if bytes > 64<<10 {
		t.Fatalf("the index keys use %d bytes, over 64 KiB", bytes)
	}
	if grown > 1<<20 {
		t.Fatalf("used_memory grew by %d bytes, over 1 MiB", grown)
	}
}

// TestRedisKeysExpireWithoutCalls: the index's keys vanish by Redis expiry
// alone, with no call to the index after the adds.
func TestRedisKeysExpireWithoutCalls(t *testing.T) {
	ctx := context.Background()
	c := redistest.Start(t).Client(t)
	idx, err := redisindex.New(c, redisindex.Options{Prefix: "exp:"})
	if err != nil {
		t.Fatal(err)
	}
	// The keys are counted before they expire: the adds and the count
	// have 1.5 s on a loaded machine.
	const life = 1500 * time.Millisecond
	expires := time.Now().Add(life)
	for i := range 5 {
		if _, err := idx.Add(ctx, sessionindex.Entry{Token: fmt.Sprint("t", i), Issuer: "https://op.example.test",
			Subject: "alice", SID: fmt.Sprint("sid", i%2), Expires: expires}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := idx.MarkJTI(ctx, "https://op.example.test", "j", life); err != nil {
		t.Fatal(err)
	}
	if n := len(keys(t, c, "exp:")); n != 5+2+1+1 {
		t.Fatalf("%d keys after the adds, want 9", n)
	}
	for _, k := range keys(t, c, "exp:") {
		// No key outlives the sessions and the jti it holds.
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 0 || ttl > life {
			t.Fatalf("key %s expires in %v (%v), want within %v", k, ttl, err, life)
		}
	}
	deadline := expires.Add(10 * time.Second)
	for {
		// EXISTS on each, not SCAN only: a read of an expired key deletes it
		// too, but so does Redis' active expiry; check that none is left.
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys left 10s after every session expired", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisPrefixWithBraceRefused(t *testing.T) {
	if _, err := redisindex.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), redisindex.Options{Prefix: "a{b}:"}); !errors.Is(err, redisindex.ErrBadPrefix) {
		t.Fatalf("New = %v, want ErrBadPrefix", err)
	}
}

// TestRedisDownIsAnError: an unreachable Redis is an error for every
// operation, never an empty answer (which would leave sessions alive) nor a
// fresh jti.
func TestRedisDownIsAnError(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	idx, err := redisindex.New(c, redisindex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := idx.Add(ctx, sessionindex.Entry{Token: "t", Issuer: "i", Subject: "s", Expires: time.Now().Add(time.Hour)}); err == nil {
		t.Error("Add succeeded with Redis down")
	}
	if _, err := idx.BySID(ctx, "i", "sid"); err == nil {
		t.Error("BySID succeeded with Redis down")
	}
	if _, err := idx.BySubject(ctx, "i", "s"); err == nil {
		t.Error("BySubject succeeded with Redis down")
	}
	if err := idx.Remove(ctx, "t"); err == nil {
		t.Error("Remove succeeded with Redis down")
	}
	if fresh, err := idx.MarkJTI(ctx, "i", "j", time.Minute); err == nil || fresh {
		t.Errorf("MarkJTI with Redis down = %v, %v; want an error", fresh, err)
	}
}
