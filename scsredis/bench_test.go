package scsredis_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/internal/scsstoretest"
	"github.com/oxdgo/oxd/scsredis"
)

// typicalSessionBytes is the size of the session data scs stores for a user
// signed in through the middleware with the development OP (measured with
// the flow tests: 1826 bytes of scs encoding for the User with its tokens
// and claims).
const typicalSessionBytes = 1826

// TestMemoryUsagePerSession measures what Redis holds per session (MEMORY
// USAGE of the key: key, value, expiry and allocator overhead) for a pending
// login, a typical signed-in session and a large one, and bounds the
// store's overhead: one string per session, nothing else.
func TestMemoryUsagePerSession(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	st := scsredis.New(singleClient(t, srv))
	ctx := ctxOf(t)
	for _, size := range []int{339, typicalSessionBytes, 8 << 10} {
		before, err := raw.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		tok := scsstoretest.Token()
		if err := st.CommitCtx(ctx, tok, bytes.Repeat([]byte{0xa5}, size), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		after, _ := raw.DBSize(ctx).Result()
		if after != before+1 {
			t.Fatalf("one session made %d keys", after-before)
		}
		key := scsredis.DefaultPrefix + tok
		mu, err := raw.MemoryUsage(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		payload := int64(len(key) + size)
		t.Logf("session of %d bytes (key %d bytes): MEMORY USAGE %d bytes (%+d over key+value)", size, len(key), mu, mu-payload)
		if mu < payload || mu > payload+payload/4+256 {
			t.Fatalf("MEMORY USAGE %d for %d bytes of key and value", mu, payload)
		}
	}
}

// benchClient is a client of a fresh redis-server, shared by both stores of
// a side-by-side benchmark (goredisstore takes the *redis.Client, scsredis
// the same client as a UniversalClient).
func benchClient(b *testing.B) *redis.Client {
	srv := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = c.Close() })
	return c
}

type benchStore interface {
	FindCtx(ctx context.Context, token string) ([]byte, bool, error)
	CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error
}

// BenchmarkFind: Find of a typical signed-in session, this store and scs's
// goredisstore side by side on the same redis-server and client.
func BenchmarkFind(b *testing.B) {
	rc := benchClient(b)
	data := bytes.Repeat([]byte{0xa5}, typicalSessionBytes)
	for _, s := range []struct {
		name string
		st   benchStore
	}{
		{"scsredis", scsredis.NewWithPrefix(rc, "bench:a:")},
		{"goredisstore", goredisstore.NewWithPrefix(rc, "bench:b:")},
	} {
		b.Run(s.name, func(b *testing.B) {
			ctx := context.Background()
			tok := scsstoretest.Token()
			if err := s.st.CommitCtx(ctx, tok, data, time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(typicalSessionBytes)
			for b.Loop() {
				got, found, err := s.st.FindCtx(ctx, tok)
				if err != nil || !found || len(got) != typicalSessionBytes {
					b.Fatalf("found %v, %v", found, err)
				}
			}
		})
	}
}

// BenchmarkCommit: Commit of a typical signed-in session, side by side.
func BenchmarkCommit(b *testing.B) {
	rc := benchClient(b)
	data := bytes.Repeat([]byte{0xa5}, typicalSessionBytes)
	for _, s := range []struct {
		name string
		st   benchStore
	}{
		{"scsredis", scsredis.NewWithPrefix(rc, "bench:a:")},
		{"goredisstore", goredisstore.NewWithPrefix(rc, "bench:b:")},
	} {
		b.Run(s.name, func(b *testing.B) {
			ctx := context.Background()
			tok := scsstoretest.Token()
			b.ReportAllocs()
			b.SetBytes(typicalSessionBytes)
			for b.Loop() {
				if err := s.st.CommitCtx(ctx, tok, data, time.Now().Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCluster: Find and Commit of a typical session on a 3-primary
// Cluster (goredisstore cannot talk to one).
func BenchmarkCluster(b *testing.B) {
	cl := redistest.StartCluster(b)
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs()})
	b.Cleanup(func() { _ = c.Close() })
	st := scsredis.New(c)
	data := bytes.Repeat([]byte{0xa5}, typicalSessionBytes)
	ctx := context.Background()
	tok := scsstoretest.Token()
	if err := st.CommitCtx(ctx, tok, data, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.Run("Find", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, found, err := st.FindCtx(ctx, tok); err != nil || !found {
				b.Fatalf("found %v, %v", found, err)
			}
		}
	})
	b.Run("Commit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := st.CommitCtx(ctx, tok, data, time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
