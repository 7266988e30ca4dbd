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
)

// siteOxd answers setup_client and register_site from the fixtures and
// counts the calls.
func siteOxd(t *testing.T, calls *atomic.Int32) Transport {
	setup := string(readFixture(t, "socket-3.1/setup_client.response.json"))
	register := string(readFixture(t, "socket-3.1/register_site.response.json"))
	return envelopeTransport(func(command string, _ []byte) string {
		calls.Add(1)
		switch command {
		case CmdSetupClient:
			return setup
		case CmdRegisterSite:
			return register
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
	if err != nil || calls.Load() != 1 || *again != *s {
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
