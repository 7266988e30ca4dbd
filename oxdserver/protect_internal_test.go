package oxdserver

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProtCacheCapAndKeys: the cache never holds more than its cap, expired
// entries are dropped when met, forget drops one setup site's entries, and
// the key binds the token to the setup site, its client and its OP.
func TestProtCacheCapAndKeys(t *testing.T) {
	var c protCache
	now := time.Now()
	for i := range 1000 {
		k := sha256.Sum256([]byte(fmt.Sprint(i)))
		c.put(k, protEntry{oxdID: fmt.Sprint("setup", i%2), clientID: "c"}, now.Add(time.Minute), 100)
		require.LessOrEqual(t, c.len(), 100)
	}
	assert.Equal(t, 100, c.len())
	_, ok := c.get(sha256.Sum256([]byte("0")), now)
	assert.False(t, ok, "the oldest were evicted")
	id, ok := c.get(sha256.Sum256([]byte("999")), now)
	assert.True(t, ok)
	assert.Equal(t, "c", id)
	_, ok = c.get(sha256.Sum256([]byte("999")), now.Add(time.Minute))
	assert.False(t, ok, "expired")
	assert.Equal(t, 99, c.len(), "an expired entry is dropped when met")
	c.forget("setup0")
	assert.Equal(t, 49, c.len())

	a := &Site{OxdID: "a", ClientID: "ca", OPHost: "https://op.example"}
	keys := map[[sha256.Size]byte]string{}
	for name, k := range map[string][sha256.Size]byte{
		"base":       protKey(a, "tok"),
		"token":      protKey(a, "tok2"),
		"oxd_id":     protKey(&Site{OxdID: "b", ClientID: "ca", OPHost: "https://op.example"}, "tok"),
		"client":     protKey(&Site{OxdID: "a", ClientID: "cb", OPHost: "https://op.example"}, "tok"),
		"op":         protKey(&Site{OxdID: "a", ClientID: "ca", OPHost: "https://op2.example"}, "tok"),
		"boundaries": protKey(&Site{OxdID: "a", ClientID: "c", OPHost: "https://op.example"}, "atok"),
	} {
		if prev, dup := keys[k]; dup {
			t.Fatalf("%s and %s share a key", name, prev)
		}
		keys[k] = name
	}
	assert.Equal(t, protKey(a, "tok"), protKey(a, "tok"))
}
