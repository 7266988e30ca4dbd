package oxdserver

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStateRecordRoundTrip: a login's record is 61 bytes and reads back
// field for field; a claims-gathering record is one byte.
func TestStateRecordRoundTrip(t *testing.T) {
	exp := time.UnixMilli(time.Now().Add(5 * time.Minute).UnixMilli())
	rec, challenge := newLoginRecord(exp)
	b := rec.encode()
	require.Len(t, b, loginRecLen)
	assert.Equal(t, 61, loginRecLen)
	got, ok := decodeStateRecord(b)
	require.True(t, ok)
	assert.Equal(t, rec, got)
	assert.True(t, got.nonceExp.Equal(exp))
	assert.Len(t, got.nonceString(), 32)
	assert.Len(t, got.verifierString(), 43)
	assert.Len(t, challenge, 43)
	other, _ := newLoginRecord(exp)
	assert.NotEqual(t, rec.nonce, other.nonce, "nonces repeat")
	assert.NotEqual(t, rec.verifier, other.verifier, "verifiers repeat")

	c := stateRecord{kind: recClaims}
	got, ok = decodeStateRecord(c.encode())
	require.True(t, ok)
	assert.Equal(t, recClaims, got.kind)
}

// TestStateRecordRejectsOtherForms: every other layout is refused (the
// caller answers "state not registered"): the JSON records of earlier
// versions, truncated or extended records, unknown kinds, a claims kind
// with a login's length.
func TestStateRecordRejectsOtherForms(t *testing.T) {
	rec, _ := newLoginRecord(time.Now())
	good := rec.encode()
	legacy, _ := json.Marshal(map[string]string{"kind": "login", "oxd_id": "x", "nonce": "n", "verifier": "v"})
	bad := [][]byte{
		nil, {}, legacy, good[:len(good)-1], append(bytes.Clone(good), 0),
		{'X'}, {recLogin}, append([]byte{recClaims}, good[1:]...), append([]byte{'l'}, good[1:]...),
	}
	huge := bytes.Clone(good)
	copy(huge[1:9], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	bad = append(bad, huge)
	for i, b := range bad {
		_, ok := decodeStateRecord(b)
		assert.False(t, ok, "form %d (%q) decoded", i, b)
	}
}

// FuzzStateRecord: decoding never panics, and what decodes encodes back
// to the same bytes.
func FuzzStateRecord(f *testing.F) {
	rec, _ := newLoginRecord(time.Now())
	f.Add(rec.encode())
	f.Add([]byte{recClaims})
	f.Add([]byte(`{"kind":"login"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := decodeStateRecord(b)
		if !ok {
			return
		}
		if got := r.encode(); !bytes.Equal(got, b) {
			t.Fatalf("%x decodes and encodes back as %x", b, got)
		}
	})
}
