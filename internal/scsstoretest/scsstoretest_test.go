package scsstoretest

import (
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
)

// TestMemstore runs the suite on scs's own memstore, the reference
// implementation: the suite asks nothing of a store that scs's own store
// does not do.
func TestMemstore(t *testing.T) {
	Run(t, func(t *testing.T) scs.Store {
		// No cleanup goroutine (its StopCleanup races with its start):
		// Find and All check the expiry themselves.
		return memstore.NewWithCleanupInterval(0)
	})
}

func TestToken(t *testing.T) {
	a, b := Token(), Token()
	if len(a) != 43 || a == b {
		t.Fatalf("Token() = %q, %q", a, b)
	}
}
