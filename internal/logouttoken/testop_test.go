package logouttoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oxdgo/oxd/sessionindex"
)

const clientID = "rp-client-1"

// testOP is a small OP for the tests: discovery and a JWKS whose keys the
// test can rotate, counting the JWKS fetches.
type testOP struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	keys   []jose.JSONWebKey // public keys published
	jwksN  atomic.Int32
	issuer string
}

type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key any // private key
}

var (
	rsaOnce sync.Once
	rsaKeys [3]*rsa.PrivateKey
)

// rsaKey returns one of three RSA keys generated once per test binary.
func rsaKey(i int) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func newRSAKey(kid string, i int) signingKey {
	return signingKey{kid: kid, alg: jose.RS256, key: rsaKey(i)}
}

func newECKey(t *testing.T, kid string) signingKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.ES256, key: k}
}

func (k signingKey) public() jose.JSONWebKey {
	var pub any
	switch p := k.key.(type) {
	case *rsa.PrivateKey:
		pub = &p.PublicKey
	case *ecdsa.PrivateKey:
		pub = &p.PublicKey
	}
	return jose.JSONWebKey{Key: pub, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

func newTestOP(t testing.TB, keys ...signingKey) *testOP {
	op := &testOP{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": op.issuer, "jwks_uri": op.issuer + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		op.jwksN.Add(1)
		op.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), op.keys...)}
		op.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	op.issuer = op.srv.URL
	op.publish(keys...)
	return op
}

// publish replaces the published keys (rotation).
func (op *testOP) publish(keys ...signingKey) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.keys = op.keys[:0]
	for _, k := range keys {
		op.keys = append(op.keys, k.public())
	}
}

// claims are the claims of a logout token like the one a deployed
// certified OP sends: sid but no sub, no exp.
func (op *testOP) claims() map[string]any {
	return map[string]any{
		"iss":    op.issuer,
		"aud":    clientID,
		"iat":    time.Now().Unix(),
		"jti":    randomID(),
		"sid":    "op-session-1",
		"events": map[string]any{EventBackChannelLogout: map[string]any{}},
	}
}

func randomID() string { return "jti-" + rand.Text() }

// sign signs claims with k; typ is the typ header ("" for none).
func sign(t testing.TB, k signingKey, typ string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", k.kid)
	if k.kid == "" {
		opts = &jose.SignerOptions{}
	}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newValidator(t *testing.T, op *testOP, replay ReplayCache, mod func(*Config)) *Validator {
	t.Helper()
	if replay == nil {
		replay = sessionindex.NewMemory(sessionindex.MemoryOptions{})
	}
	cfg := Config{Issuer: op.issuer, ClientID: clientID, Replay: replay, HTTPClient: op.srv.Client()}
	if mod != nil {
		mod(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var bg = context.Background()

type contextT = context.Context
