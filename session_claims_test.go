package oxd

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestFlatClaimsAgreesWithGeneralPath: the fast path of the ID token claims
// gives exactly what the general path gives, or leaves the payload to it.
func TestFlatClaimsAgreesWithGeneralPath(t *testing.T) {
	for _, p := range []string{
		`{}`, ` { } `, `{"a":"x"}`, `{"a":"x","b":12,"c":-1.5e3,"d":true,"e":false,"f":null}`,
		"{\n \"iss\" : \"https://op\" ,\t\"aud\":\"c\"\r\n}", `{"a":"é ü 日本"}`, `{"a":"x\u2028y"}`,
		`{"a":"\"q\""}`, `{"a":"x\/y"}`, `{"a":["x","y"]}`, `{"a":{"b":1}}`, `{"a":"x","a":"y"}`,
		`{"a":"x"`, `{"a" "x"}`, `{"a":"x"} x`, `[1]`, `{"a":tru}`, `{"a":12x}`, `{"a":"x",}`, `{"a":"<&>"}`,
		// Numbers: valid forms, and malformed ones the fast path must leave
		// to the general path (which refuses them).
		`{"a":0,"b":-0,"c":0.5,"d":1E+2,"e":-12e-3,"f":10}`,
		`{"a":00}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`, `{"a":1-2}`,
		`{"a":+1}`, `{"a":1.2.3}`, `{"a":1ee2}`, `{"a":--1}`, `{"a":-01}`,
	} {
		fast, fok := flatClaims([]byte(p), "")
		gen, gok := generalClaims([]byte(p))
		if !fok {
			continue
		}
		if !gok || len(fast) != len(gen) {
			t.Errorf("%q: fast %v, general %v (%v)", p, fast, gen, gok)
			continue
		}
		for k, v := range gen {
			if !bytes.Equal(fast[k], v) {
				t.Errorf("%q: %s: fast %s, general %s", p, k, fast[k], v)
			}
		}
	}
	if _, ok := flatClaims([]byte(`{"a":"x\"y"}`), ""); ok {
		t.Error("escapes must go to the general path")
	}
}

func FuzzFlatClaims(f *testing.F) {
	f.Add([]byte(`{"iss":"https://op","exp":1700000000,"aud":"c","x":null,"b":true}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		fast, ok := flatClaims(p, "")
		if !ok {
			return
		}
		gen, gok := generalClaims(p)
		if !gok || len(fast) != len(gen) {
			t.Fatalf("%q: fast %v, general %v", p, fast, gen)
		}
		for k, v := range gen {
			if !bytes.Equal(fast[k], v) {
				t.Fatalf("%q: %s: fast %s, general %s", p, k, fast[k], v)
			}
		}
	})
}

// plainJSONStringReference is what plainJSONString decides, by way of
// encoding/json: raw is valid JSON, a string without escapes, and
// encoding/json (without HTML escaping) writes its value back the same.
func plainJSONStringReference(raw []byte) bool {
	var s string
	if bytes.IndexByte(raw, '\\') >= 0 || json.Unmarshal(raw, &s) != nil || len(raw) < 2 || raw[0] != '"' {
		return false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) != nil {
		return false
	}
	return bytes.Equal(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), raw)
}

// TestPlainJSONString: the one-pass check of a plain JSON string agrees
// with encoding/json on escapes, control characters, invalid UTF-8,
// U+2028 and U+2029, and literals cut short.
func TestPlainJSONString(t *testing.T) {
	for _, raw := range []string{
		`""`, `"x"`, `"é ü 日本"`, `"<&>"`, "\"a\u2028b\"", "\"a\u2029b\"", "\"\u2027\u202a\"", `"a\"b"`, `"a\\b"`,
		`"a\/b"`, "\"a\tb\"", "\"a\x7fb\"", "\"\xff\"", "\"\xed\xa0\x80\"", "\"\xe2\x80\"", `"a"b"`, `"a`, `"`, `a"`, `x`, ``,
	} {
		if got, want := plainJSONString([]byte(raw)), plainJSONStringReference([]byte(raw)); got != want {
			t.Errorf("%q: plainJSONString %v, encoding/json %v", raw, got, want)
		}
	}
}

func FuzzPlainJSONString(f *testing.F) {
	f.Add([]byte(`"alice@example.test"`))
	f.Add([]byte("\"a\u2028\""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if got, want := plainJSONString(raw), plainJSONStringReference(raw); got != want {
			t.Fatalf("%q: plainJSONString %v, encoding/json %v", raw, got, want)
		}
	})
}

// TestFlatClaimsMemoryFollowsClaims: the claims map is not sized by the
// colons inside values (a user can put many in a profile claim the OP
// copies into the ID token, and the claims are derived on every request's
// session load): a 50 kB claim of colons costs a few times its size, not
// a map of 50 000 entries (about 70 times its size).
func TestFlatClaimsMemoryFollowsClaims(t *testing.T) {
	p := []byte(`{"sub":"alice","name":"` + strings.Repeat(":", 50000) + `"}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, ok := flatClaims(p, "")
	runtime.ReadMemStats(&after)
	if !ok || len(c) != 2 {
		t.Fatalf("flatClaims = %d claims, %v", len(c), ok)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 10*uint64(len(p)) {
		t.Fatalf("flatClaims allocated %d bytes for a %d-byte payload", n, len(p))
	}
}
