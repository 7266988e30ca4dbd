package oxdserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oxdgo/oxd/internal/jwtclaims"
	"github.com/oxdgo/oxd/oxdclient"
)

// idTokenAlgs are the only signature algorithms accepted for id_tokens.
var idTokenAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// anyAlgs is used to tell "well-formed but with a refused algorithm" from
// "not a JWS at all".
var anyAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.HS256, jose.HS384, jose.HS512,
}

// jwks returns the verification keys published at uri. force refetches.
func (e *Engine) jwks(ctx context.Context, uri string, force bool) ([]jose.JSONWebKey, error) {
	v, err := e.cachedFetch(ctx, "jwks "+uri, maxAge{e, int64(e.cfg.JWKSTTL)}, force, func(ctx context.Context) (any, int, error) {
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
		}
		size, err := e.sendJSONSized(ctx, opRequest{endpoint: "jwks", method: http.MethodGet, url: uri}, &doc)
		e.tel.jwksRefreshed(ctx, err)
		if err != nil {
			return nil, 0, err
		}
		keys := make([]jose.JSONWebKey, 0, len(doc.Keys))
		for _, raw := range doc.Keys {
			var k jose.JSONWebKey
			if err := k.UnmarshalJSON(raw); err != nil {
				continue // a key type we do not know: skip it, not the set
			}
			if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
				continue
			}
			keys = append(keys, k)
		}
		return keys, size, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]jose.JSONWebKey), nil
}

// idTokenCheck is what an id_token must satisfy.
type idTokenCheck struct {
	issuer      string
	jwksURI     string
	clientID    string
	accessToken string
}

// verifiedIDToken is a validated id_token's claims (numbers kept as
// json.Number).
type verifiedIDToken struct {
	claims map[string]any
	nonce  string
}

// validateIDToken checks signature (RS256/ES256 with a JWKS key, one
// refetch for an unknown kid), iss, aud/azp, exp, iat and at_hash. The
// nonce is returned for the caller to check against the one it issued.
// Errors are oxd answers with the specific 3.1.4 codes.
func (e *Engine) validateIDToken(ctx context.Context, raw string, chk idTokenCheck) (*verifiedIDToken, error) {
	jws, err := jose.ParseSignedCompact(raw, idTokenAlgs)
	if err != nil {
		if _, err2 := jose.ParseSignedCompact(raw, anyAlgs); err2 == nil {
			return nil, oxdErr(oxdclient.CodeInvalidIDTokenBadSignature, descBadSignature)
		}
		return nil, oxdErr(oxdclient.CodeInvalidIDToken, descInvalidIDToken)
	}
	if len(jws.Signatures) != 1 {
		return nil, oxdErr(oxdclient.CodeInvalidIDToken, descInvalidIDToken)
	}
	hdr := jws.Signatures[0].Header
	payload, err := e.verifyWithJWKS(ctx, jws, hdr, chk.jwksURI)
	if err != nil {
		return nil, err
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, oxdErr(oxdclient.CodeInvalidIDToken, descInvalidIDToken)
	}
	// OIDC Core §3.1.3.7: iss exactly equals the discovered issuer.
	if iss, _ := claims["iss"].(string); iss == "" || iss != chk.issuer {
		return nil, oxdErr(oxdclient.CodeInvalidIDTokenBadIssuer, descBadIssuer)
	}
	if !audienceOK(claims, chk.clientID) {
		return nil, oxdErr(oxdclient.CodeInvalidIDTokenBadAudience, descBadAudience)
	}
	now := e.now()
	exp, ok := jwtclaims.NumericDate(claims["exp"])
	if !ok {
		return nil, oxdErr(oxdclient.CodeInvalidIDToken, descInvalidIDToken)
	}
	if !now.Before(exp.Add(e.cfg.ClockSkew)) {
		return nil, oxdErr(oxdclient.CodeInvalidIDTokenExpired, descExpired)
	}
	iat, ok := jwtclaims.NumericDate(claims["iat"])
	if !ok || iat.After(now.Add(e.cfg.ClockSkew)) || exp.Before(iat) {
		return nil, oxdErr(oxdclient.CodeInvalidIDToken, descInvalidIDToken)
	}
	if h, present := claims["at_hash"]; present {
		hs, _ := h.(string)
		if chk.accessToken == "" || !atHashOK(hs, chk.accessToken, jose.SignatureAlgorithm(hdr.Algorithm)) {
			return nil, oxdErr(oxdclient.CodeInvalidAccessTokenBadHash, descBadAtHash)
		}
	}
	nonce, _ := claims["nonce"].(string)
	return &verifiedIDToken{claims: claims, nonce: nonce}, nil
}

// verifyWithJWKS verifies the signature with the OP's key named by kid (or
// any compatible key when the header has no kid). An unknown kid, or no
// key that verifies, triggers one JWKS refetch (key rotation).
func (e *Engine) verifyWithJWKS(ctx context.Context, jws *jose.JSONWebSignature, hdr jose.Header, jwksURI string) ([]byte, error) {
	for attempt := 0; attempt < 2; attempt++ {
		keys, err := e.jwks(ctx, jwksURI, attempt > 0)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if hdr.KeyID != "" && k.KeyID != hdr.KeyID {
				continue
			}
			if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
				continue
			}
			if payload, err := jws.Verify(k.Key); err == nil {
				return payload, nil
			}
			if hdr.KeyID != "" {
				// The named key does not verify: a forgery, not rotation.
				return nil, oxdErr(oxdclient.CodeInvalidIDTokenBadSignature, descBadSignature)
			}
		}
	}
	return nil, oxdErr(oxdclient.CodeInvalidIDTokenBadSignature, descBadSignature)
}

func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, err
	}
	if claims == nil {
		return nil, errors.New("claims are not an object")
	}
	return claims, nil
}

// audienceOK: aud (a string or an array) contains clientID; with several
// audiences, azp must be clientID (OIDC Core §3.1.3.7).
func audienceOK(claims map[string]any, clientID string) bool {
	var auds []string
	switch a := claims["aud"].(type) {
	case string:
		auds = []string{a}
	case []any:
		for _, v := range a {
			s, ok := v.(string)
			if !ok {
				return false
			}
			auds = append(auds, s)
		}
	default:
		return false
	}
	found := false
	for _, a := range auds {
		if a == clientID {
			found = true
		}
	}
	if !found {
		return false
	}
	if azp, present := claims["azp"]; present || len(auds) > 1 {
		s, _ := azp.(string)
		return s == clientID
	}
	return true
}

// atHashOK checks at_hash (OIDC Core §3.1.3.6): the left half of the hash
// of the access token, with the hash of the signature algorithm (SHA-256
// for RS256 and ES256, the only ones accepted).
func atHashOK(atHash, accessToken string, alg jose.SignatureAlgorithm) bool {
	if alg != jose.RS256 && alg != jose.ES256 {
		return false
	}
	sum := sha256.Sum256([]byte(accessToken))
	want := base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	return subtle.ConstantTimeCompare([]byte(strings.TrimRight(atHash, "=")), []byte(want)) == 1
}

// claimsAsStrings converts claims to the 3.x wire shape: every claim an
// array of strings (numbers and booleans formatted, objects as JSON, array
// elements one by one). Null claims are left out.
func claimsAsStrings(claims map[string]any) map[string][]string {
	out := make(map[string][]string, len(claims))
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := claims[k]
		if v == nil {
			continue
		}
		if arr, ok := v.([]any); ok {
			vals := make([]string, 0, len(arr))
			for _, x := range arr {
				if x != nil {
					vals = append(vals, scalarString(x))
				}
			}
			out[k] = vals
			continue
		}
		out[k] = []string{scalarString(v)}
	}
	return out
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	default:
		b, err := feMarshalJSON(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}
