package sessionindex_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/oxdgo/oxd/sessionindex"
	"github.com/oxdgo/oxd/sessionindex/indextest"
)

func TestMemoryContract(t *testing.T) {
	indextest.Run(t, func(t *testing.T, maxPerSubject int) indextest.Subject {
		m := sessionindex.NewMemory(sessionindex.MemoryOptions{MaxPerSubject: maxPerSubject})
		return indextest.Subject{Index: m, Stored: func(*testing.T) int {
			e, _, _, j := sessionindex.Sizes(m)
			return e + j + sessionindex.EndedMarks(m)
		}}
	})
}

// TestMemoryBoundsHeap: 10,000 sessions of one subject keep the heap within
// what DefaultMaxPerSubject entries need, and every map at the cap.
func TestMemoryBoundsHeap(t *testing.T) {
	const n = 10_000
	ctx := context.Background()
	heapNow := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	m := sessionindex.NewMemory(sessionindex.MemoryOptions{})
	before := heapNow()
	for i := range n {
		_, err := m.Add(ctx, sessionindex.Entry{
			Token: fmt.Sprintf("%043d", i), Issuer: "https://op.example.test", Subject: "alice",
			SID: fmt.Sprintf("sid-%036d", i), Expires: time.Now().Add(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	after := heapNow()
	entries, subjects, sids, _ := sessionindex.Sizes(m)
	if entries != sessionindex.DefaultMaxPerSubject || subjects != 1 || sids != sessionindex.DefaultMaxPerSubject {
		t.Fatalf("held %d entries, %d subjects, %d OP sessions; want %d, 1, %d",
			entries, subjects, sids, sessionindex.DefaultMaxPerSubject, sessionindex.DefaultMaxPerSubject)
	}
	grown := int64(after) - int64(before)
	// About 400 bytes per entry with its map slots; 10,000 unbounded entries
	// would need several MB.
	const limit = 256 << 10
	t.Logf("heap growth for %d sessions of one subject (cap %d): %d bytes", n, sessionindex.DefaultMaxPerSubject, grown)
	if grown > limit {
		t.Fatalf("heap grew by %d bytes, over %d", grown, limit)
	}
	runtime.KeepAlive(m)
}

func TestMemoryReplayCacheFullFailsClosed(t *testing.T) {
	ctx := context.Background()
	m := sessionindex.NewMemory(sessionindex.MemoryOptions{MaxJTIs: 3})
	for i := range 3 {
		if ok, err := m.MarkJTI(ctx, "https://op.example.test", fmt.Sprint("j", i), time.Minute); err != nil || !ok {
			t.Fatalf("MarkJTI %d = %v, %v", i, ok, err)
		}
	}
	ok, err := m.MarkJTI(ctx, "https://op.example.test", "j-new", time.Minute)
	if ok || !errors.Is(err, sessionindex.ErrReplayCacheFull) {
		t.Fatalf("MarkJTI beyond the cap = %v, %v; want ErrReplayCacheFull", ok, err)
	}
	// A replay is still recognised as such at the cap.
	if ok, err := m.MarkJTI(ctx, "https://op.example.test", "j1", time.Minute); ok || err != nil {
		t.Fatalf("replay at the cap = %v, %v; want not fresh, no error", ok, err)
	}
}

func TestMemoryCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := sessionindex.NewMemory(sessionindex.MemoryOptions{})
	if _, err := m.Add(ctx, sessionindex.Entry{Token: "t", Issuer: "i", Subject: "s", Expires: time.Now().Add(time.Hour)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add = %v", err)
	}
	if _, err := m.MarkJTI(ctx, "i", "j", time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("MarkJTI = %v", err)
	}
}

// TestMemoryEndedMarksBounded: at MaxEnded marks, a new mark drops the one
// that expires first; the count never exceeds the cap.
func TestMemoryEndedMarksBounded(t *testing.T) {
	ctx := context.Background()
	m := sessionindex.NewMemory(sessionindex.MemoryOptions{MaxEnded: 3})
	now := time.Now()
	for i, d := range []time.Duration{3, 1, 2, 4} {
		if err := m.MarkEnded(ctx, fmt.Sprint("k", i), now.Add(d*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := sessionindex.EndedMarks(m); n > 3 {
			t.Fatalf("%d marks held, over the cap 3", n)
		}
	}
	for i, want := range []bool{true, false, true, true} {
		if ok, err := m.Ended(ctx, fmt.Sprint("k", i)); err != nil || ok != want {
			t.Fatalf("Ended(k%d) = %v, %v; want %v (the mark expiring first is dropped)", i, ok, err, want)
		}
	}
}
