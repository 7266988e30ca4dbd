package oxdclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// siteOxd answers setup_client and register_site from the fixtures and
// counts them; get_rp answers unsupported_operation (as the HTTPS
// extension or an oxd-server before 3.1.4 would).
func siteOxd(t *testing.T, calls *atomic.Int32) Transport {
	return siteOxdWithRP(t, calls, func() string {
		return `{"status":"error","data":{"error":"unsupported_operation","error_description":"x","details":null}}`
	})
}

// siteOxdWithRP is siteOxd with get_rp answered by getRP.
func siteOxdWithRP(t *testing.T, calls *atomic.Int32, getRP func() string) Transport {
	setup := string(readFixture(t, "socket-3.1/setup_client.response.json"))
	register := string(readFixture(t, "socket-3.1/register_site.response.json"))
	return envelopeTransport(func(command string, _ []byte) string {
		switch command {
		case CmdSetupClient:
			calls.Add(1)
			return setup
		case CmdRegisterSite:
			calls.Add(1)
			return register
		case CmdGetRP:
			return getRP()
		}
		return `{"status":"error","data":{"error":"unsupported_operation","error_description":"x","details":null}}`
	})
}

var siteParams = SetupClientParams{SiteParams: SiteParams{
	OPHost: "https://ce-dev3.gluu.org", AuthorizationRedirectURI: "https://client.example.org/cb",
	Scope: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code", "client_credentials"},
}}

// TestEnsureSiteSetsUpOnceAndReuses: the first start runs setup_client and
// writes the file (mode 0600, atomically); the next start reads it and does
// not call oxd.
func TestEnsureSiteSetsUpOnceAndReuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "oxd-site.json")
	var calls atomic.Int32
	c := New(siteOxd(t, &calls), Config{})
	s, err := EnsureSite(context.Background(), c, path, siteParams)
	if err != nil {
		t.Fatal(err)
	}
	if s.OxdID != testOxdID || s.ClientID != "@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387" ||
		s.ClientSecret.Reveal() != "f436b936-03fc-433f-9772-53c2bc9e1c74" || s.SetupClientOxdID != "6F9619FF-8B86-D011-B42D-00CF4FC964FF" ||
		s.ClientIDOfOxdID == "" || s.OPHost != "https://ce-dev3.gluu.org" || s.Command != CmdSetupClient || calls.Load() != 1 {
		t.Fatalf("%+v (%d calls)", s, calls.Load())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	var onDisk map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &onDisk); err != nil || onDisk["oxd_id"] != testOxdID || onDisk["client_secret"] != "f436b936-03fc-433f-9772-53c2bc9e1c74" {
		t.Fatalf("%v %v", err, onDisk)
	}

	again, err := EnsureSite(context.Background(), c, path, siteParams)
	if err != nil || calls.Load() != 1 || *again != *s || again.AuthorizationRedirectURI != siteParams.AuthorizationRedirectURI {
		t.Fatalf("second start: %v, %d calls, %+v", err, calls.Load(), again)
	}
	creds := again.ProtectionCredentials()
	if creds == nil || creds.ClientID != s.ClientID || creds.ClientSecret != s.ClientSecret || creds.OPHost != s.OPHost {
		t.Fatalf("%+v", creds)
	}
	if out := fmt.Sprintf("%v %+v %#v", s, s, *s); strings.Contains(out, "f436b936") || strings.Contains(out, "d836df94") {
		t.Fatal("printing a Site reveals its secrets")
	}
}

// TestEnsureSiteNodeDemoSettings: a settings file with an empty oxd_id
// (the oxd-node demo's initial settings.json) means "not set up yet".
func TestEnsureSiteNodeDemoSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(path, []byte(`{"oxd_id":"","message":"","has_registration_endpoint":true,"conn_type":"local","client_name":"","client_id":"","client_secret":""}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	s, err := EnsureSite(context.Background(), New(siteOxd(t, &calls), Config{}), path, siteParams)
	if err != nil || calls.Load() != 1 || s.OxdID != testOxdID {
		t.Fatalf("%v %d", err, calls.Load())
	}
	if loaded, err := LoadSite(path); err != nil || loaded.OxdID != testOxdID {
		t.Fatalf("%v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after replacing", fi.Mode())
	}
}

// TestEnsureSiteDamagedFileNotReplaced: invalid JSON is an error, oxd is
// not called, the file is left as is, and the error does not quote it.
func TestEnsureSiteDamagedFileNotReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.json")
	damaged := `{"oxd_id":"x","client_secret":"s3cr3t-value` // truncated
	if err := os.WriteFile(path, []byte(damaged), 0o600); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	_, err := EnsureSite(context.Background(), New(siteOxd(t, &calls), Config{}), path, siteParams)
	if err == nil || errors.Is(err, ErrNoSite) || calls.Load() != 0 || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("%v (%d calls)", err, calls.Load())
	}
	if b, _ := os.ReadFile(path); string(b) != damaged {
		t.Fatal("damaged file replaced")
	}
	if err := os.WriteFile(path, []byte(`{"oxd_id":5,"client_secret":"s3cr3t-value"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSite(path); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("%v", err)
	}
}

func TestEnsureSiteSetupFailureWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.json")
	c := New(envelopeTransport(func(string, []byte) string {
		return `{"status":"error","data":{"error":"invalid_op_host","error_description":"Invalid op_host (empty or blank).","details":null}}`
	}), Config{})
	_, err := EnsureSite(context.Background(), c, path, SetupClientParams{})
	if e := asOxdError(t, err); e.Code != CodeInvalidOPHost {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("file written after a failed setup")
	}
	// A directory that does not exist: registered but not saved, said so.
	var calls atomic.Int32
	_, err = EnsureSite(context.Background(), New(siteOxd(t, &calls), Config{}), filepath.Join(t.TempDir(), "missing", "site.json"), siteParams)
	if err == nil || !strings.Contains(err.Error(), testOxdID) || strings.Contains(err.Error(), "f436b936") {
		t.Fatalf("%v", err)
	}
}

func TestEnsureRegisteredSite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.json")
	var calls atomic.Int32
	c := New(siteOxd(t, &calls), Config{})
	p := RegisterSiteParams{SiteParams: SiteParams{OPHost: "https://ce-dev3.gluu.org", ClientID: "pre", ClientSecret: "pre-secret"}}
	s, err := EnsureRegisteredSite(context.Background(), c, path, p)
	if err != nil || s.OxdID != testOxdID || s.Command != CmdRegisterSite || s.ProtectionCredentials() != nil {
		t.Fatalf("%v %+v", err, s)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "pre-secret") {
		t.Fatal("pre-registered secret copied to the site file")
	}
	if _, err := EnsureRegisteredSite(context.Background(), c, path, p); err != nil || calls.Load() != 1 {
		t.Fatalf("%v %d", err, calls.Load())
	}
	if _, err := LoadSite(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, ErrNoSite) {
		t.Fatal(err)
	}
}

// TestLoadSiteMissingNamesTheFix: the "no site" error names the file and
// the call that creates it.
func TestLoadSiteMissingNamesTheFix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oxd-site.json")
	_, err := LoadSite(path)
	if !errors.Is(err, ErrNoSite) || !strings.Contains(err.Error(), "does not exist") ||
		!strings.Contains(err.Error(), `oxdclient.EnsureSite(ctx, client, "`+path+`", params)`) {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(path, []byte(`{"oxd_id":""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSite(path); !errors.Is(err, ErrNoSite) || !strings.Contains(err.Error(), "EnsureSite") {
		t.Fatalf("%v", err)
	}
}

// writeSite writes a site file registered with siteParams, modified by
// edit.
func writeSite(t *testing.T, edit func(*Site)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oxd-site.json")
	s := &Site{OxdID: testOxdID, OPHost: siteParams.OPHost, AuthorizationRedirectURI: siteParams.AuthorizationRedirectURI,
		ClientID: "setup", ClientSecret: "setup-secret-value", Command: CmdSetupClient}
	if edit != nil {
		edit(s)
	}
	if err := SaveSite(path, s); err != nil {
		t.Fatal(err)
	}
	return path
}

func rpNodeAnswer(node map[string]any) func() string {
	return func() string {
		b, _ := json.Marshal(map[string]any{"status": "ok", "data": map[string]any{"node": node}})
		return string(b)
	}
}

// TestEnsureSiteDetectsStaleFile: each way a site file can stop matching
// the parameters gives a *SiteMismatchError that names the file, the
// field and the fix; nothing is registered and the file is kept.
func TestEnsureSiteDetectsStaleFile(t *testing.T) {
	goodNode := map[string]any{"oxd_id": testOxdID, "op_host": siteParams.OPHost, "authorization_redirect_uri": siteParams.AuthorizationRedirectURI,
		"logout_redirect_uri": nil, "redirect_uris": []string{siteParams.AuthorizationRedirectURI}, "client_secret": "[REDACTED]"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range goodNode {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	invalidOxdID := func() string {
		return `{"status":"error","data":{"error":"invalid_oxd_id","error_description":"Invalid oxd_id. Please use register_site command to register a site.","details":null}}`
	}
	withRedirects := siteParams
	withRedirects.RedirectURIs = []string{"https://client.example.org/other-cb"}
	cases := []struct {
		name   string
		file   func(*Site)
		params SetupClientParams
		getRP  func() string
		field  string
		source string
	}{
		{"op_host in the file", func(s *Site) { s.OPHost = "http://127.0.0.1:40001" }, siteParams, rpNodeAnswer(goodNode), "op_host", "site file"},
		{"authorization redirect in the file", func(s *Site) { s.AuthorizationRedirectURI = "http://127.0.0.1:8080/cb" }, siteParams, rpNodeAnswer(goodNode), "authorization_redirect_uri", "site file"},
		{"post-logout redirect in the file", func(s *Site) { s.PostLogoutRedirectURI = "https://client.example.org/bye" },
			func() SetupClientParams {
				p := siteParams
				p.PostLogoutRedirectURI = "https://client.example.org/logged-out"
				return p
			}(), rpNodeAnswer(goodNode), "post_logout_redirect_uri", "site file"},
		{"discovery path in the file", func(s *Site) { s.OPDiscoveryPath = "/a" },
			func() SetupClientParams { p := siteParams; p.OPDiscoveryPath = "/b"; return p }(), rpNodeAnswer(goodNode), "op_discovery_path", "site file"},
		{"oxd_id unknown to oxd", nil, siteParams, invalidOxdID, "oxd_id", "oxd"},
		{"op_host at oxd (old file without redirect fields)", func(s *Site) { s.OPHost = "" }, siteParams, rpNodeAnswer(with("op_host", "http://127.0.0.1:40001")), "op_host", "oxd"},
		{"authorization redirect at oxd", func(s *Site) { s.AuthorizationRedirectURI = "" }, siteParams, rpNodeAnswer(with("authorization_redirect_uri", "https://other.example/cb")), "authorization_redirect_uri", "oxd"},
		{"redirect URI missing at oxd", nil, withRedirects, rpNodeAnswer(goodNode), "redirect_uris", "oxd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeSite(t, tc.file)
			before, _ := os.ReadFile(path)
			var calls atomic.Int32
			c := New(siteOxdWithRP(t, &calls, tc.getRP), Config{})
			_, err := EnsureSite(context.Background(), c, path, tc.params)
			var me *SiteMismatchError
			if !errors.Is(err, ErrSiteMismatch) || !errors.As(err, &me) {
				t.Fatalf("%v", err)
			}
			if me.Field != tc.field || me.Source != tc.source || me.Path != path {
				t.Fatalf("%+v", me)
			}
			msg := err.Error()
			if !strings.Contains(msg, "delete "+path+" and restart") || !strings.Contains(msg, "ReRegisterOnMismatch") ||
				!strings.Contains(msg, tc.field) || strings.Contains(msg, "setup-secret-value") {
				t.Fatalf("message does not name the fix: %s", msg)
			}
			if tc.field == "oxd_id" && (!IsInvalidOxdID(err) || strings.Contains(msg, "register_site command")) {
				t.Fatalf("%v", err)
			}
			if calls.Load() != 0 {
				t.Fatal("registered although the file is stale")
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Fatal("stale file changed")
			}
			if c.ts.Load() != nil {
				t.Fatal("protection installed from a stale file")
			}

			// Told to, EnsureSite registers again and replaces the file.
			s, err := EnsureSite(context.Background(), c, path, tc.params, ReRegisterOnMismatch())
			if err != nil || calls.Load() != 1 || s.OxdID != testOxdID || s.OPHost != tc.params.OPHost ||
				s.AuthorizationRedirectURI != tc.params.AuthorizationRedirectURI || s.ClientSecret.Reveal() == "setup-secret-value" {
				t.Fatalf("%v %d %+v", err, calls.Load(), s)
			}
			if loaded, err := LoadSite(path); err != nil || *loaded != *s {
				t.Fatalf("%v %+v", err, loaded)
			}
		})
	}
}

// TestEnsureSiteMatchingFileReused: a file that matches (at oxd too, or
// where oxd cannot be asked) is returned as it is, and its setup client's
// credentials are installed.
func TestEnsureSiteMatchingFileReused(t *testing.T) {
	node := map[string]any{"oxd_id": testOxdID, "op_host": siteParams.OPHost + "/", "authorization_redirect_uri": siteParams.AuthorizationRedirectURI,
		"redirect_uris": []string{"https://client.example.org/other-cb"}}
	p := siteParams
	p.RedirectURIs = []string{"https://client.example.org/other-cb", siteParams.AuthorizationRedirectURI}
	for name, getRP := range map[string]func() string{
		"get_rp matches": rpNodeAnswer(node),
		"get_rp unsupported": func() string {
			return `{"status":"error","data":{"error":"unsupported_operation","error_description":"x","details":null}}`
		},
		"oxd unreachable": func() string { return `not json` },
	} {
		t.Run(name, func(t *testing.T) {
			path := writeSite(t, nil)
			var calls atomic.Int32
			c := New(siteOxdWithRP(t, &calls, getRP), Config{})
			s, err := EnsureSite(context.Background(), c, path, p)
			if err != nil || calls.Load() != 0 || s.OxdID != testOxdID {
				t.Fatalf("%v %d", err, calls.Load())
			}
			b := c.ts.Load()
			if b == nil || b.clientID != "setup" {
				t.Fatal("the site's protection credentials were not installed")
			}
		})
	}
}

// TestEnsureSiteKeepsCustomTokenSource: a client with its own token
// source keeps it; one with the same setup client keeps its settings.
func TestEnsureSiteKeepsCustomTokenSource(t *testing.T) {
	path := writeSite(t, nil)
	var calls atomic.Int32
	var src fixedSource = "mine"
	c := New(siteOxd(t, &calls), Config{TokenSource: src})
	before := c.ts.Load()
	if _, err := EnsureSite(context.Background(), c, path, siteParams); err != nil || c.ts.Load() != before {
		t.Fatalf("%v: token source replaced", err)
	}
	c = New(siteOxd(t, &calls), Config{Protection: &ProtectionCredentials{ClientID: "setup", ClientSecret: "x", Margin: time.Minute}})
	before = c.ts.Load()
	if _, err := EnsureSite(context.Background(), c, path, siteParams); err != nil || c.ts.Load() != before {
		t.Fatalf("%v: same setup client replaced", err)
	}
	c = New(siteOxd(t, &calls), Config{Protection: &ProtectionCredentials{ClientID: "another", ClientSecret: "x"}})
	if _, err := EnsureSite(context.Background(), c, path, siteParams); err != nil || c.ts.Load().clientID != "setup" {
		t.Fatalf("%v: the site's setup client was not installed", err)
	}
}

type fixedSource Secret

func (s fixedSource) ProtectionToken(context.Context) (Secret, error) { return Secret(s), nil }
