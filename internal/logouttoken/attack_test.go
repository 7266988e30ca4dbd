package logouttoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oxdgo/oxd/sessionindex"
)

// signWith signs payload with k and extra header options.
func signWith(t *testing.T, k signingKey, payload []byte, mod func(*jose.SignerOptions) *jose.SignerOptions) *jose.JSONWebSignature {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", k.kid)
	if mod != nil {
		opts = mod(opts)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func compact(t *testing.T, jws *jose.JSONWebSignature) string {
	t.Helper()
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestUnknownCritHeaderRefused: a crit header naming an extension the
// validator does not understand makes the token invalid (RFC 7515 §4.1.11),
// even with a good signature.
func TestUnknownCritHeaderRefused(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	payload, _ := json.Marshal(op.claims())
	raw := compact(t, signWith(t, k, payload, func(o *jose.SignerOptions) *jose.SignerOptions {
		return o.WithHeader("http://example.com/ext", true).WithCritical("http://example.com/ext")
	}))
	if _, err := v.Validate(bg, raw); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token with unknown crit accepted or not refused as invalid: %v", err)
	}
}

// TestEmbeddedJWKNotTrusted: a token signed by the attacker's key, which
// it carries in the jwk header, with the kid of a real key, a made-up kid
// or no kid, is refused.
func TestEmbeddedJWKNotTrusted(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, kid := range []string{"k1", "evil", ""} {
		ek := signingKey{kid: kid, alg: jose.ES256, key: evil}
		payload, _ := json.Marshal(op.claims())
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: evil}, (&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		jws, _ := s.Sign(payload)
		_ = ek
		if _, err := v.Validate(bg, compact(t, jws)); err == nil {
			t.Fatalf("kid %q: token signed with an embedded key accepted", kid)
		}
	}
}

// TestJWKSWithEncAndSymmetricAndPrivateKeysIgnored: keys for encryption,
// symmetric keys and private keys in the JWKS never verify a token, even
// when they carry the token's kid.
func TestJWKSWithEncAndSymmetricAndPrivateKeysIgnored(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	enc := k.public()
	enc.Use = "enc"
	priv := jose.JSONWebKey{Key: rsaKey(0), KeyID: "k1", Algorithm: "RS256", Use: "sig"}
	op.mu.Lock()
	op.keys = []jose.JSONWebKey{enc, priv, {Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k1", Algorithm: "HS256"}}
	op.mu.Unlock()
	v := newValidator(t, op, nil, nil)
	expectRefused(t, v, sign(t, k, "JWT", op.claims()), ErrUnknownKey)
}

// TestJSONSerializationRefused: the JWS JSON serialization (flattened or
// general, possibly with a second, bogus signature) is not a logout token.
func TestJSONSerializationRefused(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	payload, _ := json.Marshal(op.claims())
	jws := signWith(t, k, payload, nil)
	for _, raw := range []string{jws.FullSerialize()} {
		expectRefused(t, v, raw, ErrMalformed)
	}
}

// TestNestedJWTRefused: a signed token whose payload is another JWT (cty
// JWT) is refused: the claims must be in the signed payload itself.
func TestNestedJWTRefused(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	inner := sign(t, k, "JWT", op.claims())
	raw := compact(t, signWith(t, k, []byte(inner), func(o *jose.SignerOptions) *jose.SignerOptions { return o.WithContentType("JWT") }))
	expectRefused(t, v, raw, ErrMalformed)
	quoted, _ := json.Marshal(inner)
	raw = compact(t, signWith(t, k, quoted, func(o *jose.SignerOptions) *jose.SignerOptions { return o.WithContentType("JWT") }))
	expectRefused(t, v, raw, ErrMalformed)
}

// TestClaimsTrailingDataRefused: the payload must be exactly one JSON
// object; a second value or stray closing brackets after it are refused.
func TestClaimsTrailingDataRefused(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	for _, tail := range []string{"}", "]", " }", "{}", `"x"`, "1"} {
		payload, _ := json.Marshal(op.claims())
		raw := compact(t, signWith(t, k, append(payload, tail...), nil))
		expectRefused(t, v, raw, ErrMalformed)
	}
}

// TestDateClaimShapes: iat and exp must be JSON numbers; strings, booleans
// and huge or negative values are refused.
func TestDateClaimShapes(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	now := time.Now().Unix()
	for _, iat := range []any{"1700000000", true, -1, 1e300, json.Number("1e400")} {
		cl := op.claims()
		cl["iat"] = iat
		if _, err := v.Validate(bg, sign(t, k, "JWT", cl)); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("iat %v: %v", iat, err)
		}
	}
	for _, exp := range []any{"never", nil, now - 3600} {
		cl := op.claims()
		cl["exp"] = exp
		if _, err := v.Validate(bg, sign(t, k, "JWT", cl)); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("exp %v: %v", exp, err)
		}
	}
}

// TestAudienceShapes: aud must name the client exactly; a prefix, a case
// variant, a nested array or an object is refused.
func TestAudienceShapes(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	for _, aud := range []any{clientID + " ", strings.ToUpper(clientID), []any{[]any{clientID}}, map[string]any{clientID: true}, []any{}, nil, clientID[:5]} {
		cl := op.claims()
		cl["aud"] = aud
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrAudience)
	}
}

// TestConcurrentReplayOneWinner: the same token validated concurrently by
// many goroutines (one replica) is accepted exactly once.
func TestConcurrentReplayOneWinner(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, sessionindex.NewMemory(sessionindex.MemoryOptions{}), nil)
	raw := sign(t, k, "JWT", op.claims())
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			_, err := v.Validate(bg, raw)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrReplayed):
				replayed.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 31 {
		t.Fatalf("%d accepted, %d replayed", ok.Load(), replayed.Load())
	}
}

// TestStaleKeysOPDownNoHammering: once the cached keys are older than
// KeysMaxAge and the OP fails to answer, tokens (made-up ones included:
// any compact JWS with an allowed alg reaches the key lookup) do not each
// cause a JWKS request: a failed fetch is retried at most once per
// RefetchInterval, and the cached keys keep verifying meanwhile.
func TestStaleKeysOPDownNoHammering(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	var hits atomic.Int32
	var down atomic.Bool
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.public()}})
	}))
	defer jwks.Close()
	clk := &fakeClock{t: time.Now()}
	v := newValidator(t, op, nil, func(c *Config) {
		c.Now, c.JWKSURL, c.KeysMaxAge, c.RefetchInterval = clk.Now, jwks.URL, time.Hour, 30*time.Second
	})
	cl := func() map[string]any { c := op.claims(); c["iat"] = clk.Now().Unix(); return c }
	expectAccepted(t, v, sign(t, k, "JWT", cl()))
	down.Store(true)
	clk.Advance(time.Hour + time.Second)
	evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := signingKey{kid: "k1", alg: jose.ES256, key: evil}
	for range 50 {
		if _, err := v.Validate(bg, sign(t, forged, "JWT", cl())); err == nil {
			t.Fatal("forged token accepted")
		}
	}
	expectAccepted(t, v, sign(t, k, "JWT", cl()))
	// The first fetch, one retry of the stale keys and one refetch for
	// the forged tokens' kid/alg that no key has.
	if n := hits.Load(); n > 3 {
		t.Fatalf("%d JWKS requests while the OP was down, want at most 3", n)
	}
	// After RefetchInterval the fetch is tried again, and the OP's
	// recovery is picked up.
	down.Store(false)
	clk.Advance(31 * time.Second)
	expectAccepted(t, v, sign(t, k, "JWT", cl()))
	before := hits.Load()
	expectAccepted(t, v, sign(t, k, "JWT", cl()))
	if hits.Load() != before {
		t.Fatal("keys not cached again after the OP recovered")
	}
}

// TestFrontChannelIssuerWildcardHost: the issuer's origin becomes the
// frame-ancestors source; a host that is not a DNS name or an IP literal
// ("*", "*.example.com", percent-escapes that decode to other hosts) would
// let other origins frame the page, and is refused.
func TestFrontChannelIssuerWildcardHost(t *testing.T) {
	idx := sessionindex.NewMemory(sessionindex.MemoryOptions{})
	destroy := func(contextT, string) error { return nil }
	for _, iss := range []string{"https://*", "https://*.example.com", "https://op.example.*", "https://op.example%2a", "http://*:8080", "https://op$.example", "https://op.example./x"} {
		if _, err := FrontChannelHandler(iss, idx, destroy, nil); err == nil {
			t.Errorf("FrontChannelHandler(%q) accepted", iss)
		}
	}
	for _, iss := range []string{"https://op.example", "https://OP.example:8443/realms/x", "http://127.0.0.1:8080", "https://[::1]:8443", "https://op_1.example"} {
		if _, err := FrontChannelHandler(iss, idx, destroy, nil); err != nil {
			t.Errorf("FrontChannelHandler(%q): %v", iss, err)
		}
	}
}

// TestJWKSNoDowngradeToPlainHTTP: an https OP whose discovery document
// names a plain-http jwks_uri (on loopback, which plain http is otherwise
// allowed for) does not get its keys fetched in clear from a local port:
// whoever holds that port would choose the keys logout tokens are checked
// with.
func TestJWKSNoDowngradeToPlainHTTP(t *testing.T) {
	k := newRSAKey("k1", 0)
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.public()}})
	}))
	defer plain.Close()
	var op *httptest.Server
	op = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": op.URL, "jwks_uri": plain.URL + "/jwks"})
	}))
	defer op.Close()
	if err := validateAt(t, op, k); !errors.Is(err, ErrKeysUnavailable) || plainHits.Load() != 0 {
		t.Fatalf("err %v, %d JWKS requests in clear", err, plainHits.Load())
	}
}

// validateAt validates, with a new Validator for the TLS OP op (keys from
// its discovery), a logout token signed with k, and returns the error.
func validateAt(t *testing.T, op *httptest.Server, k signingKey) error {
	t.Helper()
	v, err := New(Config{Issuer: op.URL, ClientID: clientID, Replay: sessionindex.NewMemory(sessionindex.MemoryOptions{}), HTTPClient: op.Client()})
	if err != nil {
		t.Fatal(err)
	}
	cl := map[string]any{"iss": op.URL, "aud": clientID, "iat": time.Now().Unix(), "jti": randomID(), "sid": "s",
		"events": map[string]any{EventBackChannelLogout: map[string]any{}}}
	_, err = v.Validate(bg, sign(t, k, "JWT", cl))
	return err
}
