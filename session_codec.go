package oxd

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

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
	b := make([]byte, 0, 256+len(u.idToken))
	b = append(b, userEncodingVersion)
	b = appendString(b, u.Subject)
	b = appendTime(b, u.AccessTokenExpiry)
	b = appendTime(b, u.AuthenticatedAt)
	b = appendTime(b, u.refreshAt)
	b = appendString(b, string(u.accessToken))
	b = appendString(b, string(u.refreshToken))
	var payload []byte
	if previousUserEncoding.Load() {
		b[0] = userEncodingV2
		b = appendString(b, string(u.idToken))
	} else {
		b, payload = appendIDToken(b, string(u.idToken))
	}
	b = appendClaims(b, u.Claims)
	if derived, ok := derivedIDClaims(payload, string(u.idToken)); ok && sameClaims(derived, u.IDTokenClaims) {
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
	form := byte(idTokenAsIs)
	if ver >= userEncodingVersion {
		form = d.byte()
	}
	switch form {
	case idTokenAsIs:
		v.idToken = oxdclient.Secret(d.string())
	case idTokenJWS:
		h, p, sig := d.bytes(), d.bytes(), d.bytes()
		v.idToken = oxdclient.Secret(joinJWS(h, p, sig))
		payload = p
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
		c, ok := derivedIDClaims(payload, string(v.idToken))
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

// derivedIDClaims is idTokenClaims(tok), from the token's payload when it
// is already decoded (not nil).
func derivedIDClaims(payload []byte, tok string) (oxdclient.Claims, bool) {
	if payload != nil {
		return payloadClaims(payload)
	}
	return idTokenClaims(tok)
}

// idTokenClaims derives the claims of a JWT's payload in the shape oxd
// 3.x answers id_token_claims with (every claim an array of strings, null
// claims and null array elements left out), as the drop-in engine writes
// it. ok is false when the token is not a JWT with a JSON object payload or
// a claim is not a string, number, boolean or array of them. The signature
// is not checked: the token was validated at login, and a derived claim is
// only ever used when it equals, byte for byte, the claim the oxd server
// answered (see GobEncode).
func idTokenClaims(jwt string) (oxdclient.Claims, bool) {
	first := strings.IndexByte(jwt, '.')
	last := strings.LastIndexByte(jwt, '.')
	if first < 0 || last <= first {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(jwt[first+1 : last])
	if err != nil {
		return nil, false
	}
	return payloadClaims(payload)
}

// payloadClaims is idTokenClaims for the decoded payload.
func payloadClaims(payload []byte) (oxdclient.Claims, bool) {
	if c, ok := flatClaims(payload); ok {
		return c, true
	}
	return generalClaims(payload)
}

// generalClaims is the general path of payloadClaims.
func generalClaims(payload []byte) (oxdclient.Claims, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return nil, false
	}
	out := make(oxdclient.Claims, len(m))
	for k, raw := range m {
		v, ok := claimAsStrings(raw)
		if !ok {
			return nil, false
		}
		if v != nil {
			out[k] = v
		}
	}
	return out, true
}

// flatClaims is the fast path of idTokenClaims, for the common payload: a
// JSON object whose keys and values are strings without escapes, numbers,
// booleans or null. It gives the same claims as the general path, and ok
// false for anything else (the general path then decides).
func flatClaims(p []byte) (oxdclient.Claims, bool) {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return nil, false
	}
	out := make(oxdclient.Claims, 16)
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return out, skipSpace(p, i+1) == len(p)
	}
	// The keys are slices of one string of p, the values of one buffer
	// sized for the longest rewriting (4 bytes more per value, and there
	// are fewer values than colons): two allocations, not two per claim.
	ps := string(p)
	buf := make([]byte, 0, len(p)+4*bytes.Count(p, []byte(":")))
	value := func(parts ...[]byte) json.RawMessage {
		start := len(buf)
		for _, x := range parts {
			buf = append(buf, x...)
		}
		return buf[start:len(buf):len(buf)]
	}
	for {
		keyAt := i
		key, j, ok := plainStringAt(p, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(p, j)
		if i >= len(p) || p[i] != ':' {
			return nil, false
		}
		i = skipSpace(p, i+1)
		if i >= len(p) {
			return nil, false
		}
		var v json.RawMessage
		switch c := p[i]; {
		case c == '"':
			raw, j, ok := plainStringAt(p, i)
			if !ok {
				return nil, false
			}
			v, i = value(arrOpen, raw, arrClose), j
		case c == '-' || (c >= '0' && c <= '9'):
			j, ok := jsonNumberEnd(p, i)
			if !ok {
				return nil, false
			}
			v, i = value(arrOpenQ, p[i:j], arrCloseQ), j
		case bytes.HasPrefix(p[i:], []byte("true")):
			v, i = value(arrOpenQ, p[i:i+4], arrCloseQ), i+4
		case bytes.HasPrefix(p[i:], []byte("false")):
			v, i = value(arrOpenQ, p[i:i+5], arrCloseQ), i+5
		case bytes.HasPrefix(p[i:], []byte("null")):
			i += 4
		default:
			return nil, false
		}
		k := ps[keyAt+1 : keyAt+len(key)-1]
		if _, dup := out[k]; dup {
			return nil, false
		}
		if v != nil {
			out[k] = v
		}
		i = skipSpace(p, i)
		if i >= len(p) {
			return nil, false
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return out, skipSpace(p, i+1) == len(p)
		default:
			return nil, false
		}
	}
}

// Brackets of the rewritten claim values.
var (
	arrOpen, arrClose   = []byte("["), []byte("]")
	arrOpenQ, arrCloseQ = []byte(`["`), []byte(`"]`)
)

// jsonNumberEnd returns the index after the JSON number at p[i] (RFC 8259
// §6: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?), and false when
// there is none (a leading zero, a sign or exponent without digits…).
func jsonNumberEnd(p []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(p) && p[i] == '-' {
		i++
	}
	switch {
	case i < len(p) && p[i] == '0':
		i++
	case i < len(p) && p[i] >= '1' && p[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(p) && p[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// plainStringAt returns the JSON string literal at p[i] (quotes included)
// and the index after it, when it is a plainJSONString without control
// characters.
func plainStringAt(p []byte, i int) ([]byte, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, 0, false
	}
	end := bytes.IndexByte(p[i+1:], '"')
	if end < 0 {
		return nil, 0, false
	}
	raw := p[i : i+end+2]
	for _, c := range raw {
		if c < 0x20 {
			return nil, 0, false
		}
	}
	if !plainJSONString(raw) {
		return nil, 0, false
	}
	return raw, i + end + 2, true
}

// claimAsStrings is one claim's JSON value as a JSON array of strings (nil
// for null). Strings without escapes, numbers and booleans are rewritten
// directly; anything else goes through encoding/json.
func claimAsStrings(raw json.RawMessage) (json.RawMessage, bool) {
	switch {
	case len(raw) == 0:
		return nil, false
	case string(raw) == "null":
		return nil, true
	case raw[0] == '"' && plainJSONString(raw):
		return slices.Concat([]byte("["), raw, []byte("]")), true
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') || string(raw) == "true" || string(raw) == "false":
		return slices.Concat([]byte(`["`), raw, []byte(`"]`)), true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	var vals []string
	if arr, isArr := v.([]any); isArr {
		vals = make([]string, 0, len(arr))
		for _, x := range arr {
			if x == nil {
				continue
			}
			s, ok := scalarClaim(x)
			if !ok {
				return nil, false
			}
			vals = append(vals, s)
		}
	} else {
		s, ok := scalarClaim(v)
		if !ok {
			return nil, false
		}
		vals = []string{s}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(vals); err != nil {
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

// plainJSONString reports whether the JSON string literal raw has no
// escapes and only characters encoding/json writes as they are (without
// HTML escaping), so that it is its own re-encoding.
func plainJSONString(raw []byte) bool {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.ContainsAny(inner, "\\\"") || !utf8.Valid(inner) {
		return false
	}
	return !bytes.Contains(inner, []byte("\u2028")) && !bytes.Contains(inner, []byte("\u2029"))
}

func scalarClaim(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// sameClaims reports whether a and b hold the same claims with byte-equal
// values.
func sameClaims(a, b oxdclient.Claims) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
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
	v := d.bytes()
	if d.str == "" || d.err {
		return string(v)
	}
	end := len(d.str) - len(d.b) // v ends where the rest begins
	return d.str[end-len(v) : end]
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
