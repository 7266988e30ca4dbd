package oxd

import (
	"encoding/base64"
	"strings"

	"github.com/oxdgo/oxd/oxdclient"
)

// The ID token in the session encoding (version 3): a JWS in compact form
// is kept as its three segments base64url-decoded, which is a quarter
// smaller, and is rebuilt byte for byte when the session is loaded.

// jwsB64 is base64url without padding that refuses non-canonical input
// (set padding bits); appendIDToken also compares the re-encoding, since
// the decoder skips line breaks.
var jwsB64 = base64.RawURLEncoding.Strict()

// appendIDToken appends the ID token in its form (idTokenJWS when the
// token is a JWS compact serialization whose segments re-encode to exactly
// the same text, else idTokenAsIs) and returns the decoded payload for the
// JWS form (nil otherwise).
func appendIDToken(b []byte, tok string) ([]byte, []byte) {
	segs, ok := jwsSegments(tok)
	if !ok {
		b = append(b, idTokenAsIs)
		return appendString(b, tok), nil
	}
	b = append(b, idTokenJWS)
	for _, s := range segs {
		b = appendString(b, string(s))
	}
	return b, segs[1]
}

// jwsSegments decodes the three segments of a JWS compact serialization;
// ok is false for anything that would not be rebuilt exactly by joinJWS.
func jwsSegments(tok string) ([3][]byte, bool) {
	var out [3][]byte
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return out, false
	}
	for i, p := range parts {
		d, err := jwsB64.DecodeString(p)
		if err != nil || jwsB64.EncodeToString(d) != p {
			return out, false
		}
		out[i] = d
	}
	return out, true
}

// jwsParts are the decoded segments of a JWS compact serialization that
// joinJWS turns back into exactly the text they were decoded from. They
// are not modified after decoding.
type jwsParts struct{ header, payload, signature []byte }

// hasIDToken reports whether the user has an ID token, without joining
// its segments.
func (u *User) hasIDToken() bool { return u.idToken != "" || u.idTokenJWS != nil }

// idTokenText returns the user's ID token ("" when there is none).
func (u *User) idTokenText() oxdclient.Secret {
	if j := u.idTokenJWS; j != nil {
		return oxdclient.Secret(joinJWS(j.header, j.payload, j.signature))
	}
	return u.idToken
}

// joinJWS is the compact serialization of the decoded segments.
func joinJWS(h, p, sig []byte) string {
	n := jwsB64.EncodedLen(len(h)) + jwsB64.EncodedLen(len(p)) + jwsB64.EncodedLen(len(sig)) + 2
	b := make([]byte, 0, n)
	b = jwsB64.AppendEncode(b, h)
	b = append(b, '.')
	b = jwsB64.AppendEncode(b, p)
	b = append(b, '.')
	b = jwsB64.AppendEncode(b, sig)
	return string(b)
}
