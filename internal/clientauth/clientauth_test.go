package clientauth

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testTokenEP = "https://op.example.test/token"
	testIssuer  = "https://op.example.test"
	// 40 bytes: long enough for HS256.
	testSecret = "s3cr3t-with:colon+plus/slash=eq&amp%-pct"
)

// t0 is in the past, so keys made at t0 sign when Now is time.Now.
var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustKeys(t testing.TB, alg string) *KeySet {
	t.Helper()
	ks, err := GenerateKeySet(alg, t0)
	if err != nil {
		t.Fatalf("GenerateKeySet(%s): %v", alg, err)
	}
	return ks
}

// TestApplyRequestShape pins the exact header and form each method
// produces (RFC 6749 §2.3.1, RFC 7523 §2.2, OIDC Core §9).
func TestApplyRequestShape(t *testing.T) {
	keys := mustKeys(t, "ES256")
	cases := []struct {
		name       string
		creds      Credentials
		wantAuth   string
		wantForm   []string // keys of the form after Apply, besides grant_type
		wantValues map[string]string
	}{
		{
			name:     "client_secret_basic",
			creds:    Credentials{ClientID: "rp 1", Method: MethodSecretBasic, Secret: testSecret},
			wantAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("rp+1:"+url.QueryEscape(testSecret))),
			wantForm: nil,
		},
		{
			name:     "default method is client_secret_basic",
			creds:    Credentials{ClientID: "rp", Secret: testSecret},
			wantAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("rp:"+url.QueryEscape(testSecret))),
		},
		{
			name:       "client_secret_post",
			creds:      Credentials{ClientID: "rp", Method: MethodSecretPost, Secret: testSecret},
			wantForm:   []string{"client_id", "client_secret"},
			wantValues: map[string]string{"client_id": "rp", "client_secret": testSecret},
		},
		{
			name:       "client_secret_jwt",
			creds:      Credentials{ClientID: "rp", Method: MethodSecretJWT, Secret: testSecret, TokenEndpoint: testTokenEP},
			wantForm:   []string{"client_assertion", "client_assertion_type", "client_id"},
			wantValues: map[string]string{"client_id": "rp", "client_assertion_type": AssertionType},
		},
		{
			name:       "private_key_jwt",
			creds:      Credentials{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: keys, TokenEndpoint: testTokenEP},
			wantForm:   []string{"client_assertion", "client_assertion_type", "client_id"},
			wantValues: map[string]string{"client_id": "rp", "client_assertion_type": AssertionType},
		},
		{
			name:       "none",
			creds:      Credentials{ClientID: "public-rp", Method: MethodNone, PKCE: true},
			wantForm:   []string{"client_id"},
			wantValues: map[string]string{"client_id": "public-rp"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			form := url.Values{"grant_type": {"client_credentials"}}
			if err := Apply(h, form, testTokenEP, tc.creds); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got := h.Get("Authorization"); got != tc.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tc.wantAuth)
			}
			if len(h) != boolInt(tc.wantAuth != "") {
				t.Errorf("headers = %v, want only Authorization (if any)", h)
			}
			var keys []string
			for k := range form {
				if k != "grant_type" {
					keys = append(keys, k)
				}
			}
			if strings.Join(sorted(keys), ",") != strings.Join(tc.wantForm, ",") {
				t.Errorf("form keys = %v, want %v", sorted(keys), tc.wantForm)
			}
			for k, v := range tc.wantValues {
				if form.Get(k) != v {
					t.Errorf("form[%s] = %q, want %q", k, form.Get(k), v)
				}
			}
			if form.Get("grant_type") != "client_credentials" {
				t.Error("grant_type was changed")
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestBasicEncodesBeforeBase64 is RFC 6749 §2.3.1: an id or secret with
// ':', '+', '%', space or non-ASCII survives the round trip an OP does
// (base64-decode, split at the first ':', form-urldecode each part).
func TestBasicEncodesBeforeBase64(t *testing.T) {
	for _, pair := range [][2]string{
		{"client:with:colons", "secret:with:colons"},
		{"a b+c%d", "é ü/+=&?#"},
		{"plain", "plain"},
	} {
		hv := BasicAuthorization(pair[0], pair[1])
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(hv, "Basic "))
		if err != nil {
			t.Fatal(err)
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok || strings.Contains(p, ":") {
			t.Fatalf("%q: encoded parts still contain ':' (%q)", pair, raw)
		}
		gu, _ := url.QueryUnescape(u)
		gp, _ := url.QueryUnescape(p)
		if gu != pair[0] || gp != pair[1] {
			t.Errorf("round trip of %q gave %q, %q", pair, gu, gp)
		}
	}
}

// TestApplyRefusesSecondAuthentication: RFC 6749 §2.3 forbids more than
// one authentication method per request.
func TestApplyRefusesSecondAuthentication(t *testing.T) {
	c := Credentials{ClientID: "rp", Method: MethodSecretPost, Secret: testSecret}
	for name, prep := range map[string]func(http.Header, url.Values){
		"authorization header": func(h http.Header, _ url.Values) { h.Set("Authorization", "Bearer x") },
		"client_secret":        func(_ http.Header, f url.Values) { f.Set("client_secret", "x") },
		"client_assertion":     func(_ http.Header, f url.Values) { f.Set("client_assertion", "x") },
		"other client_id":      func(_ http.Header, f url.Values) { f.Set("client_id", "other") },
	} {
		h, f := http.Header{}, url.Values{}
		prep(h, f)
		if err := Apply(h, f, testTokenEP, c); !errors.Is(err, ErrAlreadyAuthenticated) {
			t.Errorf("%s: err = %v, want ErrAlreadyAuthenticated", name, err)
		}
	}
}

type assertionHeader struct {
	Alg, Kid, Typ string
}

// parseAssertion verifies an assertion with key and returns its header
// and claims.
func parseAssertion(t *testing.T, s string, alg jose.SignatureAlgorithm, key any) (assertionHeader, map[string]any) {
	t.Helper()
	tok, err := jwt.ParseSigned(s, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("parse assertion: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(key, &claims); err != nil {
		t.Fatalf("verify assertion: %v", err)
	}
	h := tok.Headers[0]
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return assertionHeader{Alg: h.Algorithm, Kid: h.KeyID, Typ: typ}, claims
}

// TestAssertionClaims checks RFC 7523 §3 / OIDC Core §9 claims for every
// algorithm and audience mode.
func TestAssertionClaims(t *testing.T) {
	type tc struct {
		name    string
		creds   Credentials
		alg     jose.SignatureAlgorithm
		key     func(Credentials) any
		wantAud string
	}
	var cases []tc
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		secret := strings.Repeat("k", 64)
		cases = append(cases, tc{name: "client_secret_jwt " + alg, alg: jose.SignatureAlgorithm(alg), wantAud: testTokenEP,
			creds: Credentials{ClientID: "rp-1", Method: MethodSecretJWT, Secret: secret, SigningAlg: alg, TokenEndpoint: testTokenEP},
			key:   func(Credentials) any { return []byte(secret) }})
	}
	for _, alg := range []string{"RS256", "PS256", "ES256"} {
		ks := mustKeys(t, alg)
		cases = append(cases, tc{name: "private_key_jwt " + alg, alg: jose.SignatureAlgorithm(alg), wantAud: testTokenEP,
			creds: Credentials{ClientID: "rp-1", Method: MethodPrivateKeyJWT, Keys: ks, TokenEndpoint: testTokenEP},
			key: func(c Credentials) any {
				return c.Keys.Public(t0).Keys[0]
			}})
	}
	ks := mustKeys(t, "ES256")
	cases = append(cases,
		tc{name: "audience issuer", alg: "ES256", wantAud: testIssuer,
			creds: Credentials{ClientID: "rp-1", Method: MethodPrivateKeyJWT, Keys: ks, Audience: AudienceIssuer, Issuer: testIssuer},
			key:   func(c Credentials) any { return c.Keys.Public(t0).Keys[0] }},
		tc{name: "audience endpoint", alg: "ES256", wantAud: "https://op.example.test/introspect",
			creds: Credentials{ClientID: "rp-1", Method: MethodPrivateKeyJWT, Keys: ks, Audience: AudienceEndpoint},
			key:   func(c Credentials) any { return c.Keys.Public(t0).Keys[0] }},
		tc{name: "token endpoint audience at introspection", alg: "ES256", wantAud: testTokenEP,
			creds: Credentials{ClientID: "rp-1", Method: MethodPrivateKeyJWT, Keys: ks, TokenEndpoint: testTokenEP},
			key:   func(c Credentials) any { return c.Keys.Public(t0).Keys[0] }},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.creds.Now = fixedClock(t0)
			a, err := c.creds.Assertion("https://op.example.test/introspect")
			if err != nil {
				t.Fatal(err)
			}
			h, claims := parseAssertion(t, a, c.alg, c.key(c.creds))
			if h.Alg != string(c.alg) {
				t.Errorf("alg = %s, want %s", h.Alg, c.alg)
			}
			if c.creds.Method == MethodPrivateKeyJWT {
				kid, _ := c.creds.Keys.SigningKID(t0)
				if h.Kid == "" || h.Kid != kid {
					t.Errorf("kid = %q, want %q", h.Kid, kid)
				}
			} else if h.Kid != "" {
				t.Errorf("client_secret_jwt assertion has kid %q", h.Kid)
			}
			if claims["iss"] != "rp-1" || claims["sub"] != "rp-1" {
				t.Errorf("iss/sub = %v/%v, want the client_id", claims["iss"], claims["sub"])
			}
			if claims["aud"] != c.wantAud {
				t.Errorf("aud = %v, want %q", claims["aud"], c.wantAud)
			}
			if iat, _ := claims["iat"].(float64); int64(iat) != t0.Unix() {
				t.Errorf("iat = %v, want %d", claims["iat"], t0.Unix())
			}
			if exp, _ := claims["exp"].(float64); int64(exp) != t0.Add(MaxAssertionTTL).Unix() {
				t.Errorf("exp = %v, want iat+60", claims["exp"])
			}
			jti, _ := claims["jti"].(string)
			if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) != 32 {
				t.Errorf("jti %q is not 256 bits base64url", jti)
			}
		})
	}
}

// TestAssertionTTL: shorter lifetimes are honoured, longer ones refused.
func TestAssertionTTL(t *testing.T) {
	c := Credentials{ClientID: "rp", Method: MethodSecretJWT, Secret: testSecret, TokenEndpoint: testTokenEP, Now: fixedClock(t0), AssertionTTL: 10 * time.Second}
	a, err := c.Assertion(testTokenEP)
	if err != nil {
		t.Fatal(err)
	}
	_, claims := parseAssertion(t, a, jose.HS256, []byte(testSecret))
	if exp, _ := claims["exp"].(float64); int64(exp) != t0.Unix()+10 {
		t.Errorf("exp = %v, want iat+10", claims["exp"])
	}
	for _, ttl := range []time.Duration{61 * time.Second, time.Hour, -time.Second} {
		c.AssertionTTL = ttl
		if _, err := c.Assertion(testTokenEP); !errors.Is(err, ErrBadAssertionTTL) {
			t.Errorf("ttl %s: err = %v, want ErrBadAssertionTTL", ttl, err)
		}
	}
}

// TestJTIUniqueOver10000Assertions: no two assertions share a jti (each
// is single use at the OP, so a repeat would be refused as a replay).
func TestJTIUniqueOver10000Assertions(t *testing.T) {
	const n = 10000
	c := Credentials{ClientID: "rp", Method: MethodSecretJWT, Secret: testSecret, TokenEndpoint: testTokenEP, Now: fixedClock(t0)}
	seen := make(map[string]struct{}, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		f := url.Values{}
		if err := Apply(http.Header{}, f, testTokenEP, c); err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.ParseSigned(f.Get("client_assertion"), []jose.SignatureAlgorithm{jose.HS256})
		if err != nil {
			t.Fatal(err)
		}
		var cl jwt.Claims // signatures are checked in TestAssertionClaims
		if err := tok.UnsafeClaimsWithoutVerification(&cl); err != nil {
			t.Fatal(err)
		}
		if _, dup := seen[cl.ID]; dup || cl.ID == "" {
			t.Fatalf("assertion %d repeats jti %q", i, cl.ID)
		}
		seen[cl.ID] = struct{}{}
	}
	t.Logf("%d assertions, %d distinct jti, %s", n, len(seen), time.Since(start))
}

// TestRotationTimeline walks a rotation minute by minute and checks the
// invariant that makes it downtime-free: the key that signs is always
// published, and every key that signed an assertion still valid (signed
// within MaxAssertionTTL) is published too.
func TestRotationTimeline(t *testing.T) {
	ks := mustKeys(t, "RS256")
	k1, _ := ks.SigningKID(t0)
	lead := 10 * time.Minute
	rot := t0.Add(5 * time.Minute)
	k2, err := ks.Rotate("ES256", rot, lead)
	if err != nil {
		t.Fatal(err)
	}
	if k2 == k1 {
		t.Fatal("rotation reused the kid")
	}
	published := func(at time.Time) map[string]bool {
		m := map[string]bool{}
		for _, k := range ks.Public(at).Keys {
			m[k.KeyID] = true
			if !k.IsPublic() {
				t.Fatalf("published key %s is private", k.KeyID)
			}
		}
		return m
	}
	// Named moments.
	check := func(at time.Time, wantSigner string, wantPub ...string) {
		t.Helper()
		kid, _ := ks.SigningKID(at)
		if kid != wantSigner {
			t.Errorf("%s: signer %s, want %s", at.Sub(t0), kid, wantSigner)
		}
		pub := published(at)
		if len(pub) != len(wantPub) {
			t.Errorf("%s: published %v, want %v", at.Sub(t0), pub, wantPub)
		}
		for _, k := range wantPub {
			if !pub[k] {
				t.Errorf("%s: %s not published", at.Sub(t0), k)
			}
		}
	}
	check(rot.Add(-time.Second), k1, k1, k2) // Public ignores the future only for signing
	check(rot, k1, k1, k2)                   // new key published at once, old one signs
	check(rot.Add(lead-time.Second), k1, k1, k2)
	check(rot.Add(lead), k2, k1, k2) // new key signs, old one still published
	check(rot.Add(lead+KeyRetireGrace-time.Second), k2, k1, k2)
	check(rot.Add(lead+KeyRetireGrace), k2, k2) // old key retired

	// The invariant, second by second around the switch.
	var lastSigner = map[string]time.Time{}
	for at := rot.Add(-time.Minute); at.Before(rot.Add(lead + KeyRetireGrace + time.Minute)); at = at.Add(time.Second) {
		kid, _ := ks.SigningKID(at)
		lastSigner[kid] = at
		pub := published(at)
		for k, last := range lastSigner {
			if at.Sub(last) <= MaxAssertionTTL && !pub[k] {
				t.Fatalf("at %s key %s signed %s ago but is not published", at.Sub(t0), k, at.Sub(last))
			}
		}
	}
	// Signing with the set follows the timeline.
	for _, tc := range []struct {
		at  time.Time
		kid string
		alg jose.SignatureAlgorithm
	}{{rot, k1, jose.RS256}, {rot.Add(lead), k2, jose.ES256}} {
		c := Credentials{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: ks, TokenEndpoint: testTokenEP, Now: fixedClock(tc.at)}
		a, err := c.Assertion(testTokenEP)
		if err != nil {
			t.Fatal(err)
		}
		var pubKey jose.JSONWebKey
		for _, k := range ks.Public(tc.at).Keys {
			if k.KeyID == tc.kid {
				pubKey = k
			}
		}
		h, _ := parseAssertion(t, a, tc.alg, pubKey)
		if h.Kid != tc.kid {
			t.Errorf("at %s signed with %s, want %s", tc.at.Sub(t0), h.Kid, tc.kid)
		}
	}
	if n := ks.Prune(rot.Add(lead + KeyRetireGrace - time.Second)); n != 0 {
		t.Errorf("Prune before the grace ended dropped %d keys", n)
	}
	if n := ks.Prune(rot.Add(lead + KeyRetireGrace)); n != 1 || len(ks.KIDs()) != 1 || ks.KIDs()[0] != k2 {
		t.Errorf("Prune after the grace dropped %d keys, left %v", n, ks.KIDs())
	}
}

// TestKeySetStorageRoundTrip: the storage form restores the keys and
// their timeline; a loaded set signs assertions the original's public
// keys verify.
func TestKeySetStorageRoundTrip(t *testing.T) {
	ks := mustKeys(t, "PS256")
	if _, err := ks.Rotate("ES256", t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ks)
	if err != nil {
		t.Fatal(err)
	}
	var back KeySet
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back.KIDs()) != fmt.Sprint(ks.KIDs()) {
		t.Fatalf("kids %v, want %v", back.KIDs(), ks.KIDs())
	}
	for _, at := range []time.Time{t0, t0.Add(time.Minute)} {
		a1, _ := ks.SigningKID(at)
		a2, _ := back.SigningKID(at)
		if a1 != a2 {
			t.Errorf("at %s signer %s after load, want %s", at.Sub(t0), a2, a1)
		}
	}
	pub1, _ := ks.PublicJWKS(t0)
	pub2, _ := back.PublicJWKS(t0)
	if !bytes.Equal(pub1, pub2) {
		t.Error("public JWKS differs after load")
	}
	if bytes.Contains(pub1, []byte(`"d"`)) || bytes.Contains(pub1, []byte(`"p"`)) {
		t.Errorf("public JWKS contains private parameters: %s", pub1)
	}
	c := Credentials{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: &back, TokenEndpoint: testTokenEP, Now: fixedClock(t0)}
	a, err := c.Assertion(testTokenEP)
	if err != nil {
		t.Fatal(err)
	}
	parseAssertion(t, a, jose.PS256, ks.Public(t0).Keys[0])
}

// TestKeySetLoadRefusesBadKeys: public keys, weak RSA keys, wrong
// algorithms, kids that are not the thumbprint and junk are refused
// without quoting key material.
func TestKeySetLoadRefusesBadKeys(t *testing.T) {
	ks := mustKeys(t, "RS256")
	good, _ := json.Marshal(ks)
	var st storedSet
	_ = json.Unmarshal(good, &st)
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(st.Keys[0].JWK, &m)
		f(m)
		j, _ := json.Marshal(m)
		out, _ := json.Marshal(storedSet{Keys: []storedKey{{JWK: j, Created: 1, SignsFrom: 1}}})
		return out
	}
	privD := func() string {
		var m map[string]any
		_ = json.Unmarshal(st.Keys[0].JWK, &m)
		return m["d"].(string)
	}()
	cases := map[string][]byte{
		"public key only": mutate(func(m map[string]any) {
			for _, k := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				delete(m, k)
			}
		}),
		"wrong alg":      mutate(func(m map[string]any) { m["alg"] = "ES256" }),
		"hmac alg":       mutate(func(m map[string]any) { m["alg"] = "HS256" }),
		"kid not thumb":  mutate(func(m map[string]any) { m["kid"] = "chosen" }),
		"no keys":        []byte(`{"keys":[]}`),
		"not json":       []byte(`{"keys":`),
		"symmetric key":  []byte(`{"keys":[{"jwk":{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","alg":"HS256","kid":"x"}}]}`),
		"duplicate keys": mustJSON(storedSet{Keys: []storedKey{st.Keys[0], st.Keys[0]}}),
	}
	for name, b := range cases {
		var back KeySet
		err := back.UnmarshalJSON(b)
		if !errors.Is(err, ErrBadKeySet) {
			t.Errorf("%s: err = %v, want ErrBadKeySet", name, err)
			continue
		}
		if strings.Contains(err.Error(), privD[:16]) {
			t.Errorf("%s: error quotes the private key", name)
		}
	}
	// A 1024-bit RSA key is refused.
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := thumbprint(weak.Public())
	j, _ := jose.JSONWebKey{Key: weak, KeyID: kid, Algorithm: "RS256"}.MarshalJSON()
	var back KeySet
	if err := back.UnmarshalJSON(mustJSON(storedSet{Keys: []storedKey{{JWK: j}}})); !errors.Is(err, ErrBadKeySet) || !strings.Contains(err.Error(), "1024 bits") {
		t.Errorf("1024-bit RSA: %v", err)
	}
	// Algorithms that cannot sign private_key_jwt are refused at generation.
	for _, alg := range []string{"RS512", "HS256", "none", ""} {
		if _, err := GenerateKeySet(alg, t0); !errors.Is(err, ErrUnsupportedAlg) {
			t.Errorf("GenerateKeySet(%q): %v", alg, err)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestSecretsNeverPrinted: no fmt verb, no slog handler and no error of
// this package shows the client secret or a private key.
func TestSecretsNeverPrinted(t *testing.T) {
	ks := mustKeys(t, "RS256")
	stored, _ := json.Marshal(ks)
	var m struct {
		Keys []struct {
			JWK map[string]any `json:"jwk"`
		} `json:"keys"`
	}
	_ = json.Unmarshal(stored, &m)
	d := m.Keys[0].JWK["d"].(string)
	if d == "" || !bytes.Contains(stored, []byte(d)) {
		t.Fatal("storage form lacks the private key")
	}
	secret := "very-secret-value-0123456789-abcdefghij"
	creds := Credentials{ClientID: "rp", Method: MethodPrivateKeyJWT, Secret: secret, Keys: ks, TokenEndpoint: testTokenEP}
	type holder struct {
		Creds Credentials
		Keys  *KeySet
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out = append(out, fmt.Sprintf(verb, creds), fmt.Sprintf(verb, ks), fmt.Sprintf(verb, holder{creds, ks}), fmt.Sprintf(verb, &holder{creds, ks}))
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("x", "creds", creds, "keys", ks, "any", any(ks))
	}
	out = append(out, buf.String())
	if _, err := json.Marshal(creds); err == nil {
		t.Error("json.Marshal(Credentials) succeeded")
	}
	// Errors of every kind.
	for _, c := range []Credentials{
		{ClientID: "rp", Method: MethodNone, Secret: secret, PKCE: true},
		{ClientID: "rp", Method: MethodSecretJWT, Secret: "short-" + secret[:10], TokenEndpoint: testTokenEP},
		{ClientID: "rp", Method: MethodSecretJWT, Secret: secret},
		{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: ks, SigningAlg: "ES256", TokenEndpoint: testTokenEP},
		{ClientID: "rp", Method: Method(secret)},
	} {
		if err := c.Validate(); err != nil {
			out = append(out, err.Error())
		} else {
			t.Errorf("%v: no error", c)
		}
	}
	for _, s := range out {
		for _, bad := range []string{secret, secret[:20], d[:16], secret[:10]} {
			if strings.Contains(s, bad) {
				t.Fatalf("output shows a secret: %s", s)
			}
		}
	}
}

// TestValidateSaysWhatToPass: each invalid configuration gives the
// sentinel and a message that names the fix.
func TestValidateSaysWhatToPass(t *testing.T) {
	ks := mustKeys(t, "ES256")
	cases := []struct {
		name  string
		c     Credentials
		want  error
		words []string
	}{
		{"no client_id", Credentials{Secret: testSecret}, ErrMissingClientID, []string{"client_id"}},
		{"pre-registered without secret, basic", Credentials{ClientID: "rp", Method: MethodSecretBasic}, ErrMissingSecret,
			[]string{"client_secret", "none", "private_key_jwt"}},
		{"pre-registered without secret, default", Credentials{ClientID: "rp"}, ErrMissingSecret, []string{"none", "private_key_jwt"}},
		{"pre-registered without secret, post", Credentials{ClientID: "rp", Method: MethodSecretPost}, ErrMissingSecret, []string{"none", "private_key_jwt"}},
		{"pre-registered without secret, secret jwt", Credentials{ClientID: "rp", Method: MethodSecretJWT, TokenEndpoint: testTokenEP}, ErrMissingSecret, []string{"none", "private_key_jwt"}},
		{"public client without PKCE", Credentials{ClientID: "rp", Method: MethodNone}, ErrPKCERequired, []string{"PKCE"}},
		{"public client with secret", Credentials{ClientID: "rp", Method: MethodNone, Secret: "x", PKCE: true}, ErrSecretNotAllowed, []string{"drop client_secret"}},
		{"private_key_jwt without keys", Credentials{ClientID: "rp", Method: MethodPrivateKeyJWT, TokenEndpoint: testTokenEP}, ErrMissingKeys, []string{"key set", "jwks"}},
		{"private_key_jwt alg mismatch", Credentials{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: ks, SigningAlg: "RS256", TokenEndpoint: testTokenEP}, ErrUnsupportedAlg, []string{"ES256"}},
		{"assertion without token endpoint", Credentials{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: ks}, ErrMissingAudience, []string{"token_endpoint"}},
		{"assertion to issuer without issuer", Credentials{ClientID: "rp", Method: MethodSecretJWT, Secret: testSecret, Audience: AudienceIssuer, TokenEndpoint: testTokenEP}, ErrMissingAudience, []string{"issuer"}},
		{"weak secret for HS256", Credentials{ClientID: "rp", Method: MethodSecretJWT, Secret: "short", TokenEndpoint: testTokenEP}, ErrWeakSecret, []string{"32 bytes"}},
		{"weak secret for HS512", Credentials{ClientID: "rp", Method: MethodSecretJWT, Secret: testSecret, SigningAlg: "HS512", TokenEndpoint: testTokenEP}, ErrWeakSecret, []string{"64 bytes"}},
		{"RS256 for client_secret_jwt", Credentials{ClientID: "rp", Method: MethodSecretJWT, Secret: testSecret, SigningAlg: "RS256", TokenEndpoint: testTokenEP}, ErrUnsupportedAlg, []string{"HS256"}},
		{"alg for basic", Credentials{ClientID: "rp", Secret: testSecret, SigningAlg: "HS256"}, ErrAlgNotApplicable, []string{"empty"}},
		{"unknown method", Credentials{ClientID: "rp", Secret: testSecret, Method: "tls_client_auth"}, ErrUnknownMethod, []string{"private_key_jwt"}},
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %T is not a *ConfigError", tc.name, err)
		}
		for _, w := range tc.words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", tc.name, err, w)
			}
		}
		if Apply(http.Header{}, url.Values{}, testTokenEP, tc.c) == nil {
			t.Errorf("%s: Apply accepted it", tc.name)
		}
	}
	// Valid configurations pass.
	for _, c := range []Credentials{
		{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: ks, TokenEndpoint: testTokenEP},
		{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: ks, Secret: "ignored", TokenEndpoint: testTokenEP},
		{ClientID: "rp", Method: MethodNone, PKCE: true},
		{ClientID: "rp", Method: MethodSecretJWT, Secret: testSecret, Audience: AudienceEndpoint},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
}

func TestChooseMethod(t *testing.T) {
	cases := []struct {
		supported []string
		want      Method
		err       error
	}{
		{nil, MethodSecretBasic, nil},
		{[]string{"client_secret_post", "client_secret_basic"}, MethodSecretBasic, nil},
		{[]string{"client_secret_post"}, MethodSecretPost, nil},
		{[]string{"client_secret_basic", "client_secret_jwt"}, MethodSecretJWT, nil},
		{[]string{"none", "client_secret_post", "private_key_jwt", "client_secret_jwt", "client_secret_basic"}, MethodPrivateKeyJWT, nil},
		{[]string{"tls_client_auth", "client_secret_post"}, MethodSecretPost, nil},
		{[]string{"none"}, "", ErrNoCommonMethod},
		{[]string{"tls_client_auth"}, "", ErrNoCommonMethod},
		{[]string{}, "", ErrNoCommonMethod},
	}
	for _, tc := range cases {
		got, err := ChooseMethod(tc.supported)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("ChooseMethod(%q) = %q, %v; want %q, %v", tc.supported, got, err, tc.want, tc.err)
		}
	}
	_, err := ChooseMethod([]string{"none"})
	if err == nil || !strings.Contains(err.Error(), "client_token_endpoint_auth_method=none") {
		t.Errorf("only-none error does not say to pass none: %v", err)
	}
}

func TestCheckSupported(t *testing.T) {
	if err := CheckSupported(MethodSecretBasic, nil); err != nil {
		t.Error(err)
	}
	if err := CheckSupported(MethodSecretPost, nil); !errors.Is(err, ErrMethodNotSupportedByOP) || !strings.Contains(err.Error(), "client_secret_basic only") {
		t.Errorf("post at an OP without a list: %v", err)
	}
	if err := CheckSupported(MethodPrivateKeyJWT, []string{"client_secret_basic"}); !errors.Is(err, ErrMethodNotSupportedByOP) {
		t.Errorf("pkjwt: %v", err)
	}
	if err := CheckSupported(MethodNone, []string{"none", "client_secret_basic"}); err != nil {
		t.Error(err)
	}
}

func TestSigningAlg(t *testing.T) {
	cases := []struct {
		m         Method
		requested string
		supported []string
		want      string
		err       error
	}{
		{MethodSecretJWT, "", nil, "HS256", nil},
		{MethodSecretJWT, "", []string{"RS256", "HS512", "HS256"}, "HS256", nil},
		{MethodSecretJWT, "", []string{"RS256", "HS512"}, "HS512", nil},
		{MethodSecretJWT, "HS384", nil, "HS384", nil},
		{MethodSecretJWT, "HS384", []string{"HS256"}, "", ErrAlgNotSupportedByOP},
		{MethodSecretJWT, "RS256", nil, "", ErrUnsupportedAlg},
		{MethodSecretJWT, "", []string{"RS256"}, "", ErrAlgNotSupportedByOP},
		{MethodPrivateKeyJWT, "", nil, "RS256", nil},
		{MethodPrivateKeyJWT, "", []string{"RS256", "PS256", "ES256"}, "ES256", nil},
		{MethodPrivateKeyJWT, "", []string{"RS256", "PS256"}, "PS256", nil},
		{MethodPrivateKeyJWT, "RS256", []string{"RS256", "ES256"}, "RS256", nil},
		{MethodPrivateKeyJWT, "PS256", []string{"RS256", "ES256"}, "", ErrAlgNotSupportedByOP},
		{MethodPrivateKeyJWT, "EdDSA", nil, "", ErrUnsupportedAlg},
		{MethodPrivateKeyJWT, "none", nil, "", ErrUnsupportedAlg},
		{MethodPrivateKeyJWT, "HS256", nil, "", ErrUnsupportedAlg},
		{MethodSecretBasic, "", []string{"RS256"}, "", nil},
		{MethodSecretBasic, "RS256", nil, "", ErrAlgNotApplicable},
	}
	for _, tc := range cases {
		got, err := SigningAlg(tc.m, tc.requested, tc.supported)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("SigningAlg(%s, %q, %q) = %q, %v; want %q, %v", tc.m, tc.requested, tc.supported, got, err, tc.want, tc.err)
		}
	}
	_, err := SigningAlg(MethodPrivateKeyJWT, "PS256", []string{"RS256", "ES256"})
	if err == nil || !strings.Contains(err.Error(), "ES256, RS256") {
		t.Errorf("error does not list the common algorithms: %v", err)
	}
}

func TestParseMethod(t *testing.T) {
	for _, m := range Methods() {
		if got, err := ParseMethod(" " + string(m) + " "); err != nil || got != m {
			t.Errorf("ParseMethod(%s) = %q, %v", m, got, err)
		}
	}
	for _, s := range []string{"", "Client_Secret_Basic", "tls_client_auth", "private_key_jwt\x00"} {
		if _, err := ParseMethod(s); !errors.Is(err, ErrUnknownMethod) {
			t.Errorf("ParseMethod(%q): %v", s, err)
		}
	}
}

func TestRotateNeedsKeysAndBounds(t *testing.T) {
	var empty *KeySet
	if _, err := empty.Rotate("ES256", t0, 0); !errors.Is(err, ErrBadKeySet) {
		t.Errorf("nil set: %v", err)
	}
	ks := mustKeys(t, "ES256")
	// Many rotations within the grace period hit the bound, never grow
	// without limit.
	var err error
	for i := 0; i < maxKeys+1 && err == nil; i++ {
		_, err = ks.Rotate("", t0, 0)
	}
	if !errors.Is(err, ErrBadKeySet) || len(ks.KIDs()) != maxKeys {
		t.Errorf("after %d rotations: %d keys, err %v", maxKeys+1, len(ks.KIDs()), err)
	}
	// Time passing retires them again.
	if _, err := ks.Rotate("", t0.Add(KeyRetireGrace), 0); err != nil {
		t.Errorf("rotation after the grace: %v", err)
	}
	if n := len(ks.KIDs()); n != 2 {
		t.Errorf("%d keys after pruning, want 2", n)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	ks := mustKeys(t, "ES256")
	cp := ks.Clone()
	if _, err := cp.Rotate("", t0, 0); err != nil {
		t.Fatal(err)
	}
	if len(ks.KIDs()) != 1 || len(cp.KIDs()) != 2 {
		t.Errorf("clone shares state: %d and %d keys", len(ks.KIDs()), len(cp.KIDs()))
	}
}

func TestRegistrationMetadata(t *testing.T) {
	ks := mustKeys(t, "PS256")
	m, err := RegistrationMetadata(Credentials{Method: MethodPrivateKeyJWT, Keys: ks}, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	set, ok := m["jwks"].(jose.JSONWebKeySet)
	if m["token_endpoint_auth_method"] != "private_key_jwt" || m["token_endpoint_auth_signing_alg"] != "PS256" || !ok || len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
		t.Errorf("private_key_jwt metadata: %v", m)
	}
	b, _ := json.Marshal(m)
	if bytes.Contains(b, []byte(`"d":`)) {
		t.Errorf("metadata carries a private key: %s", b)
	}
	m, err = RegistrationMetadata(Credentials{Method: MethodPrivateKeyJWT, Keys: ks}, "https://rp.example/jwks", t0)
	if err != nil || m["jwks_uri"] != "https://rp.example/jwks" || m["jwks"] != nil {
		t.Errorf("jwks_uri metadata: %v, %v", m, err)
	}
	m, err = RegistrationMetadata(Credentials{Method: MethodSecretJWT}, "", t0)
	if err != nil || m["token_endpoint_auth_signing_alg"] != "HS256" {
		t.Errorf("client_secret_jwt metadata: %v, %v", m, err)
	}
	m, err = RegistrationMetadata(Credentials{}, "", t0)
	if err != nil || len(m) != 1 || m["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Errorf("default metadata: %v, %v", m, err)
	}
	for _, c := range []Credentials{
		{Method: MethodPrivateKeyJWT},
		{Method: MethodNone},
		{Method: "mtls"},
		{Method: MethodSecretJWT, SigningAlg: "RS256"},
	} {
		if _, err := RegistrationMetadata(c, "", t0); err == nil {
			t.Errorf("%v: no error", c)
		}
	}
	if _, err := RegistrationMetadata(Credentials{Method: MethodPrivateKeyJWT, Keys: ks}, "not a url", t0); err == nil {
		t.Error("relative jwks_uri accepted")
	}
}

// TestConcurrentSigning: one KeySet and one Credentials value serve many
// requests at once (the engine signs in parallel); run with -race.
func TestConcurrentSigning(t *testing.T) {
	ks := mustKeys(t, "ES256")
	c := Credentials{ClientID: "rp", Method: MethodPrivateKeyJWT, Keys: ks, TokenEndpoint: testTokenEP}
	const workers, each = 8, 25
	errs := make(chan error, workers)
	jtis := make(chan string, workers*each)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				f := url.Values{}
				if err := Apply(http.Header{}, f, testTokenEP, c); err != nil {
					errs <- err
					return
				}
				_ = ks.Public(time.Now())
				tok, err := jwt.ParseSigned(f.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
				if err != nil {
					errs <- err
					return
				}
				var cl jwt.Claims
				if err := tok.Claims(ks.Public(time.Now()).Keys[0], &cl); err != nil {
					errs <- err
					return
				}
				jtis <- cl.ID
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(jtis)
	seen := map[string]bool{}
	for j := range jtis {
		if seen[j] {
			t.Fatalf("jti %q repeated", j)
		}
		seen[j] = true
	}
	if len(seen) != workers*each {
		t.Fatalf("%d assertions, want %d", len(seen), workers*each)
	}
}

// TestQuoteListCutsOnCharacterBoundary: an OP's list entry longer than the
// width is cut on a character boundary (valid UTF-8 in the error) and
// marked.
func TestQuoteListCutsOnCharacterBoundary(t *testing.T) {
	got := QuoteList([]string{"a" + strings.Repeat("é", 10), "ok"}, 4, 4)
	if got != "[aé… ok]" {
		t.Fatalf("QuoteList = %q", got)
	}
}
