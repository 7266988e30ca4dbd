package oxdserver

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/oxdgo/oxd/oxdclient"
)

// The in-process transport hands the engine's answer to the client through
// a JSON round trip (Engine.do), so that an in-process client reads exactly
// what a socket client would decode. For the two answers of every login,
// get_tokens_by_code and get_user_info, answerInto fills the client's
// result directly with the same values that round trip gives (the equality
// is a test, TestAnswerIntoMatchesJSON, and a fuzz target): a login then
// skips an encoding and a decoding of its ID token, its tokens and its
// claims twice.

// answerInto fills result from data when they are the answer of
// get_tokens_by_code or get_user_info and the client's result type for it,
// and reports whether it did; any other pair, or a value the round trip
// would change (a string that is not valid UTF-8), is left to JSON.
func answerInto(data, result any) bool {
	switch a := data.(type) {
	case tokensByCodeAnswer:
		r, ok := result.(*oxdclient.GetTokensByCodeResponse)
		if !ok || !validUTF8(a.AccessToken, a.IDToken, a.RefreshToken) {
			return false
		}
		claims, ok := rawClaims(a.IDTokenClaims)
		if !ok {
			return false
		}
		*r = oxdclient.GetTokensByCodeResponse{
			AccessToken: oxdclient.Secret(a.AccessToken), ExpiresIn: a.ExpiresIn, IDToken: oxdclient.Secret(a.IDToken),
			RefreshToken: oxdclient.Secret(a.RefreshToken), IDTokenClaims: claims,
		}
		return true
	case userInfoAnswer:
		r, ok := result.(*oxdclient.GetUserInfoResponse)
		if !ok || !validUTF8(a.AccessToken, a.RefreshToken) {
			return false
		}
		claims, ok := rawClaims(a.Claims)
		if !ok {
			return false
		}
		*r = oxdclient.GetUserInfoResponse{Claims: claims, RefreshToken: oxdclient.Secret(a.RefreshToken), AccessToken: oxdclient.Secret(a.AccessToken)}
		return true
	}
	return false
}

func validUTF8(s ...nstr) bool {
	for _, v := range s {
		if !utf8.ValidString(string(v)) {
			return false
		}
	}
	return true
}

// rawClaims is m as the JSON round trip gives it to oxdclient.Claims: each
// value as encoding/json writes it (HTML-escaped, as json.Marshal does).
// ok is false for a key that is not valid UTF-8 (the round trip would
// replace its bytes).
func rawClaims(m map[string][]string) (oxdclient.Claims, bool) {
	if m == nil {
		return nil, true
	}
	out := make(oxdclient.Claims, len(m))
	for k, v := range m {
		if !utf8.ValidString(k) {
			return nil, false
		}
		raw, ok := plainStringsJSON(v)
		if !ok {
			var err error
			if raw, err = json.Marshal(v); err != nil {
				return nil, false
			}
		}
		out[k] = raw
	}
	return out, true
}

// plainStringsJSON is v as a JSON array when json.Marshal writes every
// string of it as it is (ASCII without control characters, '"', '\\',
// '<', '>', '&'), as for nearly every claim; ok is false otherwise (and
// for nil, which json.Marshal writes as null).
func plainStringsJSON(v []string) ([]byte, bool) {
	if v == nil {
		return nil, false
	}
	n := 2
	for _, s := range v {
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c < 0x20, c >= utf8.RuneSelf, c == '"', c == '\\', c == '<', c == '>', c == '&':
				return nil, false
			}
		}
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	return append(b, ']'), true
}
