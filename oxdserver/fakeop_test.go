package oxdserver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

// fakeOP is a scriptable OP for the error paths the development OP cannot
// produce (forged, mis-addressed or expired id_tokens, odd answers). It
// signs with its own keys and records what the engine sends.
type fakeOP struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	keys      []jose.JSONWebKey // published
	signer    jose.Signer
	alg       jose.SignatureAlgorithm
	nonce     string               // put into the next id_token
	mutate    func(map[string]any) // changes id_token claims
	sign      func([]byte) string  // replaces the signer when set
	tokenResp func(http.ResponseWriter, *http.Request) bool
	discovery func(map[string]any)
	discFail  bool                    // discovery answers 500
	forms     map[string][]url.Values // endpoint → forms received
	auths     map[string][]string     // endpoint → Authorization headers
	bodies    map[string][]string
	calls     map[string]int
	accessTok string
	nextKey   int
}

const fakeClientID, fakeClientSecret = "fake-client", "fake-secret"

func newFakeOP(t testing.TB) *fakeOP {
	f := &fakeOP{t: t, forms: map[string][]url.Values{}, auths: map[string][]string{}, bodies: map[string][]string{}, calls: map[string]int{}, accessTok: "at-123"}
	f.useRSAKey("k1")
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", f.handleDiscovery)
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		f.record("jwks", r)
		f.mu.Lock()
		keys := append([]jose.JSONWebKey(nil), f.keys...)
		f.mu.Unlock()
		writeJSON(w, 200, jose.JSONWebKeySet{Keys: keys})
	})
	mux.HandleFunc("/register", func(w http.ResponseWriter, r *http.Request) {
		f.record("register", r)
		writeJSON(w, 201, map[string]any{"client_id": fakeClientID, "client_secret": fakeClientSecret,
			"registration_access_token": "rat", "registration_client_uri": f.srv.URL + "/register/" + fakeClientID, "client_id_issued_at": 1700000000})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		f.record("token", r)
		f.mu.Lock()
		custom := f.tokenResp
		f.mu.Unlock()
		if custom != nil && custom(w, r) {
			return
		}
		f.mu.Lock()
		at := f.accessTok
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300,
			"refresh_token": "rt-1", "id_token": f.idToken(at)})
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		f.record("userinfo", r)
		writeJSON(w, 200, map[string]any{"sub": "u1", "age": 42, "tags": []string{"a", "b"}, "address": map[string]any{"country": "DE"}, "nothing": nil})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOP) issuer() string { return f.srv.URL }

func (f *fakeOP) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	f.record("discovery", r)
	f.mu.Lock()
	fail := f.discFail
	f.mu.Unlock()
	if fail {
		writeJSON(w, 500, map[string]any{"error": "server_error"})
		return
	}
	doc := map[string]any{
		"issuer":                 f.srv.URL,
		"authorization_endpoint": f.srv.URL + "/authorize",
		"token_endpoint":         f.srv.URL + "/token",
		"userinfo_endpoint":      f.srv.URL + "/userinfo",
		"jwks_uri":               f.srv.URL + "/jwks",
		"registration_endpoint":  f.srv.URL + "/register",
		"scopes_supported":       []string{"openid", "profile"},
		"grant_types_supported":  []string{"authorization_code", "refresh_token"},
	}
	f.mu.Lock()
	mod := f.discovery
	f.mu.Unlock()
	if mod != nil {
		mod(doc)
	}
	writeJSON(w, 200, doc)
}

func (f *fakeOP) record(ep string, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[ep]++
	f.forms[ep] = append(f.forms[ep], r.PostForm)
	f.auths[ep] = append(f.auths[ep], r.Header.Get("Authorization"))
}

func (f *fakeOP) count(ep string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[ep]
}

func (f *fakeOP) lastForm(ep string) url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.forms[ep]
	if len(l) == 0 {
		return nil
	}
	return l[len(l)-1]
}

func (f *fakeOP) lastAuth(ep string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.auths[ep]
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}

// rsaKeys are generated once for all tests (RSA generation is slow);
// each fakeOP hands them out in turn, so successive keys of one fake
// differ.
var (
	rsaKeysOnce sync.Once
	rsaKeys     [4]*rsa.PrivateKey
)

func (f *fakeOP) useRSAKey(kid string) {
	rsaKeysOnce.Do(func() {
		for i := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[i] = k
		}
	})
	f.mu.Lock()
	k := rsaKeys[f.nextKey%len(rsaKeys)]
	f.nextKey++
	f.mu.Unlock()
	f.setKey(jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}, jose.RS256, true)
}

func (f *fakeOP) useECKey(kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(f.t, err)
	f.setKey(jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}, jose.ES256, true)
}

// setKey signs with priv from now on; publish adds its public half to the
// JWKS (replacing the published set).
func (f *fakeOP) setKey(priv jose.JSONWebKey, alg jose.SignatureAlgorithm, publish bool) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv}, (&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(f.t, err)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signer, f.alg = s, alg
	if publish {
		f.keys = []jose.JSONWebKey{priv.Public()}
	}
}

func (f *fakeOP) setNonce(n string) {
	f.mu.Lock()
	f.nonce = n
	f.mu.Unlock()
}

func (f *fakeOP) setMutate(m func(map[string]any)) {
	f.mu.Lock()
	f.mutate = m
	f.mu.Unlock()
}

func (f *fakeOP) setTokenResponse(h func(http.ResponseWriter, *http.Request) bool) {
	f.mu.Lock()
	f.tokenResp = h
	f.mu.Unlock()
}

func (f *fakeOP) idToken(accessToken string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	sum := sha256.Sum256([]byte(accessToken))
	claims := map[string]any{
		"iss": f.srv.URL, "sub": "u1", "aud": fakeClientID,
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nonce": f.nonce,
		"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]),
		"amr":     []string{"pwd", "otp"}, "email_verified": true,
	}
	if f.mutate != nil {
		f.mutate(claims)
	}
	// idToken runs on the fake's HTTP handler goroutine: failures are
	// reported with Errorf (safe from any goroutine), never FailNow.
	b, err := json.Marshal(claims)
	if err != nil {
		f.t.Errorf("fake OP: marshal id_token claims: %v", err)
		return ""
	}
	if f.sign != nil {
		return f.sign(b)
	}
	jws, err := f.signer.Sign(b)
	if err != nil {
		f.t.Errorf("fake OP: sign id_token: %v", err)
		return ""
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		f.t.Errorf("fake OP: serialize id_token: %v", err)
		return ""
	}
	return s
}

// setSign makes the fake build the id_token from its JSON claims with sign
// instead of its signer (forged or unsigned tokens). sign runs on the HTTP
// handler goroutine: it must not call FailNow.
func (f *fakeOP) setSign(sign func(claims []byte) string) {
	f.mu.Lock()
	f.sign = sign
	f.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fakeSite registers a site at the fake OP and returns the engine and the
// oxd_id.
func fakeSite(t testing.TB, f *fakeOP, cfg oxdserver.Config) (*oxdserver.Engine, string) {
	t.Helper()
	cfg.InsecureAllowLoopbackHTTP = true // the fake OP speaks http on loopback
	e, err := oxdserver.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	r, err := oxdclient.New(e, oxdclient.Config{}).RegisterSite(testCtx(t), oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost: f.issuer(), AuthorizationRedirectURI: "https://rp.example/cb", PostLogoutRedirectURI: "https://rp.example/bye",
	}})
	require.NoError(t, err)
	return e, r.OxdID
}

// fakeLogin asks for an authorization URL, makes the fake OP put its nonce
// into the next id_token, and returns the state.
func fakeLogin(t testing.TB, f *fakeOP, e *oxdserver.Engine, oxdID string) (state, nonce, challenge string) {
	t.Helper()
	au, err := oxdclient.New(e, oxdclient.Config{}).GetAuthorizationURL(testCtx(t), oxdclient.GetAuthorizationURLParams{OxdID: oxdID})
	require.NoError(t, err)
	u, err := url.Parse(au.AuthorizationURL)
	require.NoError(t, err)
	f.setNonce(u.Query().Get("nonce"))
	return u.Query().Get("state"), u.Query().Get("nonce"), u.Query().Get("code_challenge")
}

func fakeTokens(t testing.TB, e *oxdserver.Engine, oxdID, state string) (*oxdclient.GetTokensByCodeResponse, error) {
	t.Helper()
	return oxdclient.New(e, oxdclient.Config{}).GetTokensByCode(testCtx(t), oxdclient.GetTokensByCodeParams{OxdID: oxdID, Code: "the-code", State: state})
}
