package umaclient

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseChallenge: any input either yields a challenge that satisfies
// every rule, or a *ChallengeError of one of the two kinds; nothing
// panics. An accepted challenge is stable: formatting it back and parsing
// again gives the same value.
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`UMA realm="example", as_uri="https://as.example.com", ticket="016f84e8"`,
		`UMA realm="rs",as_uri="http://127.0.0.1:8080",error="insufficient_scope",ticket="t"`,
		`Bearer realm="x", UMA as_uri="https://a.example", ticket=t, Basic abc==`,
		`UMA as_uri="https://a.example", ticket="a\"b"`,
		`UMA as_uri="https://a.example", ticket="a", ticket="b"`,
		`uma AS_URI = "http://[::1]:1/" , TICKET = x`,
		`,,UMA`, `UMA dGlja2V0==`, "UMA as_uri=\"https://a\x00\", ticket=\"t\"",
	} {
		f.Add(s, "")
	}
	f.Add(`Bearer`, `UMA as_uri="https://a.example", ticket="t"`)
	f.Fuzz(func(t *testing.T, a, b string) {
		values := []string{a}
		if b != "" {
			values = append(values, b)
		}
		ch, err := parseChallenges(values)
		if err != nil {
			var ce *ChallengeError
			if !errors.As(err, &ce) || !(errors.Is(err, ErrNoChallenge) || errors.Is(err, ErrMalformedChallenge)) {
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		if ch.Ticket == "" || strings.ContainsAny(ch.Ticket, " \t") {
			t.Fatalf("bad ticket accepted: %q", ch.Ticket)
		}
		if err := checkIssuerURI(ch.ASURI); err != nil {
			t.Fatalf("bad as_uri accepted: %q", ch.ASURI)
		}
		for _, v := range []string{ch.Realm, ch.ASURI, ch.Ticket} {
			if len(v) > MaxChallengeParamLen {
				t.Fatalf("overlong value accepted")
			}
			for i := 0; i < len(v); i++ {
				if c := v[i]; c != '\t' && (c < 0x20 || c >= 0x7f) {
					t.Fatalf("control or non-ASCII byte accepted: %q", v)
				}
			}
		}
		again, err := parseChallenges([]string{`UMA realm="` + quote(ch.Realm) + `", as_uri="` + quote(ch.ASURI) + `", ticket="` + quote(ch.Ticket) + `"`})
		if err != nil || *again != *ch {
			t.Fatalf("round trip: %v %+v %+v", err, again, ch)
		}
	})
}

func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
