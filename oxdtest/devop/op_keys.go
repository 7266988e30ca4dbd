package devop

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// rsaKeyBits is the size of the OP's signing keys.
const rsaKeyBits = 2048

// sigKey is one RS256 signing key.
type sigKey struct {
	kid    string
	priv   *rsa.PrivateKey
	signer jose.Signer
}

func newSigKey() (*sigKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, fmt.Errorf("devop: generate RSA key: %w", err)
	}
	pub := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devop: key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.RS256)}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("devop: signer: %w", err)
	}
	return &sigKey{kid: kid, priv: priv, signer: signer}, nil
}

func (k *sigKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// keyring holds the current signing key and the one it replaced. The
// previous key stays published in the JWKS until the next rotation, so
// tokens signed before a rotation keep verifying for one rotation period.
type keyring struct {
	mu       sync.Mutex
	current  *sigKey
	previous *sigKey
	unknown  *sigKey // for FaultUnknownKey, never published
}

func newKeyring() (*keyring, error) {
	k, err := newSigKey()
	if err != nil {
		return nil, err
	}
	return &keyring{current: k}, nil
}

// RotateKeys makes a fresh key the signing key. The key it replaces stays
// in the JWKS until the next call, so ID tokens signed with it still verify
// during that grace period; the key before it is dropped. It panics only
// if the system's random source fails.
func (op *OP) RotateKeys() {
	k, err := newSigKey()
	if err != nil {
		panic(err)
	}
	op.keys.mu.Lock()
	defer op.keys.mu.Unlock()
	op.keys.previous, op.keys.current = op.keys.current, k
}

func (kr *keyring) signingKey(unknown bool) (*sigKey, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if !unknown {
		return kr.current, nil
	}
	if kr.unknown == nil {
		k, err := newSigKey()
		if err != nil {
			return nil, err
		}
		kr.unknown = k
	}
	return kr.unknown, nil
}

func (kr *keyring) published() []jose.JSONWebKey {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	keys := []jose.JSONWebKey{kr.current.public()}
	if kr.previous != nil {
		keys = append(keys, kr.previous.public())
	}
	return keys
}

func (kr *keyring) byKID(kid string) *sigKey {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	for _, k := range []*sigKey{kr.current, kr.previous} {
		if k != nil && k.kid == kid {
			return k
		}
	}
	return nil
}

// sign serialises claims as a compact RS256 JWT.
func (op *OP) sign(claims map[string]any) (string, error) {
	k, err := op.keys.signingKey(op.fault(EndpointToken) == FaultUnknownKey)
	if err != nil {
		return "", err
	}
	s, err := jwt.Signed(k.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("devop: sign JWT: %w", err)
	}
	return s, nil
}

var errBadJWT = errors.New("devop: JWT not issued by this OP")

// verifyOwnJWT checks that s is an RS256 JWT signed with a published key
// of this OP and issued by it, and returns its claims. Expiry is not
// checked here.
func (op *OP) verifyOwnJWT(s string) (map[string]any, error) {
	tok, err := jwt.ParseSigned(s, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadJWT, err)
	}
	if len(tok.Headers) != 1 {
		return nil, errBadJWT
	}
	k := op.keys.byKID(tok.Headers[0].KeyID)
	if k == nil {
		return nil, fmt.Errorf("%w: unknown kid", errBadJWT)
	}
	var claims map[string]any
	if err := tok.Claims(&k.priv.PublicKey, &claims); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadJWT, err)
	}
	if iss, _ := claims["iss"].(string); iss != op.issuer {
		return nil, fmt.Errorf("%w: wrong issuer", errBadJWT)
	}
	return claims, nil
}

func (op *OP) handleJWKS(w http.ResponseWriter, r *http.Request, _ string) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: op.keys.published()})
}

// atHash computes the OIDC at_hash of an access token for RS256: the
// base64url encoding of the left half of its SHA-256 hash.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// shortHash is a short, stable, non-secret identifier derived from s.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}
