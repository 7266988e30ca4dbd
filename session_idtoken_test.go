package oxd

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/oxdgo/oxd/oxdclient"
)

// legacyEncodeV2 is the version 2 encoding (the ID token as a string, its
// claims derived when they equal the token's), as sessions written before
// version 3 hold it.
func legacyEncodeV2(u *User) []byte {
	b := legacyFields(userEncodingV2, u)
	if derived, ok := idTokenClaims(string(u.idToken)); ok && sameClaims(derived, u.IDTokenClaims) {
		return append(b, idClaimsDerived)
	}
	return appendClaims(append(b, idClaimsStored), u.IDTokenClaims)
}

// TestUserEncodingKeepsIDTokenDecoded: a real ID token of the development
// OP is stored as its decoded segments (a quarter smaller than version 2)
// and comes back byte for byte, with the same derived claims; sessions of
// versions 1 and 2 are still read.
func TestUserEncodingKeepsIDTokenDecoded(t *testing.T) {
	_, _, u := devOPUser(t)
	b, err := u.GobEncode()
	if err != nil {
		t.Fatal(err)
	}
	v2, v1 := legacyEncodeV2(u), legacyEncodeV1(u)
	t.Logf("user encoding: %d bytes (version 2: %d, version 1: %d; ID token %d characters)", len(b), len(v2), len(v1), len(u.idToken))
	if saved := len(v2) - len(b); saved < len(u.idToken)/5 {
		t.Fatalf("version 3 saves %d bytes on a %d-character ID token", saved, len(u.idToken))
	}
	for name, enc := range map[string][]byte{"v3": b, "v2": v2, "v1": v1} {
		var got User
		if err := got.GobDecode(enc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		requireSameUser(t, u, &got)
	}
}

// TestUserEncodingIDTokenForms: whatever the ID token is, it comes back
// exactly; only a JWS whose segments re-encode to the same text is stored
// decoded.
func TestUserEncodingIDTokenForms(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	h, p, s := enc([]byte(`{"alg":"RS256"}`)), enc([]byte(`{"sub":"alice","n":1}`)), enc([]byte("signature bytes"))
	for tok, decoded := range map[string]bool{
		h + "." + p + "." + s: true,
		h + "." + p + ".":     true, // unsigned (alg none)
		"":                    false,
		"opaque-token":        false,
		h + "." + p:           false,
		h + "." + p + "." + s + "." + s + "." + s: false, // JWE: five parts
		"." + p + "." + s:                         false,
		h + ".." + s:                              false,
		h + "." + p + "." + s + "=":               false, // padding
		h + ".QR." + s:                            false, // padding bits set ("QQ" is canonical)
		h + "." + p[:4] + "\n" + p[4:] + "." + s:  false, // a line break the decoder skips
		h + "." + p + "." + s + " ":               false,
		"a+b." + p + "." + s:                      false, // standard, not url, alphabet
	} {
		u := &User{Subject: "alice", idToken: oxdclient.Secret(tok)}
		b, err := u.GobEncode()
		if err != nil {
			t.Fatal(err)
		}
		_, isJWS := jwsSegments(tok)
		if isJWS != decoded {
			t.Errorf("%q: stored decoded %v, want %v", tok, isJWS, decoded)
		}
		var got User
		if err := got.GobDecode(b); err != nil {
			t.Fatalf("%q: %v", tok, err)
		}
		if string(got.idTokenText()) != tok {
			t.Errorf("ID token %q came back as %q", tok, got.idTokenText())
		}
	}
}

// FuzzIDTokenForm: every ID token survives the encoding exactly.
func FuzzIDTokenForm(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln")
	f.Add("a.b.c")
	f.Add(strings.Repeat("x", 10))
	f.Fuzz(func(t *testing.T, tok string) {
		u := &User{Subject: "s", idToken: oxdclient.Secret(tok)}
		b, err := u.GobEncode()
		if err != nil {
			t.Fatal(err)
		}
		var got User
		if err := got.GobDecode(b); err != nil {
			t.Fatalf("%q: %v", tok, err)
		}
		if string(got.idTokenText()) != tok {
			t.Fatalf("%q came back as %q", tok, got.idTokenText())
		}
		// A user loaded from a session (the token kept as segments when
		// it is a JWS) is written again, as after a refresh: the same
		// bytes, and the same token once more.
		again, err := got.GobEncode()
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(b) {
			t.Fatalf("%q: written again as %x, first %x", tok, again, b)
		}
		var got2 User
		if err := got2.GobDecode(again); err != nil || string(got2.idTokenText()) != tok {
			t.Fatalf("%q: the second load gave %q (%v)", tok, got2.idTokenText(), err)
		}
	})
}

// TestDecodedIDTokenPreviousEncoding: with the previous release's encoding
// (Config.GobSessions), a user loaded from a version 3 session is written
// with its ID token as text (version 2), which the previous release reads.
func TestDecodedIDTokenPreviousEncoding(t *testing.T) {
	_, _, u := devOPUser(t)
	b, err := u.GobEncode()
	if err != nil {
		t.Fatal(err)
	}
	var got User
	if err := got.GobDecode(b); err != nil {
		t.Fatal(err)
	}
	if got.idTokenJWS == nil || got.idToken != "" {
		t.Fatal("the loaded user does not keep the ID token as segments")
	}
	previousUserEncoding.Store(true)
	defer previousUserEncoding.Store(false)
	v2, err := got.GobEncode()
	if err != nil {
		t.Fatal(err)
	}
	if v2[0] != userEncodingV2 || string(v2) != string(legacyEncodeV2(u)) {
		t.Fatalf("version %d, want the version 2 encoding of the user", v2[0])
	}
}
