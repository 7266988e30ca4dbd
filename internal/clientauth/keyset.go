package clientauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// RSAKeyBits is the size of the RSA keys GenerateKeySet and Rotate make
// for RS256 and PS256. Loaded keys must have at least this many bits.
const RSAKeyBits = 2048

// KeyRetireGrace is how long a key stays published after a newer key took
// over signing: the longest an assertion signed just before the switch
// stays valid (MaxAssertionTTL) plus a minute of clock skew between the
// client and the OP. Prune drops keys only after it.
const KeyRetireGrace = MaxAssertionTTL + time.Minute

// maxKeys bounds a key set (loaded or grown by rotation).
const maxKeys = 16

// KeySet holds the private keys of a private_key_jwt client and their
// timeline, for rotation without downtime:
//
//  1. Rotate adds a new key that is published at once (PublicJWKS) but
//     signs only from now+lead, giving the OP time to fetch the client's
//     jwks_uri again (or the caller time to update the registered jwks).
//  2. From then on the new key signs; the old key stays published for
//     KeyRetireGrace, until every assertion signed with it has expired.
//  3. Prune (or just time: PublicJWKS leaves retired keys out) removes it.
//
// The signing key at any instant is the newest key whose signing start
// has passed; it is always among the published keys.
//
// A KeySet holds private keys: it prints as its key ids only (String,
// Format, LogValue), and MarshalJSON, its storage form, contains the
// private keys, to be stored like a client secret. Reads are safe for
// concurrent use; Rotate and Prune need exclusive access (callers keep a
// KeySet per stored client and replace it as a whole, see Clone).
type KeySet struct {
	keys []*setKey // in order of signing start
}

type setKey struct {
	kid       string
	alg       jose.SignatureAlgorithm
	priv      crypto.Signer
	created   time.Time
	signsFrom time.Time
}

// GenerateKeySet returns a key set with one fresh key of alg (RS256,
// PS256 or ES256) that signs from now.
func GenerateKeySet(alg string, now time.Time) (*KeySet, error) {
	k, err := newSetKey(alg, now, now)
	if err != nil {
		return nil, err
	}
	return &KeySet{keys: []*setKey{k}}, nil
}

func newSetKey(alg string, created, signsFrom time.Time) (*setKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "RS256", "PS256":
		priv, err = rsa.GenerateKey(rand.Reader, RSAKeyBits)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, &ConfigError{Err: ErrUnsupportedAlg, Field: "client_token_endpoint_auth_signing_alg",
			Reason: echo(alg) + " cannot sign private_key_jwt assertions", Fix: "pass one of " + strings.Join(keyAlgs, ", ")}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: generate %s key: %w", ErrBadKeySet, alg, err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	return &setKey{kid: kid, alg: jose.SignatureAlgorithm(alg), priv: priv, created: created.UTC(), signsFrom: signsFrom.UTC()}, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, base64url.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: key thumbprint: %w", ErrBadKeySet, err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Rotate adds a fresh key of alg ("" keeps the algorithm of the newest
// key) that is published from now and signs from now+lead (lead < 0 is
// treated as 0). lead is the time the OP needs to see it: its JWKS cache
// lifetime for a jwks_uri, or the time to update the registered jwks. It
// returns the new key's kid. Older keys are pruned as in Prune.
func (ks *KeySet) Rotate(alg string, now time.Time, lead time.Duration) (string, error) {
	if ks == nil || len(ks.keys) == 0 {
		return "", fmt.Errorf("%w: no keys to rotate (use GenerateKeySet)", ErrBadKeySet)
	}
	if alg == "" {
		alg = string(ks.keys[len(ks.keys)-1].alg)
	}
	lead = max(lead, 0)
	ks.Prune(now)
	if len(ks.keys) >= maxKeys {
		return "", fmt.Errorf("%w: %d keys still published; wait for older ones to retire", ErrBadKeySet, len(ks.keys))
	}
	k, err := newSetKey(alg, now, now.Add(lead))
	if err != nil {
		return "", err
	}
	ks.keys = append(ks.keys, k)
	ks.sort()
	return k.kid, nil
}

func (ks *KeySet) sort() {
	slices.SortStableFunc(ks.keys, func(a, b *setKey) int { return a.signsFrom.Compare(b.signsFrom) })
}

// signingIndex is the index of the key that signs at now: the last one
// whose signing start has passed; -1 if none.
func (ks *KeySet) signingIndex(now time.Time) int {
	if ks == nil {
		return -1
	}
	idx := -1
	for i, k := range ks.keys {
		if !k.signsFrom.After(now) {
			idx = i
		}
	}
	return idx
}

// retired reports whether key i, superseded by the next signing key,
// has passed its grace period at now.
func (ks *KeySet) retired(i int, now time.Time) bool {
	cur := ks.signingIndex(now)
	if i >= cur {
		return false
	}
	// Key i stopped signing when key i+1 started.
	return !now.Before(ks.keys[i+1].signsFrom.Add(KeyRetireGrace))
}

// Prune drops keys retired at now (superseded more than KeyRetireGrace
// ago) and reports how many.
func (ks *KeySet) Prune(now time.Time) int {
	if ks == nil {
		return 0
	}
	var keep []*setKey
	for i, k := range ks.keys {
		if !ks.retired(i, now) {
			keep = append(keep, k)
		}
	}
	n := len(ks.keys) - len(keep)
	ks.keys = keep
	return n
}

// SigningKID returns the kid and algorithm of the key that signs at now
// ("" if no key signs yet).
func (ks *KeySet) SigningKID(now time.Time) (kid, alg string) {
	i := ks.signingIndex(now)
	if i < 0 {
		return "", ""
	}
	return ks.keys[i].kid, string(ks.keys[i].alg)
}

// KIDs returns the kids of all keys held, in order of signing start.
func (ks *KeySet) KIDs() []string {
	if ks == nil {
		return nil
	}
	out := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		out[i] = k.kid
	}
	return out
}

// Public returns the public keys published at now: keys waiting to sign,
// the signing key, and superseded keys within KeyRetireGrace. Each has
// kid, alg and use "sig".
func (ks *KeySet) Public(now time.Time) jose.JSONWebKeySet {
	out := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	if ks == nil {
		return out
	}
	for i, k := range ks.keys {
		if ks.retired(i, now) {
			continue
		}
		out.Keys = append(out.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	return out
}

// PublicJWKS returns Public(now) as a JWKS document ({"keys":[…]}), to
// serve at the client's jwks_uri or to register as its jwks.
func (ks *KeySet) PublicJWKS(now time.Time) ([]byte, error) {
	b, err := json.Marshal(ks.Public(now))
	if err != nil {
		return nil, fmt.Errorf("%w: marshal public keys: %w", ErrBadKeySet, err)
	}
	return b, nil
}

// Clone returns a copy that shares no key list with ks (keys themselves
// are immutable), so one copy can be rotated while the other signs.
func (ks *KeySet) Clone() *KeySet {
	if ks == nil {
		return nil
	}
	return &KeySet{keys: slices.Clone(ks.keys)}
}

// storedKey is one key in the storage form.
type storedKey struct {
	JWK       json.RawMessage `json:"jwk"`
	Created   int64           `json:"created"`
	SignsFrom int64           `json:"signs_from"`
}

type storedSet struct {
	Keys []storedKey `json:"keys"`
}

// MarshalJSON is the storage form: every key as a private JWK with its
// timeline. It contains private keys; store it like a client secret.
func (ks *KeySet) MarshalJSON() ([]byte, error) {
	if ks == nil {
		return []byte("null"), nil
	}
	st := storedSet{Keys: make([]storedKey, 0, len(ks.keys))}
	for _, k := range ks.keys {
		jwk, err := jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%w: marshal key %s", ErrBadKeySet, k.kid)
		}
		st.Keys = append(st.Keys, storedKey{JWK: jwk, Created: k.created.Unix(), SignsFrom: k.signsFrom.Unix()})
	}
	return json.Marshal(st)
}

// UnmarshalJSON loads the storage form of MarshalJSON. Every key must be
// a private RSA (at least RSAKeyBits) or P-256 key whose alg matches it,
// with a kid equal to its thumbprint. Errors name the key by position
// and never quote key material.
func (ks *KeySet) UnmarshalJSON(b []byte) error {
	var st storedSet
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%w: not a stored key set", ErrBadKeySet)
	}
	if len(st.Keys) == 0 || len(st.Keys) > maxKeys {
		return fmt.Errorf("%w: %d keys (want 1 to %d)", ErrBadKeySet, len(st.Keys), maxKeys)
	}
	keys := make([]*setKey, 0, len(st.Keys))
	seen := map[string]bool{}
	for i, sk := range st.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(sk.JWK); err != nil {
			return fmt.Errorf("%w: key %d is not a valid JWK", ErrBadKeySet, i)
		}
		priv, ok := jwk.Key.(crypto.Signer)
		if !ok || jwk.IsPublic() {
			return fmt.Errorf("%w: key %d is not a private key", ErrBadKeySet, i)
		}
		if err := checkKeyAlg(priv, jwk.Algorithm); err != nil {
			return fmt.Errorf("%w: key %d: %w", ErrBadKeySet, i, err)
		}
		kid, err := thumbprint(priv.Public())
		if err != nil {
			return err
		}
		if jwk.KeyID != kid || seen[kid] {
			return fmt.Errorf("%w: key %d: kid is not its thumbprint or is repeated", ErrBadKeySet, i)
		}
		seen[kid] = true
		keys = append(keys, &setKey{kid: kid, alg: jose.SignatureAlgorithm(jwk.Algorithm), priv: priv,
			created: time.Unix(sk.Created, 0).UTC(), signsFrom: time.Unix(sk.SignsFrom, 0).UTC()})
	}
	ks.keys = keys
	ks.sort()
	return nil
}

// checkKeyAlg checks that a private key can sign with alg.
func checkKeyAlg(priv crypto.Signer, alg string) error {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if alg != "RS256" && alg != "PS256" {
			return fmt.Errorf("an RSA key cannot sign %s", echo(alg))
		}
		if k.N.BitLen() < RSAKeyBits {
			return fmt.Errorf("RSA key of %d bits (at least %d)", k.N.BitLen(), RSAKeyBits)
		}
		return k.Validate()
	case *ecdsa.PrivateKey:
		if alg != "ES256" || k.Curve != elliptic.P256() {
			return fmt.Errorf("an EC key signs ES256 on P-256 only")
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", priv)
}

// String lists the kids and algorithms, never key material.
func (ks *KeySet) String() string {
	if ks == nil {
		return "clientauth.KeySet(nil)"
	}
	parts := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		parts[i] = k.kid + "/" + string(k.alg)
	}
	return "clientauth.KeySet[" + strings.Join(parts, " ") + "]"
}

// GoString is String, so %#v shows no key material.
func (ks *KeySet) GoString() string { return ks.String() }

// Format prints String for every verb, so no verb prints key material.
func (ks *KeySet) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(ks.String())) }

// LogValue is String, for log/slog.
func (ks *KeySet) LogValue() slog.Value { return slog.StringValue(ks.String()) }
