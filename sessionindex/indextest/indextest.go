// Package indextest is the contract every oxd.SessionIndex implementation
// passes: lookups, replacement, removal, expiry, the per-subject cap with
// eviction, the replay cache, the ended-session marks, and their behaviour
// under concurrency and across instances that share one backend.
//
// It imports testing and is meant for tests only:
//
//	func TestContract(t *testing.T) {
//		indextest.Run(t, func(t *testing.T, maxPerSubject int) indextest.Subject {
//			idx := myindex.New(…, maxPerSubject)
//			return indextest.Subject{Index: idx, Stored: idx.countRecords}
//		})
//	}
package indextest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/sessionindex"
)

// Subject is one fresh, empty index under test.
type Subject struct {
	// Index is the implementation under test.
	Index oxd.SessionIndex
	// Peer, when not nil, is a second instance over the same backend (as
	// another replica would have); the contract checks that it sees what
	// Index wrote and that replay marks are shared.
	Peer oxd.SessionIndex
	// Stored reports how many records the backend holds for this index
	// (entries for memory, keys for Redis). The contract checks that it
	// stays within StoredBound of the cap and drops to 0 once every entry
	// and mark has expired.
	Stored func(t *testing.T) int
}

// StoredBound is the most records an index may hold for one subject with
// cap maxPerSubject, every session of it in its own OP session: per
// session an entry and an OP-session set, plus the subject's set.
func StoredBound(maxPerSubject int) int { return 2*maxPerSubject + 1 }

// Factory returns a fresh, empty index with the given per-subject cap.
type Factory func(t *testing.T, maxPerSubject int) Subject

const iss = "https://op.example.test"

// Run runs the contract. Expiry subtests sleep about two seconds.
func Run(t *testing.T, f Factory) {
	t.Run("LookupBySIDAndSubject", func(t *testing.T) { testLookup(t, f(t, 8)) })
	t.Run("IssuersAreSeparate", func(t *testing.T) { testIssuers(t, f(t, 8)) })
	t.Run("ReAddReplaces", func(t *testing.T) { testReplace(t, f(t, 8)) })
	t.Run("Remove", func(t *testing.T) { testRemove(t, f(t, 8)) })
	t.Run("InvalidEntriesRefused", func(t *testing.T) { testInvalid(t, f(t, 8)) })
	t.Run("CapEvictsFirstToExpire", func(t *testing.T) { testCap(t, f(t, 3)) })
	t.Run("CapUnderConcurrency", func(t *testing.T) { testCapConcurrent(t, f(t, 5)) })
	t.Run("BoundsTenThousandSessionsOneSubject", func(t *testing.T) { testBounds(t, f(t, sessionindex.DefaultMaxPerSubject)) })
	t.Run("ExpiredEntriesDisappear", func(t *testing.T) { testExpiry(t, f(t, 8)) })
	t.Run("JTISingleUse", func(t *testing.T) { testJTI(t, f(t, 8)) })
	t.Run("JTIConcurrentExactlyOneFresh", func(t *testing.T) { testJTIConcurrent(t, f(t, 8)) })
	t.Run("JTIExpires", func(t *testing.T) { testJTIExpiry(t, f(t, 8)) })
	t.Run("EndedMarks", func(t *testing.T) { testEnded(t, f(t, 8)) })
	t.Run("EndedMarksExpire", func(t *testing.T) { testEndedExpiry(t, f(t, 8)) })
	if probe := f(t, 8); probe.Peer != nil {
		t.Run("PeerSharesEntriesAndMarks", func(t *testing.T) { testPeer(t, probe) })
	} else {
		t.Log("no peer instance (one process only): PeerSharesEntriesAndMarks does not apply")
	}
}

func entry(token, sub, sid string, life time.Duration) sessionindex.Entry {
	return sessionindex.Entry{Token: token, Issuer: iss, Subject: sub, SID: sid, Expires: time.Now().Add(life)}
}

func mustAdd(t *testing.T, idx oxd.SessionIndex, e sessionindex.Entry) []string {
	t.Helper()
	ev, err := idx.Add(context.Background(), e)
	if err != nil {
		t.Fatalf("Add(%s): %v", e.Token, err)
	}
	return ev
}

func want(t *testing.T, what string, got []string, err error, exp ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got = slices.Clone(got)
	slices.Sort(got)
	exp = slices.Clone(exp)
	slices.Sort(exp)
	if len(got) == 0 && len(exp) == 0 {
		return
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("%s = %q, want %q", what, got, exp)
	}
}

func testLookup(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	for _, e := range []sessionindex.Entry{
		entry("tA1", "alice", "sid-a", time.Hour),
		entry("tA2", "alice", "sid-a", time.Hour), // a second RP session in the same OP session
		entry("tA3", "alice", "sid-a2", time.Hour),
		entry("tA4", "alice", "", time.Hour), // the OP sent no sid
		entry("tB1", "bob", "sid-b", time.Hour),
	} {
		if ev := mustAdd(t, idx, e); len(ev) != 0 {
			t.Fatalf("Add(%s) evicted %q below the cap", e.Token, ev)
		}
	}
	got, err := idx.BySID(ctx, iss, "sid-a")
	want(t, "BySID(sid-a)", got, err, "tA1", "tA2")
	got, err = idx.BySID(ctx, iss, "sid-a2")
	want(t, "BySID(sid-a2)", got, err, "tA3")
	got, err = idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject(alice)", got, err, "tA1", "tA2", "tA3", "tA4")
	got, err = idx.BySubject(ctx, iss, "bob")
	want(t, "BySubject(bob)", got, err, "tB1")
	got, err = idx.BySID(ctx, iss, "sid-unknown")
	want(t, "BySID(unknown)", got, err)
	got, err = idx.BySubject(ctx, iss, "carol")
	want(t, "BySubject(carol)", got, err)
	// A subject is not an OP session and the other way round.
	got, err = idx.BySID(ctx, iss, "alice")
	want(t, "BySID(alice)", got, err)
	got, err = idx.BySubject(ctx, iss, "sid-a")
	want(t, "BySubject(sid-a)", got, err)
}

func testIssuers(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	e := entry("t1", "alice", "sid-1", time.Hour)
	mustAdd(t, idx, e)
	other := e
	other.Token, other.Issuer = "t2", "https://op.example.test/other"
	mustAdd(t, idx, other)
	// Values that a naive concatenation of issuer and value would confuse.
	tricky := e
	tricky.Token, tricky.Issuer, tricky.Subject, tricky.SID = "t3", iss+"a", "lice", "id-1"
	mustAdd(t, idx, tricky)
	got, err := idx.BySID(ctx, iss, "sid-1")
	want(t, "BySID(iss)", got, err, "t1")
	got, err = idx.BySID(ctx, other.Issuer, "sid-1")
	want(t, "BySID(other issuer)", got, err, "t2")
	got, err = idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject(iss)", got, err, "t1")
	got, err = idx.BySubject(ctx, iss+"a", "lice")
	want(t, "BySubject(tricky)", got, err, "t3")
}

func testReplace(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	mustAdd(t, idx, entry("t1", "alice", "sid-old", time.Hour))
	mustAdd(t, idx, entry("t1", "bob", "sid-new", time.Hour))
	got, err := idx.BySID(ctx, iss, "sid-old")
	want(t, "BySID(old)", got, err)
	got, err = idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject(alice)", got, err)
	got, err = idx.BySID(ctx, iss, "sid-new")
	want(t, "BySID(new)", got, err, "t1")
	got, err = idx.BySubject(ctx, iss, "bob")
	want(t, "BySubject(bob)", got, err, "t1")
}

func testRemove(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	mustAdd(t, idx, entry("t1", "alice", "sid-1", time.Hour))
	mustAdd(t, idx, entry("t2", "alice", "sid-1", time.Hour))
	if err := idx.Remove(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := idx.Remove(ctx, "t1"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if err := idx.Remove(ctx, "never-added"); err != nil {
		t.Fatalf("Remove(unknown): %v", err)
	}
	got, err := idx.BySID(ctx, iss, "sid-1")
	want(t, "BySID", got, err, "t2")
	got, err = idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject", got, err, "t2")
	if err := idx.Remove(ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	got, err = idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject after removing all", got, err)
	if s.Stored != nil {
		if n := s.Stored(t); n != 0 {
			t.Fatalf("%d records stored after every entry was removed, want 0", n)
		}
	}
}

func testInvalid(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	long := strings.Repeat("x", sessionindex.MaxIssuerLen+1)
	for name, e := range map[string]sessionindex.Entry{
		"empty token":   entry("", "alice", "s", time.Hour),
		"empty subject": entry("t", "", "s", time.Hour),
		"empty issuer":  {Token: "t", Subject: "alice", Expires: time.Now().Add(time.Hour)},
		"expired":       entry("t", "alice", "s", -time.Second),
		"zero expiry":   {Token: "t", Issuer: iss, Subject: "alice"},
		"long token":    entry(long[:sessionindex.MaxTokenLen+1], "alice", "s", time.Hour),
		"long subject":  entry("t", long[:sessionindex.MaxValueLen+1], "s", time.Hour),
		"long sid":      entry("t", "alice", long[:sessionindex.MaxValueLen+1], time.Hour),
		"long issuer":   {Token: "t", Issuer: long, Subject: "alice", Expires: time.Now().Add(time.Hour)},
	} {
		if _, err := idx.Add(ctx, e); !errors.Is(err, sessionindex.ErrInvalidEntry) {
			t.Errorf("Add(%s) = %v, want ErrInvalidEntry", name, err)
		}
	}
	if _, err := idx.BySID(ctx, iss, ""); !errors.Is(err, sessionindex.ErrInvalidEntry) {
		t.Errorf("BySID(empty) = %v, want ErrInvalidEntry", err)
	}
	if _, err := idx.BySubject(ctx, "", "alice"); !errors.Is(err, sessionindex.ErrInvalidEntry) {
		t.Errorf("BySubject(empty issuer) = %v, want ErrInvalidEntry", err)
	}
	if _, err := idx.MarkJTI(ctx, iss, "", time.Minute); !errors.Is(err, sessionindex.ErrInvalidEntry) {
		t.Errorf("MarkJTI(empty) = %v, want ErrInvalidEntry", err)
	}
	if _, err := idx.MarkJTI(ctx, iss, "j", 0); !errors.Is(err, sessionindex.ErrInvalidEntry) {
		t.Errorf("MarkJTI(ttl 0) = %v, want ErrInvalidEntry", err)
	}
	got, err := idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject after refused adds", got, err)
	if s.Stored != nil {
		if n := s.Stored(t); n != 0 {
			t.Fatalf("%d records stored after refused adds, want 0", n)
		}
	}
}

func testCap(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	// Expiries 1h..3h: the cap (3) is reached.
	for i := 1; i <= 3; i++ {
		if ev := mustAdd(t, idx, entry(fmt.Sprint("t", i), "alice", fmt.Sprint("sid-", i), time.Duration(i)*time.Hour)); len(ev) != 0 {
			t.Fatalf("evicted %q below the cap", ev)
		}
	}
	mustAdd(t, idx, entry("bob1", "bob", "sid-b", time.Hour)) // another subject is not counted
	// A fourth session evicts the one that expires first (t1).
	ev := mustAdd(t, idx, entry("t4", "alice", "sid-4", 4*time.Hour))
	want(t, "evicted by t4", ev, nil, "t1")
	// A session that expires before all others is not evicted itself: t2 goes.
	ev = mustAdd(t, idx, entry("t5", "alice", "sid-5", time.Minute))
	want(t, "evicted by t5", ev, nil, "t2")
	got, err := idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject(alice)", got, err, "t3", "t4", "t5")
	for _, sid := range []string{"sid-1", "sid-2"} {
		got, err = idx.BySID(ctx, iss, sid)
		want(t, "BySID("+sid+") of an evicted session", got, err)
	}
	got, err = idx.BySubject(ctx, iss, "bob")
	want(t, "BySubject(bob)", got, err, "bob1")
	// Re-adding a present session does not evict.
	ev = mustAdd(t, idx, entry("t3", "alice", "sid-3", 5*time.Hour))
	want(t, "evicted by re-adding t3", ev, nil)
}

func testCapConcurrent(t *testing.T, s Subject) {
	const n, workers, limit = 60, 6, 5
	ctx := context.Background()
	var (
		mu      sync.Mutex
		evicted = map[string]int{}
		wg      sync.WaitGroup
		errs    atomic.Int32
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := s.Index
			if s.Peer != nil && w%2 == 1 {
				idx = s.Peer
			}
			for i := w; i < n; i += workers {
				ev, err := idx.Add(ctx, entry(fmt.Sprint("t", i), "alice", fmt.Sprint("sid-", i%7), time.Hour+time.Duration(i)*time.Second))
				if err != nil {
					errs.Add(1)
					continue
				}
				mu.Lock()
				for _, e := range ev {
					evicted[e]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if errs.Load() != 0 {
		t.Fatalf("%d concurrent adds failed", errs.Load())
	}
	live, err := s.Index.BySubject(ctx, iss, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != limit {
		t.Fatalf("%d live sessions after %d concurrent adds, want the cap %d", len(live), n, limit)
	}
	// Every session is either live or was returned as evicted exactly once:
	// none is lost (unreachable by logout yet alive).
	for _, tok := range live {
		if evicted[tok] != 0 {
			t.Fatalf("%s is live and was reported evicted", tok)
		}
	}
	for tok, c := range evicted {
		if c != 1 {
			t.Fatalf("%s reported evicted %d times", tok, c)
		}
	}
	if len(evicted)+len(live) != n {
		t.Fatalf("%d evicted + %d live != %d added", len(evicted), len(live), n)
	}
	var bySID int
	for i := range 7 {
		got, err := s.Index.BySID(ctx, iss, fmt.Sprint("sid-", i))
		if err != nil {
			t.Fatal(err)
		}
		bySID += len(got)
	}
	if bySID != limit {
		t.Fatalf("the OP-session sets hold %d sessions, want %d (evicted sessions linger)", bySID, limit)
	}
}

func testBounds(t *testing.T, s Subject) {
	const n = 10_000
	ctx := context.Background()
	limit := sessionindex.DefaultMaxPerSubject
	var evicted int
	for i := range n {
		ev, err := s.Index.Add(ctx, entry(fmt.Sprintf("tok-%05d", i), "alice", fmt.Sprintf("sid-%05d", i), time.Hour+time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		evicted += len(ev)
		if s.Stored != nil && i%1000 == 999 {
			if got := s.Stored(t); got > StoredBound(limit) {
				t.Fatalf("after %d sessions of one subject %d records are stored, over the bound %d", i+1, got, StoredBound(limit))
			}
		}
	}
	if evicted != n-limit {
		t.Fatalf("%d evicted, want %d", evicted, n-limit)
	}
	live, err := s.Index.BySubject(ctx, iss, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != limit || live[0] != fmt.Sprintf("tok-%05d", n-limit) {
		t.Fatalf("%d live sessions starting at %v, want the newest %d", len(live), first(live), limit)
	}
	if s.Stored != nil {
		t.Logf("records stored for one subject after %d sessions: %d (bound %d)", n, s.Stored(t), StoredBound(limit))
	}
}

func first(s []string) any {
	if len(s) == 0 {
		return nil
	}
	return s[0]
}

// eventually polls cond every 50ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testExpiry(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	mustAdd(t, idx, entry("short1", "alice", "sid-s", 400*time.Millisecond))
	mustAdd(t, idx, entry("short2", "alice", "", 400*time.Millisecond))
	mustAdd(t, idx, entry("short3", "bob", "sid-b", 400*time.Millisecond))
	if _, err := idx.MarkJTI(ctx, iss, "jti-short", 400*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	got, err := idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject before expiry", got, err, "short1", "short2")
	time.Sleep(500 * time.Millisecond)
	// Lookups never return an expired session.
	got, err = idx.BySubject(ctx, iss, "alice")
	want(t, "BySubject after expiry", got, err)
	got, err = idx.BySID(ctx, iss, "sid-s")
	want(t, "BySID after expiry", got, err)
	// And the records themselves go, without any further call for Redis
	// (expiry) and at the next call for memory.
	if s.Stored != nil {
		if !eventually(2*time.Second, func() bool { return s.Stored(t) == 0 }) {
			t.Fatalf("%d records still stored after every entry expired", s.Stored(t))
		}
	}
}

func testJTI(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	fresh, err := idx.MarkJTI(ctx, iss, "jti-1", time.Minute)
	if err != nil || !fresh {
		t.Fatalf("first MarkJTI = %v, %v; want fresh", fresh, err)
	}
	fresh, err = idx.MarkJTI(ctx, iss, "jti-1", time.Minute)
	if err != nil || fresh {
		t.Fatalf("replayed MarkJTI = %v, %v; want not fresh", fresh, err)
	}
	fresh, err = idx.MarkJTI(ctx, "https://other.example.test", "jti-1", time.Minute)
	if err != nil || !fresh {
		t.Fatalf("same jti at another issuer = %v, %v; want fresh", fresh, err)
	}
	fresh, err = idx.MarkJTI(ctx, iss+"j", "ti-1", time.Minute)
	if err != nil || !fresh {
		t.Fatalf("concatenation-confusable jti = %v, %v; want fresh", fresh, err)
	}
}

func testJTIConcurrent(t *testing.T, s Subject) {
	ctx := context.Background()
	const workers = 16
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := s.Index
			if s.Peer != nil && w%2 == 1 {
				idx = s.Peer
			}
			ok, err := idx.MarkJTI(ctx, iss, "jti-race", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d of %d concurrent marks were fresh, want exactly 1", fresh.Load(), workers)
	}
}

func testJTIExpiry(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	if ok, err := idx.MarkJTI(ctx, iss, "jti-e", 300*time.Millisecond); err != nil || !ok {
		t.Fatalf("MarkJTI = %v, %v", ok, err)
	}
	time.Sleep(400 * time.Millisecond)
	ok, err := idx.MarkJTI(ctx, iss, "jti-e", 300*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("MarkJTI after the mark expired = %v, %v; want fresh", ok, err)
	}
}

func testPeer(t *testing.T, s Subject) {
	ctx := context.Background()
	mustAdd(t, s.Index, entry("t1", "alice", "sid-1", time.Hour))
	got, err := s.Peer.BySID(ctx, iss, "sid-1")
	want(t, "peer BySID", got, err, "t1")
	if err := s.Peer.Remove(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Index.BySubject(ctx, iss, "alice")
	want(t, "BySubject after the peer removed", got, err)
	if ok, err := s.Index.MarkJTI(ctx, iss, "jti-p", time.Minute); err != nil || !ok {
		t.Fatalf("MarkJTI = %v, %v", ok, err)
	}
	if ok, err := s.Peer.MarkJTI(ctx, iss, "jti-p", time.Minute); err != nil || ok {
		t.Fatalf("peer MarkJTI of a replayed jti = %v, %v; want not fresh", ok, err)
	}
}

func testEnded(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	ended := func(ix oxd.SessionIndex, key string) bool {
		t.Helper()
		ok, err := ix.Ended(ctx, key)
		if err != nil {
			t.Fatalf("Ended(%q): %v", key, err)
		}
		return ok
	}
	if ended(idx, "k1") {
		t.Fatal("an unmarked key is ended")
	}
	if err := idx.MarkEnded(ctx, "k1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !ended(idx, "k1") || ended(idx, "k2") || ended(idx, "k1x") || ended(idx, "") {
		t.Fatal("Ended does not report exactly the marked key")
	}
	if s.Peer != nil && !ended(s.Peer, "k1") {
		t.Fatal("the peer does not see the mark")
	}
	// A mark until a time already past records nothing.
	if err := idx.MarkEnded(ctx, "k-past", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if ended(idx, "k-past") {
		t.Fatal("a mark until the past is reported")
	}
	// Invalid keys are refused.
	for _, k := range []string{"", strings.Repeat("k", sessionindex.MaxTokenLen+1)} {
		if err := idx.MarkEnded(ctx, k, time.Now().Add(time.Hour)); !errors.Is(err, sessionindex.ErrInvalidEntry) {
			t.Fatalf("MarkEnded(%d bytes) = %v; want ErrInvalidEntry", len(k), err)
		}
	}
	// Removing the session's entry does not remove its mark.
	mustAdd(t, idx, entry("k3", "alice", "sid-3", time.Hour))
	if err := idx.MarkEnded(ctx, "k3", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := idx.Remove(ctx, "k3"); err != nil {
		t.Fatal(err)
	}
	if !ended(idx, "k3") {
		t.Fatal("Remove dropped the ended mark")
	}
}

func testEndedExpiry(t *testing.T, s Subject) {
	ctx := context.Background()
	idx := s.Index
	if err := idx.MarkEnded(ctx, "e1", time.Now().Add(400*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// A later mark extends; an earlier one does not shorten.
	if err := idx.MarkEnded(ctx, "e2", time.Now().Add(400*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := idx.MarkEnded(ctx, "e2", time.Now().Add(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := idx.MarkEnded(ctx, "e2", time.Now().Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if ok, err := idx.Ended(ctx, "e1"); err != nil || ok {
		t.Fatalf("Ended after the mark expired = %v, %v", ok, err)
	}
	if ok, err := idx.Ended(ctx, "e2"); err != nil || !ok {
		t.Fatalf("Ended of the extended mark = %v, %v; want still ended", ok, err)
	}
	if s.Stored != nil {
		if !eventually(3*time.Second, func() bool { return s.Stored(t) == 0 }) {
			t.Fatalf("%d records still stored after every mark expired", s.Stored(t))
		}
	}
}
