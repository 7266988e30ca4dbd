package logouttoken

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oxdgo/oxd/sessionindex"
)

// expectRefused checks that raw is refused with want, and that the error
// text holds no part of the token.
func expectRefused(t *testing.T, v *Validator, raw string, want error) {
	t.Helper()
	c, err := v.Validate(bg, raw)
	if !errors.Is(err, want) {
		t.Fatalf("Validate = %v, %v; want %v", c, err, want)
	}
	if want != ErrKeysUnavailable && want != ErrReplayCheck && !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("%v does not wrap ErrInvalidToken", err)
	}
	for _, part := range strings.Split(raw, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Fatalf("error %q contains a part of the token", err)
		}
	}
}

func expectAccepted(t *testing.T, v *Validator, raw string) *Claims {
	t.Helper()
	c, err := v.Validate(bg, raw)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return c
}

// TestDeployedOPTokenAccepted: a certified OP in the field sends typ JWT,
// sid but no sub, and no exp. §2.4 allows it; freshness comes from iat and
// the jti.
func TestDeployedOPTokenAccepted(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	cl := op.claims()
	c := expectAccepted(t, v, sign(t, k, "JWT", cl))
	if c.SID != "op-session-1" || c.Subject != "" || c.Issuer != op.issuer || c.JTI != cl["jti"] {
		t.Fatalf("claims = %+v", c)
	}
}

func TestSubOnlyAndBothAccepted(t *testing.T) {
	k := newECKey(t, "ec1")
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	cl := op.claims()
	delete(cl, "sid")
	cl["sub"] = "alice"
	cl["exp"] = time.Now().Add(2 * time.Minute).Unix()
	if c := expectAccepted(t, v, sign(t, k, "logout+jwt", cl)); c.Subject != "alice" || c.SID != "" {
		t.Fatalf("claims = %+v", c)
	}
	cl = op.claims()
	cl["sub"] = "alice"
	cl["aud"] = []any{"another-rp", clientID}
	if c := expectAccepted(t, v, sign(t, k, "logout+jwt", cl)); c.Subject != "alice" || c.SID != "op-session-1" {
		t.Fatalf("claims = %+v", c)
	}
}

// TestTypVariants: typ absent, logout+jwt (any case, with or without
// application/) and JWT are accepted; any other type is refused.
func TestTypVariants(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	for _, typ := range []string{"", "logout+jwt", "Logout+JWT", "application/logout+jwt", "JWT", "jwt"} {
		expectAccepted(t, v, sign(t, k, typ, op.claims()))
	}
	for _, typ := range []string{"at+jwt", "secevent+jwt", "JOSE", "application/jwt", "logout+jwt; x=1"} {
		expectRefused(t, v, sign(t, k, typ, op.claims()), ErrType)
	}
}

func TestBadSignature(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	// Another key claiming the OP's kid.
	forger := newRSAKey("k1", 1)
	expectRefused(t, v, sign(t, forger, "JWT", op.claims()), ErrSignature)
	// A valid token whose payload was changed.
	raw := sign(t, k, "JWT", op.claims())
	parts := strings.Split(raw, ".")
	cl := op.claims()
	cl["sid"] = "someone-elses-session"
	forged := sign(t, k, "JWT", cl)
	parts[1] = strings.Split(forged, ".")[1]
	expectRefused(t, v, strings.Join(parts, "."), ErrSignature)
	// An EC key under the RSA key's kid: the OP's key k1 is for RS256 only.
	expectRefused(t, v, sign(t, signingKey{kid: "k1", alg: jose.ES256, key: newECKey(t, "x").key}, "JWT", op.claims()), ErrUnknownKey)
	// No kid, signed by a key the OP does not publish.
	expectRefused(t, v, sign(t, signingKey{alg: jose.RS256, key: rsaKey(2)}, "JWT", op.claims()), ErrSignature)
	// No kid, signed by the OP's key: accepted.
	expectAccepted(t, v, sign(t, signingKey{alg: jose.RS256, key: rsaKey(0)}, "JWT", op.claims()))
}

func TestWrongAudience(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	for _, aud := range []any{"another-rp", "", []any{"another-rp"}, []any{}, []any{clientID, 7}, nil, 42, clientID + " ", strings.ToUpper(clientID)} {
		cl := op.claims()
		cl["aud"] = aud
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrAudience)
	}
	cl := op.claims()
	delete(cl, "aud")
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrAudience)
}

func TestWrongIssuer(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	for _, iss := range []any{"https://evil.example", op.issuer + "/", strings.ToUpper(op.issuer), "", 1, nil} {
		cl := op.claims()
		cl["iss"] = iss
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrIssuer)
	}
}

func TestIssuedAtWindow(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	clk := &fakeClock{t: time.Now()}
	v := newValidator(t, op, nil, func(c *Config) { c.Now = clk.Now; c.MaxAge = 2 * time.Minute; c.ClockSkew = 10 * time.Second })
	at := func(d time.Duration) map[string]any {
		cl := op.claims()
		cl["iat"] = clk.Now().Add(d).Unix()
		return cl
	}
	t.Run("OldIAT", func(t *testing.T) {
		expectRefused(t, v, sign(t, k, "JWT", at(-2*time.Minute-11*time.Second)), ErrTooOld)
		expectRefused(t, v, sign(t, k, "JWT", at(-24*time.Hour)), ErrTooOld)
		expectAccepted(t, v, sign(t, k, "JWT", at(-2*time.Minute-8*time.Second)))
	})
	t.Run("FutureIAT", func(t *testing.T) {
		expectRefused(t, v, sign(t, k, "JWT", at(12*time.Second)), ErrIssuedAt)
		expectRefused(t, v, sign(t, k, "JWT", at(time.Hour)), ErrIssuedAt)
		expectAccepted(t, v, sign(t, k, "JWT", at(8*time.Second)))
	})
	t.Run("MissingOrMalformedIAT", func(t *testing.T) {
		for _, iat := range []any{nil, "1700000000", -1, 1e12, true} {
			cl := op.claims()
			cl["iat"] = iat
			expectRefused(t, v, sign(t, k, "JWT", cl), ErrIssuedAt)
		}
		cl := op.claims()
		delete(cl, "iat")
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrIssuedAt)
	})
	t.Run("ExpChecked", func(t *testing.T) {
		cl := at(0)
		cl["exp"] = clk.Now().Add(-11 * time.Second).Unix()
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrExpired)
		cl = at(0)
		cl["exp"] = "soon"
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrClaimType)
		cl = at(0)
		cl["exp"] = clk.Now().Add(time.Minute).Unix()
		expectAccepted(t, v, sign(t, k, "JWT", cl))
	})
}

// TestReplayedJTI: a token is accepted once; its replay (same jti, even in
// a newly signed token) is refused while its iat is acceptable.
func TestReplayedJTI(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	cl := op.claims()
	raw := sign(t, k, "JWT", cl)
	expectAccepted(t, v, raw)
	expectRefused(t, v, raw, ErrReplayed)
	cl["sid"] = "another"
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrReplayed)
	// Concurrent deliveries: exactly one is accepted.
	cl = op.claims()
	raw = sign(t, k, "JWT", cl)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Validate(bg, raw); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, ErrReplayed) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d of 12 concurrent deliveries accepted, want 1", ok)
	}
}

// TestReplayMarkOutlivesIATWindow: the jti is remembered as long as the
// token's iat would be accepted, by this replica and by one whose clock is
// up to ClockSkew behind.
func TestReplayMarkOutlivesIATWindow(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	rec := &recordingReplay{ReplayCache: sessionindex.NewMemory(sessionindex.MemoryOptions{})}
	v := newValidator(t, op, rec, func(c *Config) { c.MaxAge = 3 * time.Minute; c.ClockSkew = 20 * time.Second })
	cl := op.claims()
	cl["iat"] = time.Now().Add(-time.Minute).Unix()
	expectAccepted(t, v, sign(t, k, "JWT", cl))
	// Accepted here until iat+MaxAge+skew = now+2m20s, by a replica 20s
	// behind until now+2m40s (iat has whole seconds).
	if rec.ttl < 2*time.Minute+39*time.Second || rec.ttl > 2*time.Minute+42*time.Second {
		t.Fatalf("jti kept for %v, want about 2m40s", rec.ttl)
	}

	// A replica whose clock is ClockSkew behind, sharing the replay cache,
	// refuses the replay just before its own window closes: the mark is
	// still there. The cache keeps marks by the real time.
	t0 := time.Now().Truncate(time.Second)
	real := t0.Add(time.Minute)
	shared := &clockReplay{now: func() time.Time { return real }, marks: map[string]time.Time{}}
	mod := func(behind time.Duration) func(*Config) {
		return func(c *Config) {
			c.MaxAge = 3 * time.Minute
			c.ClockSkew = 20 * time.Second
			c.Now = func() time.Time { return real.Add(-behind) }
		}
	}
	onTime := newValidator(t, op, shared, mod(0))
	late := newValidator(t, op, shared, mod(20*time.Second))
	cl = op.claims()
	cl["iat"] = t0.Unix()
	tok := sign(t, k, "JWT", cl)
	expectAccepted(t, onTime, tok)
	// Past the on-time replica's window (t0+3m20s), inside the late one's
	// (its clock reads t0+3m19s).
	real = t0.Add(3*time.Minute + 39*time.Second)
	if _, err := late.Validate(bg, tok); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay on a replica with a late clock = %v, want ErrReplayed", err)
	}
	// Once every replica's window has closed the token is refused as too
	// old, whatever the cache holds.
	real = t0.Add(3*time.Minute + 42*time.Second)
	if _, err := late.Validate(bg, tok); !errors.Is(err, ErrTooOld) {
		t.Fatalf("after the window = %v, want ErrTooOld", err)
	}
}

// clockReplay is a replay cache on a settable clock.
type clockReplay struct {
	mu    sync.Mutex
	now   func() time.Time
	marks map[string]time.Time
}

func (c *clockReplay) MarkJTI(_ contextT, iss, jti string, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := iss + "\x00" + jti
	if exp, ok := c.marks[k]; ok && c.now().Before(exp) {
		return false, nil
	}
	c.marks[k] = c.now().Add(ttl)
	return true, nil
}

type recordingReplay struct {
	ReplayCache
	ttl time.Duration
}

func (r *recordingReplay) MarkJTI(ctx contextT, iss, jti string, ttl time.Duration) (bool, error) {
	r.ttl = ttl
	return r.ReplayCache.MarkJTI(ctx, iss, jti, ttl)
}

func TestReplayCacheFailureRefuses(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, failingReplay{}, nil)
	_, err := v.Validate(bg, sign(t, k, "JWT", op.claims()))
	if !errors.Is(err, ErrReplayCheck) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Validate = %v, want ErrReplayCheck (not a token fault)", err)
	}
}

type failingReplay struct{}

func (failingReplay) MarkJTI(contextT, string, string, time.Duration) (bool, error) {
	return false, errors.New("store down")
}

func TestMissingEvents(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	cl := op.claims()
	delete(cl, "events")
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrEvents)
	// Other events only.
	cl = op.claims()
	cl["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrEvents)
}

func TestEventsWrongType(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	for _, ev := range []any{
		EventBackChannelLogout,
		[]any{EventBackChannelLogout},
		map[string]any{EventBackChannelLogout: true},
		map[string]any{EventBackChannelLogout: ""},
		map[string]any{EventBackChannelLogout: []any{}},
		map[string]any{EventBackChannelLogout: nil},
		nil,
	} {
		cl := op.claims()
		cl["events"] = ev
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrEvents)
	}
	// The event object may have members.
	cl := op.claims()
	cl["events"] = map[string]any{EventBackChannelLogout: map[string]any{"x": 1}, "other": 2}
	expectAccepted(t, v, sign(t, k, "JWT", cl))
}

// TestWithNonce: an ID token (it has a nonce) is never a logout token, even
// with the events member added.
func TestWithNonce(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	for _, n := range []any{"n-123", "", nil} {
		cl := op.claims()
		cl["nonce"] = n
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrNonce)
	}
}

func TestNeitherSIDNorSub(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	cl := op.claims()
	delete(cl, "sid")
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrNoSubject)
	cl = op.claims()
	cl["sid"], cl["sub"] = "", ""
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrNoSubject)
	for _, bad := range []any{7, map[string]any{}, []any{"a"}, strings.Repeat("s", sessionindex.MaxValueLen+1)} {
		cl = op.claims()
		cl["sub"] = bad
		expectRefused(t, v, sign(t, k, "JWT", cl), ErrClaimType)
	}
}

func TestMissingJTI(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	cl := op.claims()
	delete(cl, "jti")
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrJTI)
	cl["jti"] = ""
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrJTI)
	cl["jti"] = 12345
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrClaimType)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestAlgNone(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	payload := sign(t, k, "JWT", op.claims())
	body := strings.Split(payload, ".")[1]
	for _, hdr := range []string{`{"alg":"none"}`, `{"alg":"none","typ":"JWT","kid":"k1"}`, `{"alg":"None"}`, `{"alg":"NONE"}`} {
		for _, sig := range []string{"", "AAAA"} {
			expectRefused(t, v, b64(hdr)+"."+body+"."+sig, ErrAlgorithm)
		}
	}
	if n := op.jwksN.Load(); n != 0 {
		t.Fatalf("the JWKS was fetched %d times for unsigned tokens", n)
	}
}

// TestHS256WithPublicKeyAsSecret: the classic key-confusion attack, an
// HMAC over the token keyed with the OP's public key (PEM/DER, as the
// attacker can get it from the JWKS), is refused by algorithm.
func TestHS256WithPublicKeyAsSecret(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	der, err := x509.MarshalPKIXPublicKey(&rsaKey(0).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512} {
		raw := sign(t, signingKey{kid: "k1", alg: alg, key: der}, "JWT", op.claims())
		expectRefused(t, v, raw, ErrAlgorithm)
	}
}

func TestConfigRefusesSymmetricAndNone(t *testing.T) {
	for _, a := range []jose.SignatureAlgorithm{jose.HS256, "none", "RS1", ""} {
		_, err := New(Config{Issuer: "https://op.example", ClientID: "c", Replay: failingReplay{}, Algorithms: []jose.SignatureAlgorithm{jose.RS256, a}})
		if err == nil {
			t.Errorf("New accepted algorithm %q", a)
		}
	}
	for name, cfg := range map[string]Config{
		"no issuer":     {ClientID: "c", Replay: failingReplay{}},
		"no client":     {Issuer: "https://op.example", Replay: failingReplay{}},
		"no replay":     {Issuer: "https://op.example", ClientID: "c"},
		"plain jwks":    {Issuer: "https://op.example", ClientID: "c", Replay: failingReplay{}, JWKSURL: "http://op.example/jwks"},
		"plain issuer":  {Issuer: "http://op.example", ClientID: "c", Replay: failingReplay{}},
		"userinfo jwks": {Issuer: "https://op.example", ClientID: "c", Replay: failingReplay{}, JWKSURL: "https://u:p@op.example/jwks"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New accepted %s", name)
		}
	}
}

// TestUnknownKidThenKeyRotation: the OP rotates its key; the first token
// with the new kid refetches the JWKS once and is accepted; made-up kids
// refetch at most once per RefetchInterval.
func TestUnknownKidThenKeyRotation(t *testing.T) {
	old, next := newRSAKey("2026-11", 0), newRSAKey("2026-12", 1)
	op := newTestOP(t, old)
	clk := &fakeClock{t: time.Now()}
	v := newValidator(t, op, nil, func(c *Config) { c.Now = clk.Now; c.RefetchInterval = time.Minute })
	expectAccepted(t, v, sign(t, old, "JWT", op.claims()))
	if n := op.jwksN.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
	op.publish(next) // rotation: the old key is gone
	expectAccepted(t, v, sign(t, next, "JWT", op.claims()))
	if n := op.jwksN.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches after the rotation, want 2", n)
	}
	// The retired key no longer verifies.
	expectRefused(t, v, sign(t, old, "JWT", op.claims()), ErrUnknownKey)
	// Made-up kids: one refetch per interval at most, whatever their number.
	before := op.jwksN.Load()
	for i := range 50 {
		expectRefused(t, v, sign(t, newRSAKey(fmt.Sprint("made-up-", i), 2), "JWT", op.claims()), ErrUnknownKey)
	}
	if n := op.jwksN.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for 50 unknown kids within the interval, want at most 1", n)
	}
	// A rotation right after is picked up once the interval has passed.
	third := newRSAKey("2027-01", 2)
	op.publish(next, third)
	clk.Advance(time.Minute + time.Second)
	expectAccepted(t, v, sign(t, third, "JWT", op.claims()))
}

func TestKeysRefreshedAfterMaxAge(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	clk := &fakeClock{t: time.Now()}
	v := newValidator(t, op, nil, func(c *Config) { c.Now = clk.Now; c.KeysMaxAge = time.Hour })
	cl := func() map[string]any { c := op.claims(); c["iat"] = clk.Now().Unix(); return c }
	expectAccepted(t, v, sign(t, k, "JWT", cl()))
	expectAccepted(t, v, sign(t, k, "JWT", cl()))
	if n := op.jwksN.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (cached)", n)
	}
	clk.Advance(time.Hour + time.Second)
	expectAccepted(t, v, sign(t, k, "JWT", cl()))
	if n := op.jwksN.Load(); n != 2 {
		t.Fatalf("%d fetches after KeysMaxAge, want 2", n)
	}
	// The OP is down: the cached keys keep working.
	op.srv.Close()
	clk.Advance(time.Hour + time.Second)
	expectAccepted(t, v, sign(t, k, "JWT", cl()))
}

func TestOversizedToken(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, func(c *Config) { c.MaxTokenSize = 4096 })
	cl := op.claims()
	cl["pad"] = strings.Repeat("p", 4096)
	expectRefused(t, v, sign(t, k, "JWT", cl), ErrTooLarge)
	if n := op.jwksN.Load(); n != 0 {
		t.Fatalf("the JWKS was fetched %d times for an oversized token", n)
	}
	cl["pad"] = strings.Repeat("p", 2000)
	expectAccepted(t, v, sign(t, k, "JWT", cl))
}

func TestMalformed(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	v := newValidator(t, op, nil, nil)
	good := sign(t, k, "JWT", op.claims())
	p := strings.Split(good, ".")
	for _, raw := range []string{"", "a", "a.b", "a.b.c", "a.b.c.d.e", p[0] + "." + p[1], p[0] + ".!!." + p[2], good + ".x"} {
		expectRefused(t, v, raw, ErrMalformed)
	}
	// Signed payloads that are not one JSON object.
	for _, payload := range []string{`[]`, `"x"`, `null`, `{"a":1} {"b":2}`, `{`} {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey(0)}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := jws.CompactSerialize()
		expectRefused(t, v, raw, ErrMalformed)
	}
}

func TestDiscoveryIssuerMismatchIsOurFailure(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	realIssuer := op.issuer
	op.issuer = "https://elsewhere.example" // the document now names another issuer
	v := newValidator(t, op, nil, func(c *Config) { c.Issuer = realIssuer })
	cl := op.claims()
	cl["iss"] = realIssuer
	_, err := v.Validate(bg, sign(t, k, "JWT", cl))
	if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Validate = %v, want ErrKeysUnavailable", err)
	}
}
