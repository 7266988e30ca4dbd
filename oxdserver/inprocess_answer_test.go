package oxdserver

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/oxdgo/oxd/oxdclient"
)

// viaJSON is what the in-process transport gave before answerInto: the
// answer encoded and decoded into the client's result.
func viaJSON[R any](t *testing.T, data any) *R {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	var r R
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// checkAnswerInto: answerInto fills exactly what the JSON round trip
// fills, or leaves the answer to it.
func checkAnswerInto(t *testing.T, a tokensByCodeAnswer, u userInfoAnswer) {
	t.Helper()
	var tok oxdclient.GetTokensByCodeResponse
	if answerInto(a, &tok) {
		if want := viaJSON[oxdclient.GetTokensByCodeResponse](t, a); !reflect.DeepEqual(&tok, want) {
			t.Fatalf("get_tokens_by_code: direct %#v, JSON %#v", tok, *want)
		}
	}
	var ui oxdclient.GetUserInfoResponse
	if answerInto(u, &ui) {
		if want := viaJSON[oxdclient.GetUserInfoResponse](t, u); !reflect.DeepEqual(&ui, want) {
			t.Fatalf("get_user_info: direct %#v, JSON %#v", ui, *want)
		}
	}
}

// TestAnswerIntoMatchesJSON covers nulls, empty and nil claim maps and
// arrays, values json.Marshal escapes (HTML characters, quotes, control
// characters, U+2028) and strings that are not valid UTF-8.
func TestAnswerIntoMatchesJSON(t *testing.T) {
	claimSets := []map[string][]string{
		nil, {}, {"sub": {"alice"}, "aud": {"c1", "c2"}, "email_verified": {"true"}, "exp": {"1900000000"}},
		{"empty": {}, "nil": nil, "blank": {""}},
		{"html": {"<a href=\"x\">&amp;</a>"}, "ctl": {"a\tb\x00"}, "ls": {"x\u2028y"}, "uni": {"日本 é"}, "del": {"\x7f"}},
		{"bad": {"\xff\xfe"}}, {"\xffkey": {"v"}}, {"url": {"https://op.example/?a=1&b=2"}}, {"lt": {"a<b"}}, {"gt": {"a>b"}}, {"amp": {"a&b"}}, {"q": {"a\"b"}}, {"bs": {"a\\b"}},
	}
	for i, c := range claimSets {
		for _, tokStr := range []nstr{"", "at-0123", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "\xff", "a<b>&"} {
			checkAnswerInto(t, tokensByCodeAnswer{AccessToken: tokStr, ExpiresIn: int64(i) - 1, IDToken: "id." + tokStr, RefreshToken: tokStr, IDTokenClaims: c},
				userInfoAnswer{Claims: c, AccessToken: tokStr, RefreshToken: ""})
		}
	}
	// The common answer takes the direct path.
	var tok oxdclient.GetTokensByCodeResponse
	if !answerInto(tokensByCodeAnswer{AccessToken: "at", IDToken: "a.b.c", IDTokenClaims: claimSets[2]}, &tok) || tok.IDTokenClaims.String("sub") != "alice" {
		t.Fatal("a plain get_tokens_by_code answer went through JSON")
	}
	var ui oxdclient.GetUserInfoResponse
	if !answerInto(userInfoAnswer{Claims: claimSets[4]}, &ui) || ui.Claims.String("html") != "<a href=\"x\">&amp;</a>" {
		t.Fatal("a get_user_info answer with escaped claims went through JSON")
	}
	// Other answers and result types are left to JSON.
	if answerInto(tokensByCodeAnswer{}, &ui) || answerInto(userInfoAnswer{}, &tok) || answerInto(logoutAnswer{}, &oxdclient.GetLogoutURIResponse{}) {
		t.Fatal("answerInto filled a result of another type")
	}
}

func FuzzAnswerInto(f *testing.F) {
	f.Add("alice", "c1", "at", "<&>", "x\u2028")
	f.Add("\xff", "", "", "\"", "\\")
	f.Fuzz(func(t *testing.T, k, v1, tok, v2, v3 string) {
		c := map[string][]string{k: {v1, v2}, "x": {v3}, "n": nil}
		checkAnswerInto(t, tokensByCodeAnswer{AccessToken: nstr(tok), IDToken: nstr(v1), RefreshToken: nstr(v3), IDTokenClaims: c},
			userInfoAnswer{Claims: c, AccessToken: nstr(tok)})
	})
}
