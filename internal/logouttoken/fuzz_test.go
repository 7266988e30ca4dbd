package logouttoken

import (
	"errors"
	"strings"
	"testing"
)

// FuzzValidate: any input is refused (nothing unsigned by the OP's key is
// accepted) without a panic, with an error that wraps ErrInvalidToken and
// holds no part of the input.
func FuzzValidate(f *testing.F) {
	k := newRSAKey("k1", 0)
	op := newTestOP(f, k)
	good := sign(f, k, "JWT", op.claims())
	p := strings.Split(good, ".")
	for _, s := range []string{"", ".", "..", good[:len(good)-3] + "abc", p[0] + "." + p[1] + ".", "eyJhbGciOiJub25lIn0." + p[1] + ".", p[0] + "." + p[0] + "." + p[2]} {
		f.Add(s)
	}
	v, err := New(Config{Issuer: op.issuer, ClientID: clientID, Replay: failingReplay{}, HTTPClient: op.srv.Client()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Validate(bg, raw)
		if err == nil {
			t.Fatalf("accepted %+v", c)
		}
		if errors.Is(err, ErrReplayCheck) {
			t.Fatalf("a token without a valid signature reached the replay check")
		}
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("error %v is not a token fault", err)
		}
		if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
			t.Fatalf("error holds the input")
		}
	})
}
