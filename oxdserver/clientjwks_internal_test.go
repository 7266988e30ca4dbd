package oxdserver

import (
	"strings"
	"testing"
	"time"
)

// TestClientJWKSCacheShorterThanRotationLead: an OP that caches the
// public JWKS route for its max-age, served from another engine's cache,
// still fetches a rotated key before the key signs.
func TestClientJWKSCacheShorterThanRotationLead(t *testing.T) {
	if d := time.Duration(clientJWKSMaxAge)*time.Second + clientJWKSHitTTL; d >= keyRotationLead {
		t.Fatalf("max-age %ds and the engine's cache %v are not shorter than the rotation lead %v", clientJWKSMaxAge, clientJWKSHitTTL, keyRotationLead)
	}
}

// TestIsOxdID: the public JWKS route reads the store only for the
// canonical text form of a UUID, the form of the engine's oxd_ids.
func TestIsOxdID(t *testing.T) {
	for range 100 {
		if id := newOxdID(); !isOxdID(id) {
			t.Fatalf("the engine's oxd_id %q refused", id)
		}
	}
	for _, ok := range []string{"2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a10", "00000000-0000-0000-0000-000000000000"} {
		if !isOxdID(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{
		"", ".", "..", "a/b", "1736.179E", "a_b.c", strings.Repeat("a", 36),
		"2B1C6BC0-6D0E-4B6A-8A55-1F0F3C2B9A10", "2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a1", "2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a100",
		"2b1c6bc06d0e-4b6a-8a55-1f0f3c2b9a10-", "2b1c6bc0_6d0e_4b6a_8a55_1f0f3c2b9a10", "2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a1g",
		"{2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a}", "2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a1\x00",
	} {
		if isOxdID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
