package oxd

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// The binary encoding of a User in the session store (GobEncode and
// GobDecode), and the derivation of the ID token's claims it relies on.

// Binary encoding of a User for the session store (through gob, which calls
// GobEncode/GobDecode). Version byte, then length-prefixed fields.
//
// Version 2 stores the ID token's claims only when they cannot be derived
// from the stored ID token: when IDTokenClaims are exactly (key for key,
// byte for byte) what idTokenClaims derives from the ID token's payload,
// a mode byte says so and the claims are re-derived on decoding, which
// saves a few hundred bytes of Redis per session.
//
// Version 3 also stores a JWS compact ID token (header.payload.signature)
// as its three segments base64url-decoded (a form byte says so), a quarter
// smaller, when encoding them again gives back the very same token; any
// other ID token is stored as it is. Versions 1 (claims always stored) and
// 2 are still read.
const (
	userEncodingV1      = 1
	userEncodingV2      = 2
	userEncodingVersion = 3
)

// Modes of the ID token claims (encoding version 2 and later).
const (
	idClaimsStored  = 0 // the claims follow
	idClaimsDerived = 1 // the claims are idTokenClaims(idToken)
)

// Forms of the ID token (encoding version 3).
const (
	idTokenAsIs = 0 // the token follows as a string
	idTokenJWS  = 1 // header, payload and signature follow, base64url-decoded
)

// previousUserEncoding makes GobEncode write version 2, which the previous
// release reads (Config.GobSessions; process-wide, as gob calls GobEncode
// without a context).
var previousUserEncoding atomic.Bool

// maxUserEncoding bounds what GobDecode accepts.
const maxUserEncoding = 1 << 20

// GobEncode implements gob.GobEncoder so that scs can store a User (with
// its tokens) although the tokens are unexported.
func (u *User) GobEncode() ([]byte, error) {
	idToken := u.idToken
	j := u.idTokenJWS
	if j != nil && previousUserEncoding.Load() {
		idToken, j = u.idTokenText(), nil
	}
	size := 256 + len(idToken)
	if j != nil {
		size += len(j.header) + len(j.payload) + len(j.signature)
	}
	b := make([]byte, 0, size)
	b = append(b, userEncodingVersion)
	b = appendString(b, u.Subject)
	b = appendTime(b, u.AccessTokenExpiry)
	b = appendTime(b, u.AuthenticatedAt)
	b = appendTime(b, u.refreshAt)
	b = appendString(b, string(u.accessToken))
	b = appendString(b, string(u.refreshToken))
	var payload []byte
	switch {
	case previousUserEncoding.Load():
		b[0] = userEncodingV2
		b = appendString(b, string(idToken))
	case j != nil:
		// Decoded from a session: the segments are written as they are.
		b = append(b, idTokenJWS)
		b = appendString(b, string(j.header))
		b = appendString(b, string(j.payload))
		b = appendString(b, string(j.signature))
		payload = j.payload
	default:
		b, payload = appendIDToken(b, string(idToken))
	}
	b = appendClaims(b, u.Claims)
	if derived, ok := derivedIDClaims(payload, "", string(idToken)); ok && sameClaims(derived, u.IDTokenClaims) {
		return append(b, idClaimsDerived), nil
	}
	b = append(b, idClaimsStored)
	b = appendClaims(b, u.IDTokenClaims)
	return b, nil
}

// GobDecode implements gob.GobDecoder.
func (u *User) GobDecode(b []byte) error {
	if len(b) == 0 || len(b) > maxUserEncoding {
		return errUserEncoding
	}
	ver := b[0]
	if ver != userEncodingV1 && ver != userEncodingV2 && ver != userEncodingVersion {
		return errUserEncoding
	}
	// One copy of the input (gob reuses its buffer) as bytes and one as a
	// string: every field and claim is a slice of them, not a copy each.
	own := bytes.Clone(b[1:])
	d := decoder{b: own, str: string(own)}
	var v User
	v.Subject = d.string()
	v.AccessTokenExpiry = d.time()
	v.AuthenticatedAt = d.time()
	v.refreshAt = d.time()
	v.accessToken = oxdclient.Secret(d.string())
	v.refreshToken = oxdclient.Secret(d.string())
	var payload []byte // the ID token's, when stored decoded
	var payloadStr string
	form := byte(idTokenAsIs)
	if ver >= userEncodingVersion {
		form = d.byte()
	}
	switch form {
	case idTokenAsIs:
		v.idToken = oxdclient.Secret(d.string())
	case idTokenJWS:
		h := d.bytes()
		p, ps := d.bytesAndString()
		sig := d.bytes()
		if d.err || len(h) == 0 || len(p) == 0 {
			return errUserEncoding
		}
		v.idTokenJWS = &jwsParts{header: h, payload: p, signature: sig}
		payload, payloadStr = p, ps
	default:
		return errUserEncoding
	}
	v.Claims = d.claims()
	mode := byte(idClaimsStored)
	if ver >= userEncodingV2 {
		mode = d.byte()
	}
	switch mode {
	case idClaimsStored:
		v.IDTokenClaims = d.claims()
	case idClaimsDerived:
		c, ok := derivedIDClaims(payload, payloadStr, string(v.idToken))
		if !ok {
			return errUserEncoding
		}
		v.IDTokenClaims = c
	default:
		return errUserEncoding
	}
	if d.err || len(d.b) != 0 {
		return errUserEncoding
	}
	*u = v
	return nil
}

var errUserEncoding = errors.New("oxd: malformed user in session")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendClaims(b []byte, c oxdclient.Claims) []byte {
	b = binary.AppendUvarint(b, uint64(len(c)))
	for k, v := range c {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// decoder reads the fields of an encoding. With str set (str holds the
// same bytes as b when the decoder starts, and b is owned by the decoder),
// strings are slices of str and byte slices of b: no copy per field.
type decoder struct {
	b   []byte
	str string
	err bool
}

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err || len(d.b) == 0 {
		d.err = true
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) string() string {
	_, s := d.bytesAndString()
	return s
}

// bytesAndString reads a field as bytes and as a string holding the same
// bytes (a slice of str when set, else a copy).
func (d *decoder) bytesAndString() ([]byte, string) {
	v := d.bytes()
	if d.str == "" || d.err {
		return v, string(v)
	}
	end := len(d.str) - len(d.b) // v ends where the rest begins
	return v, d.str[end-len(v) : end]
}

func (d *decoder) time() time.Time {
	if d.err {
		return time.Time{}
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return time.Time{}
	}
	d.b = d.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

func (d *decoder) claims() oxdclient.Claims {
	n := d.uvarint()
	if d.err {
		return nil
	}
	// Each claim needs at least two bytes: refuse counts the input cannot
	// hold before allocating.
	if n > uint64(len(d.b))/2 {
		d.err = true
		return nil
	}
	if n == 0 {
		return nil
	}
	c := make(oxdclient.Claims, n)
	for range n {
		k := d.string()
		v := d.bytes()
		if d.err {
			return nil
		}
		if d.str == "" {
			v = bytes.Clone(v) // the input is not the decoder's
		}
		c[k] = json.RawMessage(v)
	}
	return c
}
