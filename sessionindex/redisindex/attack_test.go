package redisindex_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/sessionindex"
	"github.com/oxdgo/oxd/sessionindex/redisindex"
)

// TestHashTagInjection: store keys, subjects, sids and issuers that hold
// braces, the prefix, colons or the key names of other entries neither
// move a session key out of the index's hash slot (the script would fail
// with CROSSSLOT on a cluster) nor reach another entry's keys; a sub and a
// sid with the same value stay apart; eviction by the cap still returns
// the right store key.
func TestHashTagInjection(t *testing.T) {
	cl := redistest.StartCluster(t)
	srv := redistest.Start(t)
	for name, c := range map[string]redis.UniversalClient{"cluster": cl.Client(t), "server": srv.Client(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			p := prefixFor(t)
			idx, err := redisindex.New(c, redisindex.Options{Prefix: p, MaxPerSubject: 2})
			if err != nil {
				t.Fatal(err)
			}
			iss := "https://op.example.test/{x}"
			tokens := []string{"{a}tok", "}{", "{" + p + "}:s:x", p + "j:x", "a:b:{c}"}
			exp := time.Now().Add(time.Hour)
			for i, tok := range tokens[:2] {
				if _, err := idx.Add(ctx, sessionindex.Entry{Token: tok, Issuer: iss, Subject: "{alice}", SID: "{alice}", Expires: exp.Add(time.Duration(i) * time.Second)}); err != nil {
					t.Fatalf("add %q: %v", tok, err)
				}
			}
			for _, tok := range tokens[2:] {
				if _, err := idx.Add(ctx, sessionindex.Entry{Token: tok, Issuer: iss, Subject: "bob}", SID: "{" + p + "}", Expires: exp}); err != nil {
					t.Fatalf("add %q: %v", tok, err)
				}
			}
			bySub, err := idx.BySubject(ctx, iss, "{alice}")
			if err != nil || !(len(bySub) == 2 && slices.Contains(bySub, "{a}tok") && slices.Contains(bySub, "}{")) {
				t.Fatalf("BySubject(alice) = %q, %v", bySub, err)
			}
			bySID, err := idx.BySID(ctx, iss, "{alice}")
			if err != nil || len(bySID) != 2 {
				t.Fatalf("BySID(alice) = %q, %v", bySID, err)
			}
			// bob has three sessions and a cap of 2: one was evicted.
			bob, err := idx.BySubject(ctx, iss, "bob}")
			if err != nil || len(bob) != 2 {
				t.Fatalf("BySubject(bob) = %q, %v", bob, err)
			}
			if got, _ := idx.BySID(ctx, iss, "{"+p+"}"); len(got) != 2 {
				t.Fatalf("BySID(bob's) = %q", got)
			}
			// A third alice session evicts the one that expires first.
			ev, err := idx.Add(ctx, sessionindex.Entry{Token: "{" + p + "}:t:{a}tok", Issuer: iss, Subject: "{alice}", Expires: exp.Add(time.Minute)})
			if err != nil || !slices.Equal(ev, []string{"{a}tok"}) {
				t.Fatalf("evicted %q, %v", ev, err)
			}
			for _, tok := range append(tokens, "{"+p+"}:t:{a}tok") {
				if err := idx.Remove(ctx, tok); err != nil {
					t.Fatalf("remove %q: %v", tok, err)
				}
			}
			for _, q := range []func() ([]string, error){
				func() ([]string, error) { return idx.BySubject(ctx, iss, "{alice}") },
				func() ([]string, error) { return idx.BySID(ctx, iss, "{alice}") },
				func() ([]string, error) { return idx.BySubject(ctx, iss, "bob}") },
			} {
				if got, err := q(); err != nil || len(got) != 0 {
					t.Fatalf("after removing everything: %q, %v", got, err)
				}
			}
			if left := keys(t, c, p); len(left) != 0 {
				t.Fatalf("keys left: %q", left)
			}
		})
	}
}
