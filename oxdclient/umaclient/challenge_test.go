package umaclient

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func hdr(values ...string) http.Header {
	h := http.Header{}
	for _, v := range values {
		h.Add("WWW-Authenticate", v)
	}
	return h
}

const goodTicket = "016f84e8-f9b9-11e0-bd6f-0021cc6004de"

func TestParseChallengeAccepts(t *testing.T) {
	want := Challenge{Realm: "example", ASURI: "https://as.example.com", Ticket: goodTicket}
	cases := []struct {
		name   string
		values []string
		want   Challenge
	}{
		{"spec example", []string{`UMA realm="example", as_uri="https://as.example.com", ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de"`}, want},
		{"oxd form: no spaces, error param", []string{`UMA realm="example",as_uri="https://as.example.com",error="insufficient_scope",ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de"`}, want},
		{"scheme and names case-insensitive", []string{`uMa REALM="example", As_Uri="https://as.example.com", TICKET="016f84e8-f9b9-11e0-bd6f-0021cc6004de"`}, want},
		{"token values and BWS", []string{`UMA realm = example , as_uri="https://as.example.com", ticket = 016f84e8-f9b9-11e0-bd6f-0021cc6004de`}, want},
		{"realm optional", []string{`UMA as_uri="https://as.example.com", ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de"`}, Challenge{ASURI: "https://as.example.com", Ticket: goodTicket}},
		{"after other challenges in one value", []string{`Bearer realm="api", error="invalid_token", Basic dXNlcjpwYXNz==, UMA realm="example", as_uri="https://as.example.com", ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de"`}, want},
		{"before another challenge", []string{`UMA realm="example", as_uri="https://as.example.com", ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de", Negotiate`}, want},
		{"several headers", []string{`Bearer`, `Basic realm="x"`, `UMA realm="example", as_uri="https://as.example.com", ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de"`}, want},
		{"empty list elements", []string{`, ,UMA realm="example",, as_uri="https://as.example.com" ,ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de",`}, want},
		{"quoted-pair", []string{`UMA realm="ex\"am\\ple", as_uri="https://as.example.com", ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de"`}, Challenge{Realm: `ex"am\ple`, ASURI: "https://as.example.com", Ticket: goodTicket}},
		{"http on 127.0.0.1", []string{`UMA as_uri="http://127.0.0.1:8080", ticket="t"`}, Challenge{ASURI: "http://127.0.0.1:8080", Ticket: "t"}},
		{"http on localhost", []string{`UMA as_uri="http://LocalHost:1/as", ticket="t"`}, Challenge{ASURI: "http://LocalHost:1/as", Ticket: "t"}},
		{"http on ::1", []string{`UMA as_uri="http://[::1]:9/", ticket="t"`}, Challenge{ASURI: "http://[::1]:9/", Ticket: "t"}},
		{"https with path", []string{`UMA as_uri="https://as.example.com/oxauth", ticket="t"`}, Challenge{ASURI: "https://as.example.com/oxauth", Ticket: "t"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChallenge(hdr(tc.values...))
			if err != nil {
				t.Fatalf("%v", err)
			}
			if *got != tc.want {
				t.Fatalf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestParseChallengeRefuses(t *testing.T) {
	long := strings.Repeat("a", MaxChallengeParamLen+1)
	cases := []struct {
		name   string
		values []string
		kind   error
	}{
		{"no header", nil, ErrNoChallenge},
		{"bearer only", []string{`Bearer realm="x", error="invalid_token"`}, ErrNoChallenge},
		{"scheme prefix is not UMA", []string{`UMA2 as_uri="https://a.example", ticket="t"`}, ErrNoChallenge},
		{"missing ticket", []string{`UMA realm="r", as_uri="https://as.example.com"`}, ErrMalformedChallenge},
		{"missing as_uri", []string{`UMA realm="r", ticket="t"`}, ErrMalformedChallenge},
		{"empty ticket", []string{`UMA as_uri="https://as.example.com", ticket=""`}, ErrMalformedChallenge},
		{"ticket with spaces", []string{`UMA as_uri="https://as.example.com", ticket="a b"`}, ErrMalformedChallenge},
		{"UMA without params", []string{`UMA`}, ErrMalformedChallenge},
		{"UMA with token68", []string{`UMA dGlja2V0==`}, ErrMalformedChallenge},
		{"duplicate ticket", []string{`UMA as_uri="https://as.example.com", ticket="a", ticket="b"`}, ErrMalformedChallenge},
		{"duplicate as_uri differing in case", []string{`UMA as_uri="https://as.example.com", AS_URI="https://evil.example", ticket="a"`}, ErrMalformedChallenge},
		{"two UMA challenges in one value", []string{`UMA as_uri="https://a.example", ticket="a", UMA as_uri="https://b.example", ticket="b"`}, ErrMalformedChallenge},
		{"two UMA challenges in two headers", []string{`UMA as_uri="https://a.example", ticket="a"`, `uma as_uri="https://a.example", ticket="a"`}, ErrMalformedChallenge},
		{"as_uri http on a public host", []string{`UMA as_uri="http://as.example.com", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri http on a name under .localhost", []string{`UMA as_uri="http://evil.localhost", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri http on 0.0.0.0", []string{`UMA as_uri="http://0.0.0.0:8080", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri http on 127.0.0.1.evil", []string{`UMA as_uri="http://127.0.0.1.evil.example", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri relative", []string{`UMA as_uri="/as", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri scheme-relative", []string{`UMA as_uri="//as.example.com", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri javascript", []string{`UMA as_uri="javascript:alert(1)", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri file", []string{`UMA as_uri="file:///etc/passwd", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri userinfo", []string{`UMA as_uri="https://user:pw@as.example.com", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri query", []string{`UMA as_uri="https://as.example.com/?x=1", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri empty query", []string{`UMA as_uri="https://as.example.com/?", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri fragment", []string{`UMA as_uri="https://as.example.com/#f", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri empty fragment", []string{`UMA as_uri="https://as.example.com/#", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri no host", []string{`UMA as_uri="https:///path", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri with space", []string{`UMA as_uri="https://as.example.com/a b", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri empty", []string{`UMA as_uri="", ticket="t"`}, ErrMalformedChallenge},
		{"as_uri unquoted URL", []string{`UMA as_uri=https://as.example.com, ticket="t"`}, ErrMalformedChallenge},
		{"unterminated quote", []string{`UMA as_uri="https://as.example.com, ticket="t`}, ErrMalformedChallenge},
		{"trailing backslash", []string{`UMA as_uri="https://as.example.com", ticket="t\`}, ErrMalformedChallenge},
		{"control character", []string{"UMA as_uri=\"https://as.example.com\", ticket=\"t\x01\""}, ErrMalformedChallenge},
		{"newline (header injection)", []string{"UMA as_uri=\"https://as.example.com\", ticket=\"t\nX: y\""}, ErrMalformedChallenge},
		{"NUL", []string{"UMA as_uri=\"https://as.example.com\x00\", ticket=\"t\""}, ErrMalformedChallenge},
		{"DEL", []string{"UMA as_uri=\"https://as.example.com\", ticket=\"t\x7f\""}, ErrMalformedChallenge},
		{"non-ASCII in a value", []string{`UMA as_uri="https://аs.example.com", ticket="t"`}, ErrMalformedChallenge},
		{"non-ASCII scheme", []string{`ÜMA as_uri="https://as.example.com", ticket="t"`}, ErrMalformedChallenge},
		{"missing comma", []string{`UMA as_uri="https://as.example.com" ticket="t"`}, ErrMalformedChallenge},
		{"missing value", []string{`UMA as_uri=, ticket="t"`}, ErrMalformedChallenge},
		{"garbage after scheme", []string{`UMA;as_uri="https://as.example.com", ticket="t"`}, ErrMalformedChallenge},
		{"tab after scheme", []string{"UMA\tas_uri=\"https://as.example.com\", ticket=\"t\""}, ErrMalformedChallenge},
		{"malformed other header", []string{`Bearer realm="unterminated`, `UMA as_uri="https://as.example.com", ticket="t"`}, ErrMalformedChallenge},
		{"parameter too long", []string{`UMA as_uri="https://as.example.com", ticket="` + long + `"`}, ErrMalformedChallenge},
		{"token value too long", []string{`UMA as_uri="https://as.example.com", ticket=` + long}, ErrMalformedChallenge},
		{"header too long", []string{`UMA as_uri="https://as.example.com", ticket="t"`, strings.Repeat("Bearer, ", MaxChallengeHeaderLen/8+1)}, ErrMalformedChallenge},
		{"too many parameters", []string{`UMA as_uri="https://as.example.com", ticket="t"` + strings.Repeat(`, x="1"`, 1) + `, a=1, b=1, c=1, d=1, e=1, f=1, g=1, h=1, i=1, j=1, k=1, l=1, m=1, n=1`}, ErrMalformedChallenge},
		{"only commas", []string{`,,,`}, ErrNoChallenge},
		{"leading equals", []string{`=UMA`}, ErrMalformedChallenge},
	}
	secretish := []string{"evil.example", "passwd", "alert", goodTicket}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := ParseChallenge(hdr(tc.values...))
			if err == nil {
				t.Fatalf("accepted: %+v", *ch)
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want %v", err, tc.kind)
			}
			var ce *ChallengeError
			if !errors.As(err, &ce) {
				t.Fatalf("not a *ChallengeError: %T", err)
			}
			for _, s := range secretish {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error quotes a value: %v", err)
				}
			}
		})
	}
}

// TestParseChallengeUnknownParamsTolerated: unknown parameters are ignored
// but still count against the bound and must be well-formed.
func TestParseChallengeUnknownParamsTolerated(t *testing.T) {
	v := `UMA as_uri="https://as.example.com", ticket="t", error="insufficient_scope", x-custom=abc`
	ch, err := ParseChallenge(hdr(v))
	if err != nil || ch.Ticket != "t" {
		t.Fatalf("%v %+v", err, ch)
	}
	sixteen := `UMA as_uri="https://as.example.com", ticket="t"` + strings.Repeat(", p=1", 0)
	for i := 0; i < maxParams-2; i++ {
		sixteen += ", p" + string(rune('a'+i)) + "=1"
	}
	if _, err := ParseChallenge(hdr(sixteen)); err != nil {
		t.Fatalf("16 parameters refused: %v", err)
	}
	if _, err := ParseChallenge(hdr(sixteen + ", zz=1")); !errors.Is(err, ErrMalformedChallenge) {
		t.Fatalf("17 parameters accepted: %v", err)
	}
}
