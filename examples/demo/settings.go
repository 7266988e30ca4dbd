package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/atomicfile"
	"github.com/oxdgo/oxd/oxdclient"
)

// Settings is what the settings page edits and what the settings file keeps
// between runs (the oxd-node demo's settings.json). Site holds setup_client's
// answer, including the setup client's secret: the file is written with
// permissions 0600 and its secrets are never rendered.
type Settings struct {
	ClientName               string   `json:"client_name"`
	OPHost                   string   `json:"op_host"`
	EmbeddedOP               bool     `json:"embedded_op,omitempty"`
	AuthorizationRedirectURI string   `json:"authorization_redirect_uri"`
	PostLogoutRedirectURI    string   `json:"post_logout_redirect_uri"`
	ClaimsRedirectURI        string   `json:"claims_redirect_uri"`
	Scopes                   []string `json:"scope"`
	AcrValues                []string `json:"acr_values,omitempty"`

	// Oxd describes the oxd the site was registered with ("in-process
	// engine", "socket 127.0.0.1:8099", "https https://…"): an oxd_id means
	// nothing to another oxd.
	Oxd string `json:"oxd,omitempty"`
	// Site is setup_client's answer; nil when no client is registered.
	Site      *oxdclient.Site `json:"site,omitempty"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
}

// Registered reports whether a client is registered.
func (s *Settings) Registered() bool { return s != nil && s.Site != nil && s.Site.OxdID != "" }

// clone returns a deep copy.
func (s *Settings) clone() *Settings {
	c := *s
	c.Scopes = slices.Clone(s.Scopes)
	c.AcrValues = slices.Clone(s.AcrValues)
	if s.Site != nil {
		site := *s.Site
		c.Site = &site
	}
	return &c
}

// scopeOptions are the scopes the settings page offers besides openid,
// which is always requested.
var scopeOptions = []string{"profile", "email", "offline_access"}

// defaultSettings are the settings of a first run.
func defaultSettings(baseURL, opHost string, embedded bool) *Settings {
	return &Settings{
		ClientName:               "oxd for Go demo",
		OPHost:                   opHost,
		EmbeddedOP:               embedded,
		AuthorizationRedirectURI: baseURL + "/callback",
		PostLogoutRedirectURI:    baseURL + "/logged-out",
		ClaimsRedirectURI:        baseURL + "/uma/claims-callback",
		Scopes:                   []string{"openid", "profile", "email"},
	}
}

// errSettingsSyntax is a settings file that is not valid JSON. The demo
// refuses to start rather than overwrite it.
var errSettingsSyntax = errors.New("settings file is not valid JSON (fix or remove it)")

// loadSettings reads the settings file. A missing file gives (nil, nil).
func loadSettings(path string) (*Settings, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading settings: %w", err)
	}
	var s Settings
	if err := json.Unmarshal(b, &s); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s: %w (syntax error at byte %d)", path, errSettingsSyntax, se.Offset)
		}
		// No err text: it could quote a secret.
		return nil, fmt.Errorf("%s: %w", path, errSettingsSyntax)
	}
	return &s, nil
}

// saveSettings writes s to path atomically with permissions 0600, creating
// the directory (0700) if needed.
func saveSettings(path string, s *Settings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding settings: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing settings: %w", err)
	}
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("writing settings: %w", err)
	}
	return nil
}

// defaultSettingsPath is <user config dir>/oxd-demo/settings.json, or a
// per-user directory under the temporary directory when the system has no
// user config directory.
func defaultSettingsPath() string {
	if d, err := os.UserConfigDir(); err == nil && d != "" {
		return filepath.Join(d, "oxd-demo", "settings.json")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("oxd-demo-%d", os.Getuid()), "settings.json")
}

// settingsForm is the settings page's form, parsed and checked.
type settingsForm struct {
	ClientName, OPHost                              string
	AuthorizationRedirectURI, PostLogoutRedirectURI string
	ClaimsRedirectURI                               string
	Scopes, AcrValues                               []string
}

// parseSettingsForm reads and validates the settings form of r (already
// parsed with ParseForm).
func parseSettingsForm(get func(string) string, list func(string) []string) (settingsForm, error) {
	f := settingsForm{
		ClientName:               strings.TrimSpace(get("client_name")),
		OPHost:                   strings.TrimRight(strings.TrimSpace(get("op_host")), "/"),
		AuthorizationRedirectURI: strings.TrimSpace(get("authorization_redirect_uri")),
		PostLogoutRedirectURI:    strings.TrimSpace(get("post_logout_redirect_uri")),
		ClaimsRedirectURI:        strings.TrimSpace(get("claims_redirect_uri")),
		Scopes:                   []string{"openid"},
		AcrValues:                strings.Fields(get("acr_values")),
	}
	for _, s := range list("scope") {
		if slices.Contains(scopeOptions, s) && !slices.Contains(f.Scopes, s) {
			f.Scopes = append(f.Scopes, s)
		}
	}
	if len(f.ClientName) > 100 {
		return f, errors.New("the client name is longer than 100 characters")
	}
	for _, u := range []struct{ name, v string }{
		{"OP host", f.OPHost},
		{"redirect URI", f.AuthorizationRedirectURI},
		{"post-logout redirect URI", f.PostLogoutRedirectURI},
		{"claims redirect URI", f.ClaimsRedirectURI},
	} {
		if err := checkURL(u.v); err != nil {
			return f, fmt.Errorf("the %s %w", u.name, err)
		}
	}
	for _, a := range f.AcrValues {
		if len(a) > 64 || strings.ContainsAny(a, "\"\\<>") {
			return f, fmt.Errorf("the ACR value %q is not valid", a)
		}
	}
	return f, nil
}

// checkURL accepts an absolute http(s) URL without user info, query or
// fragment, of reasonable length.
func checkURL(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	if len(s) > 512 {
		return errors.New("is too long")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be an absolute http(s) URL without query or fragment")
	}
	return nil
}
