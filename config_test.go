package oxd

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/oxdclient"
)

func TestNewValidation(t *testing.T) {
	client := oxdclient.New(newFakeOxd(), oxdclient.Config{})
	good := func() Config {
		return Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye"}
	}
	cases := []struct {
		name string
		mod  func(*Config)
		sm   func(*scs.SessionManager)
	}{
		{"no site", func(c *Config) { c.OxdID = "" }, nil},
		{"both site and file", func(c *Config) { c.SiteFile = "x.json" }, nil},
		{"missing site file", func(c *Config) { c.OxdID = ""; c.SiteFile = filepath.Join(t.TempDir(), "none.json") }, nil},
		{"all sessions without an index", func(c *Config) { c.LogoutAllSessions = true }, nil},
		{"relative post-logout URI", func(c *Config) { c.PostLogoutRedirectURI = "/bye" }, nil},
		{"javascript post-logout URI", func(c *Config) { c.PostLogoutRedirectURI = "javascript:alert(1)" }, nil},
		{"relative redirect URL", func(c *Config) { c.RedirectURL = "/callback" }, nil},
		{"plain-http redirect URL with Secure cookies", func(c *Config) { c.RedirectURL = "http://app.example/callback" }, nil},
		{"scopes without openid", func(c *Config) { c.Scopes = []string{"profile"} }, nil},
		{"scope with space", func(c *Config) { c.Scopes = []string{"openid", "a b"} }, nil},
		{"acr with quote", func(c *Config) { c.AcrValues = []string{`a"`} }, nil},
		{"unknown prompt", func(c *Config) { c.Prompt = "maybe" }, nil},
		{"reserved custom parameter", func(c *Config) { c.CustomParameters = map[string]string{"state": "x"} }, nil},
		{"reserved custom parameter case", func(c *Config) { c.CustomParameters = map[string]string{"Redirect_URI": "x"} }, nil},
		{"off-site default return-to", func(c *Config) { c.DefaultReturnTo = "//evil.example" }, nil},
		{"negative timeout", func(c *Config) { c.CallTimeout = -1 }, nil},
		{"logout method PUT", func(c *Config) { c.LogoutMethods = []string{"PUT"} }, nil},
		{"bad trusted origin", func(c *Config) { c.TrustedOrigins = []string{"not an origin"} }, nil},
		{"realm with quote", func(c *Config) { c.Realm = `a"b` }, nil},
		{"SameSite Strict", nil, func(sm *scs.SessionManager) { sm.Cookie.SameSite = http.SameSiteStrictMode }},
		{"SameSite None insecure", func(c *Config) { c.InsecureCookies = true }, func(sm *scs.SessionManager) { sm.Cookie.SameSite = http.SameSiteNoneMode }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good()
			if c.mod != nil {
				c.mod(&cfg)
			}
			sm := scs.New()
			if c.sm != nil {
				c.sm(sm)
			}
			if _, err := New(client, sm, cfg); err == nil {
				t.Fatal("New accepted the configuration")
			}
		})
	}
	t.Run("nil client", func(t *testing.T) {
		if _, err := New(nil, scs.New(), good()); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("nil sessions", func(t *testing.T) {
		if _, err := New(client, nil, good()); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("valid with everything", func(t *testing.T) {
		cfg := good()
		cfg.RedirectURL = "http://localhost:8080/callback"
		cfg.Scopes = []string{"openid", "email"}
		cfg.AcrValues = []string{"basic"}
		cfg.Prompt = "login consent"
		cfg.CustomParameters = map[string]string{"ui_locales": "de"}
		cfg.LogoutMethods = []string{"POST", "GET"}
		cfg.TrustedOrigins = []string{"https://app.example"}
		a, err := New(client, scs.New(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if a.wwwAuth != `Bearer realm="localhost:8080"` {
			t.Fatalf("realm: %s", a.wwwAuth)
		}
		if a.oxdID != "id" || a.client != client {
			t.Fatal("accessors")
		}
	})
}

func TestNewDefaults(t *testing.T) {
	a, err := New(oxdclient.New(newFakeOxd(), oxdclient.Config{}), scs.New(), Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye"})
	if err != nil {
		t.Fatal(err)
	}
	c := a.cfg
	if c.CallTimeout != DefaultCallTimeout || c.RefreshBefore != DefaultRefreshBefore || c.PendingLoginTTL != DefaultPendingLoginTTL ||
		c.PendingLoginLimit != DefaultPendingLoginLimit || c.DefaultReturnTo != "/" || strings.Join(c.Scopes, " ") != "openid profile email" ||
		!a.logoutPOST || a.logoutGET || a.wwwAuth != `Bearer realm="oxd"` {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestSessionCookieSecureByDefault: New makes the session cookie Secure,
// HttpOnly and SameSite=Lax; InsecureCookies drops only Secure.
func TestSessionCookieSecureByDefault(t *testing.T) {
	client := oxdclient.New(newFakeOxd(), oxdclient.Config{})
	sm := scs.New()
	sm.Cookie.HttpOnly = false
	sm.Cookie.SameSite = 0
	if _, err := New(client, sm, Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye"}); err != nil {
		t.Fatal(err)
	}
	if !sm.Cookie.Secure || !sm.Cookie.HttpOnly || sm.Cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie: %+v", sm.Cookie)
	}
	sm2 := scs.New()
	sm2.Cookie.Secure = true
	if _, err := New(client, sm2, Config{OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye", InsecureCookies: true}); err != nil {
		t.Fatal(err)
	}
	if sm2.Cookie.Secure || !sm2.Cookie.HttpOnly {
		t.Fatalf("insecure cookie: %+v", sm2.Cookie)
	}

	// Over the wire: the Set-Cookie of a login carries the attributes.
	rg := newRig(t, rigOpts{})
	r := rg.get(rg.browser(), "/private/x")
	sc := r.header.Get("Set-Cookie")
	for _, attr := range []string{"Secure", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(sc, attr) {
			t.Errorf("Set-Cookie %q lacks %s", sc, attr)
		}
	}
}

func TestNewSiteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "site.json")
	if err := os.WriteFile(p, []byte(`{"oxd_id":"from-file","client_secret":"s3cr3t"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(oxdclient.New(newFakeOxd(), oxdclient.Config{}), scs.New(), Config{SiteFile: p, PostLogoutRedirectURI: "https://app.example/bye"})
	if err != nil {
		t.Fatal(err)
	}
	if a.oxdID != "from-file" {
		t.Fatalf("oxd_id %q", a.oxdID)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"client_secret":"s3cr3t"}`), 0o600)
	_, err = New(oxdclient.New(newFakeOxd(), oxdclient.Config{}), scs.New(), Config{SiteFile: bad, PostLogoutRedirectURI: "https://app.example/bye"})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err %v", err)
	}
}
