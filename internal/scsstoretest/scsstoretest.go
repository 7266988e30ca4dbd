// Package scsstoretest is the contract test suite of an scs session store
// (github.com/alexedwards/scs/v2): what scs.Store, scs.CtxStore,
// scs.IterableStore and scs.IterableCtxStore promise, checked on a real
// store. Every session store of the repository runs it; scs's own memstore
// runs it too, as the reference that the suite itself is right.
//
//	func TestContract(t *testing.T) {
//		scsstoretest.Run(t, func(t *testing.T) scs.Store { return newStore(t) })
//	}
//
// The context and iteration parts run only when the store implements those
// interfaces (which the test names in its log); nothing is skipped. The
// package imports testing and is meant for tests only.
package scsstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
)

// NewStore returns an empty store for one subtest; the store (and whatever it
// runs on) is released by t's cleanups. Stores of different calls must not
// share sessions (for example: a fresh key prefix each time), and it must be
// safe to call from parallel subtests.
type NewStore func(t *testing.T) scs.Store

// ExpiryTolerance is how late after its deadline a session may still be found
// (a store's clock granularity and its expiry sweeps); the suite waits this
// long past a deadline before it requires the session gone.
const ExpiryTolerance = 1500 * time.Millisecond

// Token returns a random token shaped as scs makes them (32 random bytes,
// base64url without padding).
func Token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ops are the store operations, through the context methods when the store
// has them (as scs calls them) or the plain ones.
type ops struct {
	t *testing.T
	s scs.Store
	c scs.CtxStore // nil when the store has no context methods
}

func newOps(t *testing.T, s scs.Store) ops {
	c, _ := s.(scs.CtxStore)
	return ops{t: t, s: s, c: c}
}

func (o ops) find(token string) ([]byte, bool) {
	o.t.Helper()
	var b []byte
	var found bool
	var err error
	if o.c != nil {
		b, found, err = o.c.FindCtx(ctxOf(o.t), token)
	} else {
		b, found, err = o.s.Find(token)
	}
	if err != nil {
		o.t.Fatalf("Find: %v", err)
	}
	if !found && b != nil {
		o.t.Fatalf("Find: not found but data %q", b)
	}
	return b, found
}

func (o ops) commit(token string, b []byte, expiry time.Time) {
	o.t.Helper()
	var err error
	if o.c != nil {
		err = o.c.CommitCtx(ctxOf(o.t), token, b, expiry)
	} else {
		err = o.s.Commit(token, b, expiry)
	}
	if err != nil {
		o.t.Fatalf("Commit: %v", err)
	}
}

func (o ops) delete(token string) {
	o.t.Helper()
	var err error
	if o.c != nil {
		err = o.c.DeleteCtx(ctxOf(o.t), token)
	} else {
		err = o.s.Delete(token)
	}
	if err != nil {
		o.t.Fatalf("Delete: %v", err)
	}
}

func (o ops) mustFind(token string, want []byte) {
	o.t.Helper()
	b, found := o.find(token)
	if !found {
		o.t.Fatalf("session not found, want %d bytes", len(want))
	}
	if !bytes.Equal(b, want) {
		o.t.Fatalf("session data = %q, want %q", short(b), short(want))
	}
}

func (o ops) mustNotFind(token string) {
	o.t.Helper()
	if b, found := o.find(token); found {
		o.t.Fatalf("session found (%q), want not found", short(b))
	}
}

// waitGone waits until token is no longer found, at most until deadline plus
// ExpiryTolerance.
func (o ops) waitGone(token string, deadline time.Time) {
	o.t.Helper()
	for {
		if _, found := o.find(token); !found {
			return
		}
		if time.Now().After(deadline.Add(ExpiryTolerance)) {
			o.t.Fatalf("session still found %v after its deadline", time.Since(deadline))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func short(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "…"...)
	}
	return b
}

// Run runs the contract suite, each case on a fresh store from newStore.
func Run(t *testing.T, newStore NewStore) {
	probe := newStore(t)
	_, isCtx := probe.(scs.CtxStore)
	_, isIter := probe.(scs.IterableStore)
	_, isIterCtx := probe.(scs.IterableCtxStore)
	t.Logf("store %T: CtxStore %v, IterableStore %v, IterableCtxStore %v", probe, isCtx, isIter, isIterCtx)

	// The group returns only when its parallel cases have ended, so Run
	// does too: the caller may look at the store's backend afterwards.
	t.Run("contract", func(t *testing.T) {
		for _, c := range []struct {
			name string
			fn   func(t *testing.T, s scs.Store)
		}{
			{"FindMissing", testFindMissing},
			{"CommitFind", testCommitFind},
			{"BinaryAndLargeData", testBinaryAndLargeData},
			{"Overwrite", testOverwrite},
			{"Expiry", testExpiry},
			{"ExpiryExtended", testExpiryExtended},
			{"ExpiryShortened", testExpiryShortened},
			{"CommitPastDeadline", testCommitPastDeadline},
			{"Delete", testDelete},
			{"TokensAreExact", testTokensAreExact},
			{"Concurrent", testConcurrent},
			{"PlainMethodsMatchCtx", testPlainMatchesCtx},
			{"CanceledContext", testCanceledContext},
			{"AllEmpty", testAllEmpty},
			{"All", testAll},
			{"AllMany", testAllMany},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel() // several wait for deadlines
				c.fn(t, newStore(t))
			})
		}
	})
}

func testFindMissing(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	o.mustNotFind(Token())
	o.mustNotFind("")
}

func testCommitFind(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	tok := Token()
	o.commit(tok, []byte("data"), time.Now().Add(time.Minute))
	o.mustFind(tok, []byte("data"))
	o.mustFind(tok, []byte("data")) // Find does not consume
	o.mustNotFind(Token())
}

func testBinaryAndLargeData(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	large := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16) // 64 KiB
	for name, b := range map[string][]byte{"binary": bin, "large": large, "one byte": {0}} {
		tok := Token()
		o.commit(tok, b, time.Now().Add(time.Minute))
		b2, found := o.find(tok)
		if !found || !bytes.Equal(b2, b) {
			t.Fatalf("%s: found %v, %d bytes back, want %d", name, found, len(b2), len(b))
		}
	}
}

func testOverwrite(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	tok, other := Token(), Token()
	o.commit(tok, []byte("one"), time.Now().Add(time.Minute))
	o.commit(other, []byte("other"), time.Now().Add(time.Minute))
	o.commit(tok, []byte("two"), time.Now().Add(time.Minute))
	o.mustFind(tok, []byte("two"))
	o.mustFind(other, []byte("other"))
}

func testExpiry(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	tok, long := Token(), Token()
	deadline := time.Now().Add(400 * time.Millisecond)
	o.commit(tok, []byte("short"), deadline)
	o.commit(long, []byte("long"), time.Now().Add(time.Minute))
	o.mustFind(tok, []byte("short"))
	time.Sleep(time.Until(deadline))
	o.waitGone(tok, deadline)
	o.mustFind(long, []byte("long"))
}

func testExpiryExtended(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	tok := Token()
	o.commit(tok, []byte("a"), time.Now().Add(300*time.Millisecond))
	o.commit(tok, []byte("b"), time.Now().Add(time.Minute))
	time.Sleep(300*time.Millisecond + ExpiryTolerance)
	o.mustFind(tok, []byte("b"))
}

func testExpiryShortened(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	tok := Token()
	o.commit(tok, []byte("a"), time.Now().Add(time.Minute))
	deadline := time.Now().Add(300 * time.Millisecond)
	o.commit(tok, []byte("b"), deadline)
	o.mustFind(tok, []byte("b"))
	time.Sleep(time.Until(deadline))
	o.waitGone(tok, deadline)
}

// testCommitPastDeadline: a deadline that has passed stores nothing, and
// removes a session that was there.
func testCommitPastDeadline(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	fresh, existing := Token(), Token()
	o.commit(fresh, []byte("x"), time.Now().Add(-time.Second))
	o.mustNotFind(fresh)
	o.commit(existing, []byte("x"), time.Now().Add(time.Minute))
	o.commit(existing, []byte("y"), time.Now().Add(-time.Millisecond))
	o.mustNotFind(existing)
	o.commit(existing, []byte("z"), time.Now())
	o.mustNotFind(existing)
	if it, ok := s.(scs.IterableStore); ok {
		all, err := it.All()
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 0 {
			t.Fatalf("All lists %d sessions committed with a past deadline", len(all))
		}
	}
}

func testDelete(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	tok, keep := Token(), Token()
	o.commit(tok, []byte("x"), time.Now().Add(time.Minute))
	o.commit(keep, []byte("keep"), time.Now().Add(time.Minute))
	o.delete(tok)
	o.mustNotFind(tok)
	o.mustFind(keep, []byte("keep"))
	o.delete(tok)     // twice: no error
	o.delete(Token()) // never existed: no error
	// A deleted token can be committed again (scs never does it, but a
	// store must not remember deletions).
	o.commit(tok, []byte("again"), time.Now().Add(time.Minute))
	o.mustFind(tok, []byte("again"))
}

// testTokensAreExact: tokens are opaque, looked up exactly; a token with
// pattern characters, spaces, or any length finds only its own session.
func testTokensAreExact(t *testing.T, s scs.Store) {
	o := newOps(t, s)
	odd := []string{"*", "?", "[a-z]*", "a*", "\\", "with space", "{tag}", "x:y", "ünïcödé", "\x00nul",
		strings.Repeat("L", 4096), "a"}
	for i, tok := range odd {
		o.commit(tok, []byte(fmt.Sprint(i)), time.Now().Add(time.Minute))
	}
	for i, tok := range odd {
		o.mustFind(tok, []byte(fmt.Sprint(i)))
	}
	for _, tok := range []string{"b", "ab", "A", "[a-z]", "with", "tag", "L", strings.Repeat("L", 4095)} {
		o.mustNotFind(tok)
	}
	if it, ok := s.(scs.IterableStore); ok {
		all, err := it.All()
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(odd) {
			t.Fatalf("All lists %d sessions, want %d", len(all), len(odd))
		}
		for i, tok := range odd {
			if string(all[tok]) != fmt.Sprint(i) {
				t.Fatalf("All[%q] = %q, want %d", short([]byte(tok)), all[tok], i)
			}
		}
	}
	o.delete("*")
	o.mustNotFind("*")
	o.mustFind("a*", []byte("3"))
	o.mustFind("a", []byte(fmt.Sprint(len(odd)-1)))
}

func testConcurrent(t *testing.T, s scs.Store) {
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			c, _ := s.(scs.CtxStore)
			for r := range rounds {
				tok := fmt.Sprintf("w%d-r%d-%s", w, r, Token())
				want := []byte(tok)
				var err error
				if c != nil {
					err = c.CommitCtx(ctx, tok, want, time.Now().Add(time.Minute))
				} else {
					err = s.Commit(tok, want, time.Now().Add(time.Minute))
				}
				if err != nil {
					errs <- err
					return
				}
				b, found, err := s.Find(tok)
				if err != nil || !found || !bytes.Equal(b, want) {
					errs <- fmt.Errorf("worker %d round %d: found %v, err %v, data %q", w, r, found, err, short(b))
					return
				}
				if r%2 == 0 {
					if err := s.Delete(tok); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if it, ok := s.(scs.IterableStore); ok {
		all, err := it.All()
		if err != nil {
			t.Fatal(err)
		}
		if want := workers * (rounds / 2); len(all) != want {
			t.Fatalf("All lists %d sessions after the concurrent rounds, want %d", len(all), want)
		}
	}
}

// testPlainMatchesCtx: the plain methods and the context methods are two
// doors to the same sessions.
func testPlainMatchesCtx(t *testing.T, s scs.Store) {
	c, ok := s.(scs.CtxStore)
	if !ok {
		t.Logf("%T has no context methods: nothing to compare", s)
		return
	}
	ctx := ctxOf(t)
	a, b := Token(), Token()
	if err := s.Commit(a, []byte("plain"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitCtx(ctx, b, []byte("ctx"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, found, err := c.FindCtx(ctx, a); err != nil || !found || string(got) != "plain" {
		t.Fatalf("FindCtx of a plain commit: %q %v %v", got, found, err)
	}
	if got, found, err := s.Find(b); err != nil || !found || string(got) != "ctx" {
		t.Fatalf("Find of a ctx commit: %q %v %v", got, found, err)
	}
	if err := c.DeleteCtx(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(b); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{a, b} {
		if _, found, err := s.Find(tok); err != nil || found {
			t.Fatalf("found %v, err %v after delete", found, err)
		}
	}
	if ic, ok := s.(scs.IterableCtxStore); ok {
		if err := s.Commit(a, []byte("x"), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		all, err := ic.AllCtx(ctx)
		if err != nil || len(all) != 1 || string(all[a]) != "x" {
			t.Fatalf("AllCtx = %v, %v", all, err)
		}
	}
}

// testCanceledContext: a context that has ended ends the call with its
// error, and a commit under it stores nothing.
func testCanceledContext(t *testing.T, s scs.Store) {
	c, ok := s.(scs.CtxStore)
	if !ok {
		t.Logf("%T has no context methods: nothing to cancel", s)
		return
	}
	o := newOps(t, s)
	tok := Token()
	o.commit(tok, []byte("before"), time.Now().Add(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		ctx  context.Context
		want error
	}{{ctx, context.Canceled}, {expired, context.DeadlineExceeded}} {
		if _, _, err := c.FindCtx(tc.ctx, tok); !errors.Is(err, tc.want) {
			t.Fatalf("FindCtx: err %v, want %v", err, tc.want)
		}
		if err := c.CommitCtx(tc.ctx, tok, []byte("after"), time.Now().Add(time.Minute)); !errors.Is(err, tc.want) {
			t.Fatalf("CommitCtx: err %v, want %v", err, tc.want)
		}
		if err := c.DeleteCtx(tc.ctx, tok); !errors.Is(err, tc.want) {
			t.Fatalf("DeleteCtx: err %v, want %v", err, tc.want)
		}
		if ic, ok := s.(scs.IterableCtxStore); ok {
			if _, err := ic.AllCtx(tc.ctx); !errors.Is(err, tc.want) {
				t.Fatalf("AllCtx: err %v, want %v", err, tc.want)
			}
		}
	}
	o.mustFind(tok, []byte("before"))
}

func testAllEmpty(t *testing.T, s scs.Store) {
	it, ok := s.(scs.IterableStore)
	if !ok {
		t.Logf("%T is not iterable", s)
		return
	}
	all, err := it.All()
	if err != nil {
		t.Fatal(err)
	}
	if all == nil || len(all) != 0 {
		t.Fatalf("All on an empty store = %#v, want an empty non-nil map", all)
	}
}

func testAll(t *testing.T, s scs.Store) {
	it, ok := s.(scs.IterableStore)
	if !ok {
		t.Logf("%T is not iterable", s)
		return
	}
	o := newOps(t, s)
	live, deleted, expiring := Token(), Token(), Token()
	o.commit(live, []byte("live"), time.Now().Add(time.Minute))
	o.commit(deleted, []byte("deleted"), time.Now().Add(time.Minute))
	deadline := time.Now().Add(300 * time.Millisecond)
	o.commit(expiring, []byte("expiring"), deadline)
	o.delete(deleted)
	all, err := it.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || string(all[live]) != "live" || string(all[expiring]) != "expiring" {
		t.Fatalf("All = %q", all)
	}
	time.Sleep(time.Until(deadline))
	o.waitGone(expiring, deadline)
	all, err = it.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || string(all[live]) != "live" {
		t.Fatalf("All after expiry = %q", all)
	}
}

// testAllMany: more sessions than one iteration step of a store holds.
func testAllMany(t *testing.T, s scs.Store) {
	it, ok := s.(scs.IterableStore)
	if !ok {
		t.Logf("%T is not iterable", s)
		return
	}
	const n = 2500
	want := make(map[string]string, n)
	exp := time.Now().Add(time.Minute)
	for i := range n {
		tok := Token()
		want[tok] = fmt.Sprint(i)
		if err := s.Commit(tok, []byte(want[tok]), exp); err != nil {
			t.Fatal(err)
		}
	}
	all, err := it.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("All lists %d sessions, want %d", len(all), n)
	}
	for tok, v := range want {
		if string(all[tok]) != v {
			t.Fatalf("All[%s] = %q, want %q", tok, all[tok], v)
		}
	}
}
