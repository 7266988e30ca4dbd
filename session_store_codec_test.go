package oxd

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestSessionCodecRoundTrip: the compact codec gives back the deadline and
// every value, the user (tokens included) and the application's own values
// alike, and is smaller than scs's gob encoding of the same session.
func TestSessionCodecRoundTrip(t *testing.T) {
	now := time.Now().Round(0)
	deadline := now.Add(time.Hour)
	u := benchSessionUser(now)
	rpt := &umaSessionRPT{Subject: "alice", RPT: "rpt-value", Obtained: now}
	for name, values := range map[string]map[string]any{
		"user alone":        {sessionKeyUser: u},
		"user and others":   {sessionKeyUser: u, "app.cart": "3 items", "app.n": 42, sessionKeyUMARPT: rpt},
		"others alone":      {"app.cart": "3 items"},
		"empty":             {},
		"legacy pending":    {sessionKeyUser: u, sessionKeyPending: pendingLogins{{State: "s", ReturnTo: "/a", Created: now}}},
		"user under no key": {"elsewhere": u},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := sessionCodec{}.Encode(deadline, values)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != sessionCodecMagic {
				t.Fatalf("first byte %#x", b[0])
			}
			gd, gv, err := sessionCodec{}.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !gd.Equal(deadline) {
				t.Fatalf("deadline %v, want %v", gd, deadline)
			}
			if len(gv) != len(values) {
				t.Fatalf("%d values, want %d: %v", len(gv), len(values), gv)
			}
			for k, v := range values {
				switch want := v.(type) {
				case *User:
					got, ok := gv[k].(*User)
					if !ok {
						t.Fatalf("%s: %T", k, gv[k])
					}
					requireSameUser(t, want, got)
				case *umaSessionRPT, pendingLogins:
					if !reflect.DeepEqual(gv[k], v) {
						t.Fatalf("%s = %#v, want %#v", k, gv[k], v)
					}
				default:
					if gv[k] != v {
						t.Fatalf("%s = %v, want %v", k, gv[k], v)
					}
				}
			}
			g, err := scs.GobCodec{}.Encode(deadline, values)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("compact %d bytes, gob %d bytes", len(b), len(g))
			if len(values) > 0 && len(b) >= len(g) {
				t.Fatalf("compact encoding (%d bytes) not smaller than gob (%d)", len(b), len(g))
			}
		})
	}
}

// TestSessionCodecReadsGob: sessions written by scs's GobCodec (every
// version before the compact codec) decode unchanged; with GobSessions the
// codec writes what GobCodec reads (replicas of an older version).
func TestSessionCodecReadsGob(t *testing.T) {
	now := time.Now().Round(0)
	u := benchSessionUser(now)
	values := map[string]any{sessionKeyUser: u, "app": "x"}
	g, err := scs.GobCodec{}.Encode(now.Add(time.Hour), values)
	if err != nil {
		t.Fatal(err)
	}
	d, v, err := sessionCodec{}.Decode(g)
	if err != nil || !d.Equal(now.Add(time.Hour)) || v["app"] != "x" {
		t.Fatalf("%v %v %v", err, d, v)
	}
	requireSameUser(t, u, v[sessionKeyUser].(*User))

	old, err := sessionCodec{writeGob: true}.Encode(now.Add(time.Hour), values)
	if err != nil {
		t.Fatal(err)
	}
	_, v, err = scs.GobCodec{}.Decode(old)
	if err != nil {
		t.Fatalf("GobSessions wrote what GobCodec cannot read: %v", err)
	}
	requireSameUser(t, u, v[sessionKeyUser].(*User))
}

// TestSessionCodecRefusesGarbage: a truncated, extended or altered
// encoding is an error (scs then answers with its ErrorFunc), never a
// panic or a session with made-up content.
func TestSessionCodecRefusesGarbage(t *testing.T) {
	u := benchSessionUser(time.Now().Round(0))
	b, err := sessionCodec{}.Encode(time.Now().Add(time.Hour), map[string]any{sessionKeyUser: u})
	if err != nil {
		t.Fatal(err)
	}
	bad := [][]byte{
		nil, {}, {sessionCodecMagic}, {sessionCodecMagic, 2}, {sessionCodecMagic, sessionCodecVersion},
		b[:len(b)-1], b[:3], append(bytes.Clone(b), 0xFF), // a trailing byte is a gob stream that does not decode
	}
	v := bytes.Clone(b)
	v[1] = 9 // unknown version
	bad = append(bad, v)
	for i, x := range bad {
		if _, vals, err := (sessionCodec{}).Decode(x); err == nil {
			t.Fatalf("case %d (%x): decoded %v", i, x, vals)
		}
	}
}

// FuzzSessionCodecDecode: no input panics; what decodes re-encodes to
// something that decodes to the same user.
func FuzzSessionCodecDecode(f *testing.F) {
	u := benchSessionUser(time.Unix(1800000000, 0))
	b, _ := sessionCodec{}.Encode(time.Unix(1800003600, 0), map[string]any{sessionKeyUser: u})
	f.Add(b)
	b, _ = sessionCodec{}.Encode(time.Unix(1800003600, 0), map[string]any{sessionKeyUser: u, "k": "v"})
	f.Add(b)
	g, _ := scs.GobCodec{}.Encode(time.Unix(1800003600, 0), map[string]any{sessionKeyUser: u})
	f.Add(g)
	f.Fuzz(func(t *testing.T, in []byte) {
		d, v, err := sessionCodec{}.Decode(in)
		if err != nil {
			return
		}
		out, err := sessionCodec{}.Encode(d, v)
		if err != nil {
			return // a gob value the fuzzer made up may not encode again
		}
		d2, v2, err := sessionCodec{}.Decode(out)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !d2.Equal(d) || len(v2) != len(v) {
			t.Fatalf("re-encoding changed the session: %v %v / %v %v", d, v, d2, v2)
		}
		if u, ok := v[sessionKeyUser].(*User); ok {
			requireSameUser(t, u, v2[sessionKeyUser].(*User))
		}
	})
}

// TestNewInstallsSessionCodec: New puts the compact codec in place of
// scs's default, keeps a codec the application chose, and with
// GobSessions writes gob; a session stored with gob before the upgrade is
// still logged in after it, through the real middleware and memstore.
func TestNewInstallsSessionCodec(t *testing.T) {
	newAuth := func(sm *scs.SessionManager, cfg Config) *Auth {
		t.Helper()
		cfg.OxdID = "id"
		a, err := New(oxdclient.New(newFakeOxd(), oxdclient.Config{}), sm, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	sm := scs.New()
	newAuth(sm, Config{})
	if _, ok := sm.Codec.(sessionCodec); !ok || sm.Codec.(sessionCodec).writeGob {
		t.Fatalf("codec %#v", sm.Codec)
	}
	sm = scs.New()
	newAuth(sm, Config{GobSessions: true})
	if c, ok := sm.Codec.(sessionCodec); !ok || !c.writeGob {
		t.Fatalf("GobSessions: codec %#v", sm.Codec)
	}
	// What the previous release reads: gob, the User in version 2.
	ub, _ := benchSessionUser(time.Now()).GobEncode()
	g, err := sm.Codec.Encode(time.Now().Add(time.Hour), map[string]any{sessionKeyUser: benchSessionUser(time.Now())})
	if err != nil || ub[0] != userEncodingV2 || g[0] == sessionCodecMagic {
		t.Fatalf("GobSessions wrote User version %d, session first byte %#x (%v)", ub[0], g[0], err)
	}
	if _, _, err := (scs.GobCodec{}).Decode(g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { previousUserEncoding.Store(false) })
	// Sticky for the process: a later New without GobSessions does not
	// switch the previous encoding off under the Auth that asked for it.
	sm = scs.New()
	newAuth(sm, Config{})
	if ub, _ := benchSessionUser(time.Now()).GobEncode(); ub[0] != userEncodingV2 {
		t.Fatalf("a later New without GobSessions: User version %d", ub[0])
	}
	previousUserEncoding.Store(false) // the process restarted
	sm = scs.New()
	newAuth(sm, Config{})
	if ub, _ := benchSessionUser(time.Now()).GobEncode(); ub[0] != userEncodingVersion {
		t.Fatalf("without GobSessions: User version %d", ub[0])
	}
	type ownCodec struct{ scs.GobCodec }
	sm = scs.New()
	sm.Codec = ownCodec{}
	newAuth(sm, Config{})
	if _, ok := sm.Codec.(ownCodec); !ok {
		t.Fatalf("the application's codec was replaced by %#v", sm.Codec)
	}

	// Upgrade: a session written with gob (the store shared with a replica
	// of the previous version) is logged in through the new codec, and
	// what the new codec writes after a change is read back.
	store := memstore.NewWithCleanupInterval(0) // no cleanup goroutine (its StopCleanup races)
	old := scs.New()
	old.Store = store
	token := storeUserSession(t, old)
	raw, _, _ := store.Find(token)
	if raw[0] == sessionCodecMagic {
		t.Fatal("the old replica wrote the compact encoding")
	}

	sm = scs.New()
	sm.Store = store
	a := newAuth(sm, Config{})
	h := sm.LoadAndSave(a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		sm.Put(r.Context(), "app.visits", 1) // a change: the session is written again
		_, _ = w.Write([]byte(u.Subject))
	})))
	for i := range 2 {
		req := httptest.NewRequest(http.MethodGet, "https://app.example/private", nil)
		req.AddCookie(&http.Cookie{Name: sm.Cookie.Name, Value: token})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.String() != "alice" {
			t.Fatalf("request %d: %d %q", i, rec.Code, rec.Body.String())
		}
		raw, _, _ := store.Find(token)
		if raw[0] != sessionCodecMagic {
			t.Fatalf("request %d: the session was not rewritten in the compact encoding", i)
		}
	}
}
