package oxd

// The derivation of a session User's ID token claims from the token
// itself (encoding version 2 and later store them only when they cannot be
// derived): a fast path for flat claim sets, checked against the general
// JSON path.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/oxdgo/oxd/oxdclient"
)

// derivedIDClaims is idTokenClaims(tok), from the token's payload when it
// is already decoded (not nil; ps is the payload as a string, or "").
func derivedIDClaims(payload []byte, ps, tok string) (oxdclient.Claims, bool) {
	if payload != nil {
		return payloadClaims(payload, ps)
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
	return payloadClaims(payload, "")
}

// payloadClaims is idTokenClaims for the decoded payload; ps is the
// payload as a string, or "" (then it is made when needed).
func payloadClaims(payload []byte, ps string) (oxdclient.Claims, bool) {
	if c, ok := flatClaims(payload, ps); ok {
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
// false for anything else (the general path then decides). ps is the
// payload p as a string (the keys are slices of it), or "" to make it.
func flatClaims(p []byte, ps string) (oxdclient.Claims, bool) {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return nil, false
	}
	// Every claim has a colon: the map is made for all of them at once,
	// up to flatClaimsHint (colons inside values, which a user may put in
	// a profile claim, must not size it).
	colons := bytes.Count(p, []byte(":"))
	out := make(oxdclient.Claims, min(colons, flatClaimsHint))
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return out, skipSpace(p, i+1) == len(p)
	}
	// The keys are slices of one string of p, the values of one buffer
	// sized for the longest rewriting (4 bytes more per value, and there
	// are fewer values than colons): two allocations, not two per claim.
	if len(ps) != len(p) {
		ps = string(p)
	}
	buf := make([]byte, 0, len(p)+4*colons)
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

// flatClaimsHint bounds the size the claims map is made with: more than
// an ID token's usual claims.
const flatClaimsHint = 64

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
// and the index after it, when it is a plainJSONString (which also rules
// out control characters): one pass over the literal.
func plainStringAt(p []byte, i int) ([]byte, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, 0, false
	}
	n, ok := plainStringBody(p[i+1:])
	if !ok {
		return nil, 0, false
	}
	end := i + 1 + n + 1
	return p[i:end], end, true
}

// plainStringBody returns the length of s up to its first '"' when every
// byte before it can stand in a JSON string as it is and encoding/json
// writes it back the same (without HTML escaping): no backslash, no
// control character, valid UTF-8, no U+2028 or U+2029. ok is false
// otherwise, and when there is no '"'.
func plainStringBody(s []byte) (int, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			return i, true
		case c == '\\' || c < 0x20:
			return 0, false
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
				return 0, false
			}
			i += size
		}
	}
	return 0, false
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
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	n, ok := plainStringBody(raw[1:])
	return ok && n == len(raw)-2
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
