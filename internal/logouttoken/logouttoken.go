// Package logouttoken validates OpenID Connect Back-Channel Logout 1.0
// logout tokens (§2.4, §2.6) and provides the HTTP handlers of the
// back-channel and front-channel logout endpoints, for the root package to
// mount.
//
// A token is accepted when, in this order:
//   - it is at most Config.MaxTokenSize bytes, a compact JWS with exactly one
//     signature, signed with an algorithm of the allow-list (never none nor
//     HS*), typ absent, "logout+jwt" or "JWT" (see below);
//   - the signature verifies with a public key of the OP's JWKS (from
//     discovery), chosen by kid; an unknown kid refetches the JWKS at most
//     once per Config.RefetchInterval (key rotation without letting made-up
//     kids hammer the OP);
//   - iss equals the issuer exactly, aud (string or array) contains the
//     client_id, iat is present and within [now-MaxAge-ClockSkew,
//     now+ClockSkew], exp (when present) has not passed;
//   - events is an object whose member
//     "http://schemas.openid.net/event/backchannel-logout" is an object,
//     sid or sub (strings) is present, nonce is absent, jti is present;
//   - and, last, the jti is fresh in the replay cache (shared by every
//     replica), where it stays for as long as the token's iat would be
//     accepted plus ClockSkew, so that a replica whose clock is up to
//     ClockSkew behind cannot accept a replay near the window's end.
//
// Deployed OPs differ from the letter of the specification: some send
// typ "JWT" instead of "logout+jwt", or no typ, no sub (sid only), no exp.
// Those are accepted; freshness is bounded by iat and single use by jti. The
// defences against an ID token replayed as a logout token (§2.6 step 5 and
// 6) are the required events member and the refused nonce, which hold
// whatever the typ.
//
// # Wiring
//
// The root package builds one Validator (Issuer: the OP's issuer, ClientID:
// the site's client_id, Replay: the configured session index) and mounts
// BackChannelHandler and FrontChannelHandler with the session index and a
// DestroyFunc that deletes a store key from the scs Store (DeleteCtx when
// the store has it). Login adds every new session to the index with the ID
// token's iss, sub and sid and the session's deadline, and ends the
// sessions Add evicts; logout ends and removes the session (and, for "sign
// out of all my sessions", every session BySubject returns).
package logouttoken

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oxdgo/oxd/internal/jwtclaims"
	"github.com/oxdgo/oxd/sessionindex"
)

// EventBackChannelLogout is the events member of a logout token.
const EventBackChannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// Defaults of Config.
const (
	DefaultMaxAge          = 5 * time.Minute
	DefaultClockSkew       = 30 * time.Second
	DefaultMaxTokenSize    = 16 << 10
	DefaultKeysMaxAge      = time.Hour
	DefaultRefetchInterval = 30 * time.Second
)

// DefaultAlgorithms are the signature algorithms accepted by default: the
// asymmetric ones. HS256/384/512 (the client secret as key) and none are
// never accepted.
var DefaultAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// ReplayCache marks a logout token's jti as used (oxd.SessionIndex
// implements it): fresh is true for exactly one call per (issuer, jti)
// while the mark lasts, across every replica sharing the cache.
type ReplayCache interface {
	MarkJTI(ctx context.Context, issuer, jti string, ttl time.Duration) (fresh bool, err error)
}

// Config configures a Validator.
type Config struct {
	// Issuer is the OP's issuer identifier; iss must equal it exactly.
	// Required.
	Issuer string
	// ClientID is our client_id; aud must contain it. Required.
	ClientID string
	// JWKSURL is the OP's jwks_uri. Default: discovered from
	// Issuer/.well-known/openid-configuration on first use. It must be https
	// (plain http only to a loopback host; a discovered one must be https
	// when Issuer is).
	JWKSURL string
	// HTTPClient fetches discovery and keys. Default: a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Algorithms is the allow-list of signature algorithms. Default
	// DefaultAlgorithms. HS* and none are refused by New.
	Algorithms []jose.SignatureAlgorithm
	// MaxAge is how old iat may be. Default DefaultMaxAge.
	MaxAge time.Duration
	// ClockSkew is the tolerance for iat in the future, the age window and
	// exp. Default DefaultClockSkew.
	ClockSkew time.Duration
	// MaxTokenSize bounds the token in bytes. Default DefaultMaxTokenSize.
	MaxTokenSize int
	// KeysMaxAge is how long fetched keys are used before they are fetched
	// again. When that fetch fails the old keys stay in use and the fetch
	// is retried at most once per RefetchInterval. Default
	// DefaultKeysMaxAge.
	KeysMaxAge time.Duration
	// RefetchInterval is the least time between two refetches caused by an
	// unknown kid. Default DefaultRefetchInterval.
	RefetchInterval time.Duration
	// Replay is the replay cache for jti. Required.
	Replay ReplayCache
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Claims are the claims of an accepted logout token.
type Claims struct {
	Issuer   string
	Subject  string // "" when the OP sent only sid
	SID      string // "" when the OP sent only sub
	JTI      string
	IssuedAt time.Time
}

// Validator validates logout tokens. Safe for concurrent use.
type Validator struct {
	cfg  Config
	keys *keySet
}

// New checks cfg and returns a Validator. Keys are fetched on first use.
func New(cfg Config) (*Validator, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("logouttoken: Issuer and ClientID are required")
	}
	if cfg.Replay == nil {
		return nil, errors.New("logouttoken: a replay cache is required")
	}
	if cfg.JWKSURL != "" {
		if err := checkHTTPURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("logouttoken: JWKSURL: %w", err)
		}
	} else if err := checkHTTPURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("logouttoken: Issuer (for discovery): %w", err)
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, a := range cfg.Algorithms {
		if !slices.Contains(DefaultAlgorithms, a) {
			return nil, fmt.Errorf("logouttoken: algorithm %q is not allowed (asymmetric algorithms only)", a)
		}
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.MaxTokenSize <= 0 {
		cfg.MaxTokenSize = DefaultMaxTokenSize
	}
	if cfg.KeysMaxAge <= 0 {
		cfg.KeysMaxAge = DefaultKeysMaxAge
	}
	if cfg.RefetchInterval <= 0 {
		cfg.RefetchInterval = DefaultRefetchInterval
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Validator{cfg: cfg, keys: &keySet{
		issuer: cfg.Issuer, jwksURL: cfg.JWKSURL, client: cfg.HTTPClient,
		maxAge: cfg.KeysMaxAge, refetchEvery: cfg.RefetchInterval, now: cfg.Now,
	}}, nil
}

// Issuer is the issuer tokens must come from.
func (v *Validator) Issuer() string { return v.cfg.Issuer }

// Validate checks raw as described in the package doc and marks its jti as
// used. A refused token's error wraps ErrInvalidToken and one reason
// (ErrSignature, ErrAudience, …); ErrKeysUnavailable and ErrReplayCheck are
// failures on our side. No error contains the token.
func (v *Validator) Validate(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > v.cfg.MaxTokenSize {
		return nil, ErrTooLarge
	}
	jws, err := jose.ParseSignedCompact(raw, v.cfg.Algorithms)
	if err != nil {
		if alg, ok := headerAlg(raw); ok && !slices.Contains(v.cfg.Algorithms, jose.SignatureAlgorithm(alg)) {
			return nil, ErrAlgorithm
		}
		return nil, ErrMalformed
	}
	if len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	hdr := jws.Signatures[0].Header
	if !typeOK(hdr.ExtraHeaders[jose.HeaderType]) {
		return nil, ErrType
	}
	payload, err := v.verify(ctx, jws, hdr)
	if err != nil {
		return nil, err
	}
	c, ttl, err := v.checkClaims(payload)
	if err != nil {
		return nil, err
	}
	fresh, err := v.cfg.Replay.MarkJTI(ctx, c.Issuer, c.JTI, ttl)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrReplayCheck, err)
	}
	if !fresh {
		return nil, ErrReplayed
	}
	return c, nil
}

// headerAlg reads alg from a compact JWS's header without trusting it, to
// tell a refused algorithm from a malformed token.
func headerAlg(raw string) (string, bool) {
	h, _, ok := strings.Cut(raw, ".")
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "", false
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &hdr) != nil {
		return "", false
	}
	return hdr.Alg, true
}

// typeOK accepts typ absent, "logout+jwt" (the specification's, also as
// application/logout+jwt) and "JWT" (what some deployed OPs send); media
// types compare case-insensitively (RFC 7515 §4.1.9).
func typeOK(typ any) bool {
	if typ == nil {
		return true
	}
	s, ok := typ.(string)
	if !ok {
		return false
	}
	s = strings.ToLower(s)
	return s == "logout+jwt" || s == "application/logout+jwt" || s == "jwt"
}

// verify checks the signature with the OP's key named by kid (or, without a
// kid, any key that fits the algorithm).
func (v *Validator) verify(ctx context.Context, jws *jose.JSONWebSignature, hdr jose.Header) ([]byte, error) {
	keys, err := v.keys.get(ctx)
	if err != nil {
		return nil, err
	}
	cands := candidates(keys, hdr)
	if len(cands) == 0 {
		// Key rotation: the OP may have published a new key since.
		fresh, ok := v.keys.refetch(ctx)
		if !ok {
			return nil, ErrUnknownKey
		}
		if cands = candidates(fresh, hdr); len(cands) == 0 {
			return nil, ErrUnknownKey
		}
	}
	for _, k := range cands {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	// A named key that does not verify is a forgery, not a rotation.
	return nil, ErrSignature
}

// candidates are the keys that may have signed a token with header hdr:
// the kid's (when the token names one) whose alg, if the JWK states one,
// is the token's.
func candidates(keys []jose.JSONWebKey, hdr jose.Header) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if hdr.KeyID != "" && k.KeyID != hdr.KeyID {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		out = append(out, k)
	}
	return out
}

// checkClaims checks the claims (§2.6 steps 3–7 but the replay) and returns
// them with how long the jti must be remembered.
func (v *Validator) checkClaims(payload []byte) (*Claims, time.Duration, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var cl map[string]any
	if err := dec.Decode(&cl); err != nil || cl == nil {
		return nil, 0, ErrMalformed
	}
	// Exactly one JSON value: dec.More is false before a stray '}' or ']',
	// so look for the end of input instead.
	if _, err := dec.Token(); err != io.EOF {
		return nil, 0, ErrMalformed
	}
	if iss, _ := cl["iss"].(string); iss != v.cfg.Issuer {
		return nil, 0, ErrIssuer
	}
	if !audienceContains(cl["aud"], v.cfg.ClientID) {
		return nil, 0, ErrAudience
	}
	now := v.cfg.Now()
	iat, ok := jwtclaims.NumericDate(cl["iat"])
	if !ok || iat.After(now.Add(v.cfg.ClockSkew)) {
		return nil, 0, ErrIssuedAt
	}
	oldest := now.Add(-v.cfg.MaxAge - v.cfg.ClockSkew)
	if iat.Before(oldest) {
		return nil, 0, ErrTooOld
	}
	if e, present := cl["exp"]; present {
		exp, ok := jwtclaims.NumericDate(e)
		if !ok {
			return nil, 0, ErrClaimType
		}
		if !now.Before(exp.Add(v.cfg.ClockSkew)) {
			return nil, 0, ErrExpired
		}
	}
	events, ok := cl["events"].(map[string]any)
	if !ok {
		return nil, 0, ErrEvents
	}
	if _, ok := events[EventBackChannelLogout].(map[string]any); !ok {
		return nil, 0, ErrEvents
	}
	if _, present := cl["nonce"]; present {
		return nil, 0, ErrNonce
	}
	sub, okSub := optionalString(cl, "sub")
	sid, okSID := optionalString(cl, "sid")
	if !okSub || !okSID {
		return nil, 0, ErrClaimType
	}
	if sub == "" && sid == "" {
		return nil, 0, ErrNoSubject
	}
	jti, okJTI := optionalString(cl, "jti")
	if !okJTI {
		return nil, 0, ErrClaimType
	}
	if jti == "" {
		return nil, 0, ErrJTI
	}
	// The jti is remembered for as long as this iat is accepted here, plus
	// ClockSkew for a replica whose clock is up to ClockSkew behind ours
	// (it still accepts this iat after our window has closed), plus a
	// second for clock granularity.
	ttl := max(iat.Sub(oldest)+v.cfg.ClockSkew+time.Second, time.Second)
	return &Claims{Issuer: v.cfg.Issuer, Subject: sub, SID: sid, JTI: jti, IssuedAt: iat}, ttl, nil
}

// optionalString returns claim name as a string ("" when absent); ok is
// false for a value that is not a string or is longer than the index takes.
func optionalString(cl map[string]any, name string) (string, bool) {
	v, present := cl[name]
	if !present {
		return "", true
	}
	s, ok := v.(string)
	if !ok || len(s) > sessionindex.MaxValueLen {
		return "", false
	}
	return s, true
}

func audienceContains(aud any, clientID string) bool {
	switch a := aud.(type) {
	case string:
		return a == clientID
	case []any:
		found := false
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return false
			}
			found = found || s == clientID
		}
		return found
	}
	return false
}
