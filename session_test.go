package oxd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/oxdclient"
)

func testUser() *User {
	now := time.Now().Round(0)
	u := &User{
		Subject:         "alice",
		Claims:          oxdclient.Claims{"sub": json.RawMessage(`["alice"]`), "email": json.RawMessage(`["alice@example.test"]`), "name": json.RawMessage(`"Alice"`)},
		IDTokenClaims:   oxdclient.Claims{"sub": json.RawMessage(`["alice"]`), "acr": json.RawMessage(`["otp"]`)},
		AuthenticatedAt: now,
		accessToken:     "AT-secret-value",
		refreshToken:    "RT-secret-value",
		idToken:         "IDT-secret-value",
	}
	u.setExpiry(now, 600, time.Minute)
	return u
}

// TestUserStoredThroughScsCodec: a User survives the scs gob codec (the
// types are registered by the package: no "type not registered for
// interface" error), tokens included.
func TestUserStoredThroughScsCodec(t *testing.T) {
	u := testUser()
	pl := pendingLogins{{State: "s1", ReturnTo: "/a", Created: time.Now().Round(0)}}
	b, err := scs.GobCodec{}.Encode(time.Now(), map[string]any{sessionKeyUser: u, sessionKeyPending: pl, "app": "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, vals, err := scs.GobCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := vals[sessionKeyUser].(*User)
	if !ok {
		t.Fatalf("user decoded as %T", vals[sessionKeyUser])
	}
	if got.Subject != u.Subject || got.accessToken != u.accessToken || got.refreshToken != u.refreshToken || got.idToken != u.idToken ||
		!got.AccessTokenExpiry.Equal(u.AccessTokenExpiry) || !got.refreshAt.Equal(u.refreshAt) || !got.AuthenticatedAt.Equal(u.AuthenticatedAt) ||
		got.Claim("email") != "alice@example.test" || got.Claim("name") != "Alice" || got.Claim("acr") != "otp" || len(got.Claims) != 3 {
		t.Fatalf("round trip: %#v", got)
	}
	gpl, ok := vals[sessionKeyPending].(pendingLogins)
	if !ok || len(gpl) != 1 || gpl[0] != pl[0] {
		t.Fatalf("pending: %#v", vals[sessionKeyPending])
	}
	// Zero times stay zero.
	z := &User{Subject: "z"}
	zb, _ := z.GobEncode()
	var zu User
	if err := zu.GobDecode(zb); err != nil || !zu.AccessTokenExpiry.IsZero() || zu.Claims != nil {
		t.Fatalf("zero user: %v %#v", err, zu)
	}
}

// TestUserDoesNotPrintTokens: fmt (every verb), encoding/json and slog
// never show a token of the user.
func TestUserDoesNotPrintTokens(t *testing.T) {
	u := testUser()
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, u), fmt.Sprintf(verb, *u))
	}
	j, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var buf bytes.Buffer
	lg := slog.New(slog.NewJSONHandler(&buf, nil))
	lg.Info("user", "u", u, "v", *u)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("user", "u", u)
	outs = append(outs, buf.String())
	for _, o := range outs {
		for _, s := range []string{"AT-secret", "RT-secret", "IDT-secret"} {
			if strings.Contains(o, s) {
				t.Errorf("%q leaks %s", o, s)
			}
		}
	}
	if !strings.Contains(outs[0], "alice") || !strings.Contains(buf.String(), "alice") {
		t.Errorf("subject missing: %q", outs[0])
	}
	if u.AccessToken().Reveal() != "AT-secret-value" {
		t.Fatal("AccessToken accessor")
	}
}

func TestUserGobDecodeRejectsGarbage(t *testing.T) {
	good, _ := testUser().GobEncode()
	for name, b := range map[string][]byte{
		"empty":            nil,
		"bad version":      append([]byte{9}, good[1:]...),
		"truncated":        good[:len(good)-3],
		"trailing":         append(append([]byte(nil), good...), 0),
		"huge claim count": {1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		var u User
		if err := u.GobDecode(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzUserGobDecode(f *testing.F) {
	good, _ := testUser().GobEncode()
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var u User
		if err := u.GobDecode(b); err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes equally.
		b2, _ := u.GobEncode()
		var u2 User
		if err := u2.GobDecode(b2); err != nil || u2.Subject != u.Subject || u2.accessToken != u.accessToken || len(u2.Claims) != len(u.Claims) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func TestSetExpiry(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	u := &User{refreshToken: "r"}
	u.setExpiry(now, 600, time.Minute)
	if !u.AccessTokenExpiry.Equal(now.Add(10*time.Minute)) || !u.refreshAt.Equal(now.Add(9*time.Minute)) {
		t.Fatalf("long-lived: %v %v", u.AccessTokenExpiry, u.refreshAt)
	}
	u.setExpiry(now, 60, time.Minute) // lifetime shorter than 2×lead: refresh at half-life
	if !u.refreshAt.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("short-lived: %v", u.refreshAt)
	}
	u.setExpiry(now, -1, time.Minute)
	if !u.AccessTokenExpiry.IsZero() || u.refreshDue(now.Add(time.Hour)) {
		t.Fatal("unknown expiry")
	}
	u2 := &User{}
	u2.setExpiry(now, 600, time.Minute)
	if u2.refreshDue(now.Add(time.Hour)) {
		t.Fatal("refresh without refresh token")
	}
}

func TestUserFromOutsideRequireLogin(t *testing.T) {
	if u, ok := UserFrom(context.Background()); ok || u != nil {
		t.Fatal("user in an empty context")
	}
	if _, ok := UserFrom(withUser(context.Background(), nil)); ok {
		t.Fatal("nil user reported")
	}
}
