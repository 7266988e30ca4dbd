package oxdserver

import (
	"encoding/base64"
	"encoding/binary"
	"time"
)

// The engine keeps one value per pending login: under the state it issued
// ("state:<oxd_id>/<state>"), a compact binary record with the nonce
// issued with it, the nonce's expiry and the PKCE code_verifier. The nonce
// has no value of its own: the state is single use (taken atomically), so
// the nonce bound to it is single use too, and its own lifetime
// (Config.NonceTTL) is the expiry in the record. The site is the key's
// (a state taken under another site's key is not found).
//
// Layout, version 1 (61 bytes for a login, 1 for a claims-gathering state):
//
//	[0]      kind: recLogin or recClaims
//	[1:9]    login only: the nonce's expiry, Unix milliseconds, big endian
//	[9:29]   login only: the nonce's 20 random bytes (sent as 32 base32 chars)
//	[29:61]  login only: the code_verifier's 32 random bytes (sent as 43
//	         base64url chars)
//
// A record that does not decode (another layout, a record of an older
// version) is "state not registered": the user starts the login again.
const (
	recLogin  byte = 'L'
	recClaims byte = 'C'

	nonceBytes    = 20
	verifierBytes = 32
	loginRecLen   = 1 + 8 + nonceBytes + verifierBytes
)

// stateRecord is what the engine keeps under a state it issued.
type stateRecord struct {
	kind     byte
	nonceExp time.Time
	nonce    [nonceBytes]byte
	verifier [verifierBytes]byte
}

// encode returns the record's stored form.
func (r *stateRecord) encode() []byte {
	if r.kind != recLogin {
		return []byte{r.kind}
	}
	b := make([]byte, loginRecLen)
	b[0] = recLogin
	binary.BigEndian.PutUint64(b[1:9], uint64(r.nonceExp.UnixMilli()))
	copy(b[9:], r.nonce[:])
	copy(b[9+nonceBytes:], r.verifier[:])
	return b
}

// decodeStateRecord reads a stored record; false for anything that is not
// exactly one of the layouts above.
func decodeStateRecord(b []byte) (stateRecord, bool) {
	var r stateRecord
	switch {
	case len(b) == 1 && b[0] == recClaims:
		r.kind = recClaims
		return r, true
	case len(b) == loginRecLen && b[0] == recLogin:
		r.kind = recLogin
		ms := binary.BigEndian.Uint64(b[1:9])
		if ms > 1<<62 {
			return r, false
		}
		r.nonceExp = time.UnixMilli(int64(ms))
		copy(r.nonce[:], b[9:])
		copy(r.verifier[:], b[9+nonceBytes:])
		return r, true
	}
	return r, false
}

// nonceString is the nonce as sent to the OP (the alphabet of oxd 3.1.4's
// values).
func (r *stateRecord) nonceString() string { return lowerBase32.EncodeToString(r.nonce[:]) }

// verifierString is the PKCE code_verifier (RFC 7636 §4.1, 43 chars).
func (r *stateRecord) verifierString() string {
	return base64.RawURLEncoding.EncodeToString(r.verifier[:])
}
