package redislock_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/redislock"
)

var _ oxd.RefreshLock = (*redislock.Lock)(nil)

// TestLock: one holder at a time; only the holder releases; a lock expires
// after its ttl (a holder that died); on a single node and on a Cluster.
func TestLock(t *testing.T) {
	for name, mk := range map[string]func(t *testing.T) redis.UniversalClient{
		"single":  func(t *testing.T) redis.UniversalClient { return redistest.Start(t).Client(t) },
		"cluster": func(t *testing.T) redis.UniversalClient { return redistest.StartCluster(t).Client(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := redislock.New(mk(t), "")
			try := func(key, tok string, ttl time.Duration) bool {
				t.Helper()
				ok, err := l.TryLock(ctx, key, tok, ttl)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if !try("k", "a", time.Minute) {
				t.Fatal("free lock not taken")
			}
			if try("k", "b", time.Minute) {
				t.Fatal("held lock taken by another holder")
			}
			if !try("other", "b", time.Minute) {
				t.Fatal("locks are not per key")
			}
			if err := l.Unlock(ctx, "k", "b"); err != nil {
				t.Fatal(err)
			}
			if try("k", "b", time.Minute) {
				t.Fatal("a non-holder released the lock")
			}
			if err := l.Unlock(ctx, "k", "a"); err != nil {
				t.Fatal(err)
			}
			if !try("k", "b", 100*time.Millisecond) {
				t.Fatal("released lock not free")
			}
			time.Sleep(250 * time.Millisecond)
			if !try("k", "c", time.Minute) {
				t.Fatal("expired lock (dead holder) not free")
			}
			if _, err := l.TryLock(ctx, "k", "d", 0); err == nil {
				t.Fatal("ttl 0 accepted")
			}
		})
	}
}
