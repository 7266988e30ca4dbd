package oxdserver

import (
	"strings"
	"testing"
	"time"
)

// TestClientJWKSCacheShorterThanRotationLead: an OP that caches the
// public JWKS route for its max-age still fetches a rotated key before the
// key signs.
func TestClientJWKSCacheShorterThanRotationLead(t *testing.T) {
	if time.Duration(clientJWKSMaxAge)*time.Second >= keyRotationLead {
		t.Fatalf("max-age %ds is not shorter than the rotation lead %v", clientJWKSMaxAge, keyRotationLead)
	}
}

func TestValidOxdIDSegment(t *testing.T) {
	for _, ok := range []string{"2b1c6bc0-6d0e-4b6a-8a55-1f0f3c2b9a10", "1736.179E", "a_b.c", strings.Repeat("a", 128)} {
		if !validOxdIDSegment(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", "a%2e", "a\x00b", "a:b", "é", strings.Repeat("a", 129)} {
		if validOxdIDSegment(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
