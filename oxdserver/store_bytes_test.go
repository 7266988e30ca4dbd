package oxdserver_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdserver"
)

// TestMemoryStorePendingLoginBytes (design P9): what one pending login
// holds in the memory (and file) store: its key, its 61-byte record and
// the bookkeeping of the bounds. The sizes documented with
// DefaultMaxValues rest on it.
func TestMemoryStorePendingLoginBytes(t *testing.T) {
	const n = 10_000
	site := "2f6a1c4e-8d3b-4a51-9f0e-6b7c2d1e3f40" // an oxd_id's length
	keys := make([]string, n)
	for i := range keys {
		s := strconv.FormatInt(int64(i), 32)
		keys[i] = "state:" + site + "/" + s + strings.Repeat("s", 32-len(s))
	}
	value := make([]byte, 61)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	m := oxdserver.NewMemoryStore()
	ctx := context.Background()
	before := heap()
	for _, k := range keys {
		// The store's key is a copy, as when it comes from a request.
		require.NoError(t, m.PutValue(ctx, strings.Clone(k), value, 5*time.Minute))
	}
	per := float64(heap()-before) / n
	runtime.KeepAlive(m)
	t.Logf("memory store bytes per pending login: %.0f", per)
	if per > 512 {
		t.Errorf("a pending login holds %.0f bytes in the memory store, want at most 512", per)
	}
}
