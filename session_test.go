package oxd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

func testUser() *User {
	now := time.Now().Round(0)
	u := &User{
		Subject:         "alice",
		Claims:          oxdclient.Claims{"sub": json.RawMessage(`["alice"]`), "email": json.RawMessage(`["alice@example.test"]`), "name": json.RawMessage(`"Alice"`)},
		IDTokenClaims:   oxdclient.Claims{"sub": json.RawMessage(`["alice"]`), "acr": json.RawMessage(`["otp"]`)},
		AuthenticatedAt: now,
		accessToken:     "AT-secret-value",
		refreshToken:    "RT-secret-value",
		idToken:         "IDT-secret-value",
	}
	u.setExpiry(now, 600, time.Minute)
	return u
}

// TestUserStoredThroughScsCodec: a User survives the scs gob codec (the
// types are registered by the package: no "type not registered for
// interface" error), tokens included.
func TestUserStoredThroughScsCodec(t *testing.T) {
	u := testUser()
	pl := pendingLogins{{State: "s1", ReturnTo: "/a", Created: time.Now().Round(0)}}
	b, err := scs.GobCodec{}.Encode(time.Now(), map[string]any{sessionKeyUser: u, sessionKeyPending: pl, "app": "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, vals, err := scs.GobCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := vals[sessionKeyUser].(*User)
	if !ok {
		t.Fatalf("user decoded as %T", vals[sessionKeyUser])
	}
	if got.Subject != u.Subject || got.accessToken != u.accessToken || got.refreshToken != u.refreshToken || got.idTokenText() != u.idTokenText() ||
		!got.AccessTokenExpiry.Equal(u.AccessTokenExpiry) || !got.refreshAt.Equal(u.refreshAt) || !got.AuthenticatedAt.Equal(u.AuthenticatedAt) ||
		got.Claim("email") != "alice@example.test" || got.Claim("name") != "Alice" || got.Claim("acr") != "otp" || len(got.Claims) != 3 {
		t.Fatalf("round trip: %#v", got)
	}
	gpl, ok := vals[sessionKeyPending].(pendingLogins)
	if !ok || len(gpl) != 1 || gpl[0] != pl[0] {
		t.Fatalf("pending: %#v", vals[sessionKeyPending])
	}
	// Zero times stay zero.
	z := &User{Subject: "z"}
	zb, _ := z.GobEncode()
	var zu User
	if err := zu.GobDecode(zb); err != nil || !zu.AccessTokenExpiry.IsZero() || zu.Claims != nil {
		t.Fatalf("zero user: %v %#v", err, zu)
	}
}

// TestUserDoesNotPrintTokens: fmt (every verb), encoding/json and slog
// never show a token of the user.
func TestUserDoesNotPrintTokens(t *testing.T) {
	u := testUser()
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, u), fmt.Sprintf(verb, *u))
	}
	j, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var buf bytes.Buffer
	lg := slog.New(slog.NewJSONHandler(&buf, nil))
	lg.Info("user", "u", u, "v", *u)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("user", "u", u)
	outs = append(outs, buf.String())
	for _, o := range outs {
		for _, s := range []string{"AT-secret", "RT-secret", "IDT-secret"} {
			if strings.Contains(o, s) {
				t.Errorf("%q leaks %s", o, s)
			}
		}
	}
	if !strings.Contains(outs[0], "alice") || !strings.Contains(buf.String(), "alice") {
		t.Errorf("subject missing: %q", outs[0])
	}
	if u.AccessToken().Reveal() != "AT-secret-value" {
		t.Fatal("AccessToken accessor")
	}
}

func TestUserGobDecodeRejectsGarbage(t *testing.T) {
	good, _ := testUser().GobEncode()
	for name, b := range map[string][]byte{
		"empty":            nil,
		"bad version":      append([]byte{9}, good[1:]...),
		"truncated":        good[:len(good)-3],
		"trailing":         append(append([]byte(nil), good...), 0),
		"huge claim count": {1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		var u User
		if err := u.GobDecode(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzUserGobDecode(f *testing.F) {
	good, _ := testUser().GobEncode()
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var u User
		if err := u.GobDecode(b); err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes equally.
		b2, _ := u.GobEncode()
		var u2 User
		if err := u2.GobDecode(b2); err != nil || u2.Subject != u.Subject || u2.accessToken != u.accessToken || len(u2.Claims) != len(u.Claims) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func TestSetExpiry(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	u := &User{refreshToken: "r"}
	u.setExpiry(now, 600, time.Minute)
	if !u.AccessTokenExpiry.Equal(now.Add(10*time.Minute)) || !u.refreshAt.Equal(now.Add(9*time.Minute)) {
		t.Fatalf("long-lived: %v %v", u.AccessTokenExpiry, u.refreshAt)
	}
	u.setExpiry(now, 60, time.Minute) // lifetime shorter than 2×lead: refresh at half-life
	if !u.refreshAt.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("short-lived: %v", u.refreshAt)
	}
	u.setExpiry(now, -1, time.Minute)
	if !u.AccessTokenExpiry.IsZero() || u.refreshDue(now.Add(time.Hour)) {
		t.Fatal("unknown expiry")
	}
	u2 := &User{}
	u2.setExpiry(now, 600, time.Minute)
	if u2.refreshDue(now.Add(time.Hour)) {
		t.Fatal("refresh without refresh token")
	}
}

func TestUserFromOutsideRequireLogin(t *testing.T) {
	if u, ok := UserFrom(context.Background()); ok || u != nil {
		t.Fatal("user in an empty context")
	}
	if _, ok := UserFrom(withUser(context.Background(), nil)); ok {
		t.Fatal("nil user reported")
	}
}

// legacyEncodeV1 is the version 1 encoding (the ID token's claims always
// stored), as sessions written before version 2 hold it.
func legacyEncodeV1(u *User) []byte {
	return appendClaims(legacyFields(userEncodingV1, u), u.IDTokenClaims)
}

// legacyFields is what encodings 1 and 2 share: the version, the fields,
// the ID token as a string and the userinfo claims.
func legacyFields(version byte, u *User) []byte {
	b := []byte{version}
	b = appendString(b, u.Subject)
	b = appendTime(b, u.AccessTokenExpiry)
	b = appendTime(b, u.AuthenticatedAt)
	b = appendTime(b, u.refreshAt)
	b = appendString(b, string(u.accessToken))
	b = appendString(b, string(u.refreshToken))
	b = appendString(b, string(u.idToken))
	return appendClaims(b, u.Claims)
}

func requireSameUser(t *testing.T, want, got *User) {
	t.Helper()
	if got.Subject != want.Subject || got.accessToken != want.accessToken || got.refreshToken != want.refreshToken || got.idTokenText() != want.idToken ||
		!got.AccessTokenExpiry.Equal(want.AccessTokenExpiry) || !got.refreshAt.Equal(want.refreshAt) || !got.AuthenticatedAt.Equal(want.AuthenticatedAt) {
		t.Fatalf("round trip: %#v", got)
	}
	for name, pair := range map[string][2]oxdclient.Claims{"Claims": {want.Claims, got.Claims}, "IDTokenClaims": {want.IDTokenClaims, got.IDTokenClaims}} {
		w, g := pair[0], pair[1]
		if len(w) != len(g) {
			t.Fatalf("%s: %d claims, want %d", name, len(g), len(w))
		}
		for k, v := range w {
			if !bytes.Equal(v, g[k]) {
				t.Fatalf("%s[%q] = %s, want %s", name, k, g[k], v)
			}
		}
	}
}

// devOPUser logs alice in at a development OP through the engine and
// returns the user a callback would store, with the engine's answer.
func devOPUser(t *testing.T) (*oxdtest.Server, *oxdclient.GetTokensByCodeResponse, *User) {
	t.Helper()
	srv := oxdtest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := srv.LoginTokens(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Round(0)
	u := &User{Subject: "alice", Claims: oxdclient.Claims{"email": json.RawMessage(`["alice@example.test"]`)},
		IDTokenClaims: tok.IDTokenClaims, AuthenticatedAt: now, accessToken: tok.AccessToken, refreshToken: tok.RefreshToken, idToken: tok.IDToken}
	u.setExpiry(now, 600, time.Minute)
	return srv, tok, u
}

// TestUserEncodingDerivesIDTokenClaims: with the claims the engine answers
// for a real ID token of the development OP, the session keeps the ID token
// only and re-derives exactly the same claims; claims that differ in any
// byte from the token's are stored; version 1 sessions are still read.
func TestUserEncodingDerivesIDTokenClaims(t *testing.T) {
	srv, tok, u := devOPUser(t)
	if len(u.IDTokenClaims) < 5 {
		t.Fatalf("too few claims to be a real ID token: %v", u.IDTokenClaims)
	}
	v1 := legacyEncodeV1(u)
	b, err := u.GobEncode()
	if err != nil {
		t.Fatal(err)
	}
	if b[len(b)-1] != idClaimsDerived {
		t.Fatal("the engine's id_token_claims were not recognised as the ID token's")
	}
	t.Logf("user encoding: %d bytes (version 1: %d)", len(b), len(v1))
	if len(b) >= len(v1)-100 {
		t.Fatalf("no saving: %d vs %d bytes", len(b), len(v1))
	}
	for name, enc := range map[string][]byte{"v2": b, "v1": v1} {
		var got User
		if err := got.GobDecode(enc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		requireSameUser(t, u, &got)
		if got.Claim("iss") != srv.OP.Issuer() {
			t.Fatalf("%s: iss %q", name, got.Claim("iss"))
		}
	}

	// Any difference from the token's claims: stored as they are.
	for name, change := range map[string]func(c oxdclient.Claims){
		"value":        func(c oxdclient.Claims) { c["sub"] = json.RawMessage(`["mallory"]`) },
		"shape":        func(c oxdclient.Claims) { c["sub"] = json.RawMessage(`"alice"`) },
		"spacing":      func(c oxdclient.Claims) { c["sub"] = json.RawMessage(`[ "` + tok.IDTokenClaims.String("sub") + `" ]`) },
		"extra claim":  func(c oxdclient.Claims) { c["extra"] = json.RawMessage(`["x"]`) },
		"missing":      func(c oxdclient.Claims) { delete(c, "iss") },
		"empty claims": func(c oxdclient.Claims) { clear(c) },
	} {
		c := maps.Clone(tok.IDTokenClaims)
		change(c)
		w := *u
		w.IDTokenClaims = c
		if len(c) == 0 {
			w.IDTokenClaims = nil
		}
		b, _ := w.GobEncode()
		var got User
		if err := got.GobDecode(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		requireSameUser(t, &w, &got)
	}
	// No or a broken ID token: stored.
	for _, idt := range []string{"", "a.b.c", "x.e30.y", "x." + base64.RawURLEncoding.EncodeToString([]byte(`{"o":{"a":1}}`)) + ".y"} {
		w := *u
		w.idToken = oxdclient.Secret(idt)
		w.IDTokenClaims = oxdclient.Claims{"o": json.RawMessage(`["{\"a\":1}"]`)}
		b, _ := w.GobEncode()
		var got User
		if err := got.GobDecode(b); err != nil {
			t.Fatalf("%q: %v", idt, err)
		}
		requireSameUser(t, &w, &got)
	}
	// A derived-mode encoding whose ID token does not decode is refused.
	bad := *u
	bad.idToken = "not-a-jwt"
	enc := legacyEncodeV1(&bad)
	enc[0] = userEncodingV2
	enc = appendClaims(enc[:len(enc)-len(appendClaims(nil, bad.IDTokenClaims))], nil)
	enc[len(enc)-1] = idClaimsDerived
	var got User
	if err := got.GobDecode(enc); err == nil {
		t.Fatal("derived claims of a broken ID token accepted")
	}
}

// BenchmarkUserGobDecode: the cost of re-deriving the ID token's claims on
// every request that loads the session.
func BenchmarkUserGobDecode(b *testing.B) {
	claims := oxdclient.Claims{}
	payload := map[string]any{}
	for k, v := range map[string]string{"iss": "https://op.example.test", "sub": "alice", "aud": "client-1234567890", "nonce": "n-0S6_WzA2Mj", "sid": "8e1f0d7c-9a9b-4c2f-a3c2", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "acr": "urn:mace:incommon:iap:silver"} {
		payload[k] = v
		claims[k] = json.RawMessage(`["` + v + `"]`)
	}
	for k, v := range map[string]int64{"exp": 1311281970, "iat": 1311280970, "auth_time": 1311280969} {
		payload[k] = v
		claims[k] = json.RawMessage(`["` + strconv.FormatInt(v, 10) + `"]`)
	}
	p, _ := json.Marshal(payload)
	idt := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(p) + "." + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xA5}, 256))
	for _, mode := range []string{"derived", "stored"} {
		u := &User{Subject: "alice", IDTokenClaims: claims, idToken: oxdclient.Secret(idt), accessToken: "at", refreshToken: "rt"}
		enc, _ := u.GobEncode()
		if mode == "stored" {
			enc = legacyEncodeV1(u)
		}
		b.Run(mode, func(b *testing.B) {
			// CPU time, not wall time: the figure that holds on a shared
			// machine.
			start := processCPU()
			for b.Loop() {
				var got User
				if err := got.GobDecode(enc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(enc)), "bytes")
		})
	}
}
