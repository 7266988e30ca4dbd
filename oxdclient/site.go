package oxdclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/oxdgo/oxd/internal/atomicfile"
)

// Site is the result of the one-time registration of an application with
// oxd, as kept between runs by [EnsureSite] (the oxd-node demo keeps the
// same facts in its settings.json).
//
// OxdID names the application's site at oxd: every command for its users
// carries it. With setup_client, ClientID and ClientSecret are the *setup*
// client's credentials, used only to obtain protection access tokens
// ([Site.ProtectionCredentials]); ClientIDOfOxdID is the client the users
// log in to. With register_site the file holds only OxdID, OPHost and
// OPDiscoveryPath (a pre-registered client's secret stays with the
// application's own configuration).
//
// The JSON form carries the secrets in clear text: [SaveSite] writes it
// with permissions 0600. Printing a Site redacts them.
type Site struct {
	OxdID           string `json:"oxd_id"`
	OPHost          string `json:"op_host"`
	OPDiscoveryPath string `json:"op_discovery_path,omitempty"`

	// Setup client (setup_client only).
	ClientIDOfOxdID               string `json:"client_id_of_oxd_id,omitempty"`
	SetupClientOxdID              string `json:"setup_client_oxd_id,omitempty"`
	ClientID                      string `json:"client_id,omitempty"`
	ClientSecret                  Secret `json:"client_secret,omitempty"`
	ClientRegistrationAccessToken Secret `json:"client_registration_access_token,omitempty"`
	ClientRegistrationClientURI   string `json:"client_registration_client_uri,omitempty"`
	ClientIDIssuedAt              int64  `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt         int64  `json:"client_secret_expires_at,omitempty"`

	// Command is the command that created the site: "setup_client" or
	// "register_site".
	Command string `json:"command,omitempty"`
}

// ProtectionCredentials returns the setup client's credentials for
// [Client.SetProtection], or nil when the site has none (register_site).
func (s *Site) ProtectionCredentials() *ProtectionCredentials {
	if s == nil || s.ClientID == "" || s.ClientSecret.IsZero() || s.Command != CmdSetupClient {
		return nil
	}
	return &ProtectionCredentials{
		ClientID:        s.ClientID,
		ClientSecret:    s.ClientSecret,
		OPHost:          s.OPHost,
		OPDiscoveryPath: s.OPDiscoveryPath,
	}
}

// ErrNoSite is returned (wrapped) by [LoadSite] when the file does not exist
// or holds no oxd_id.
var ErrNoSite = errors.New("oxdclient: no site registered yet")

// LoadSite reads a site file written by [SaveSite]. A missing file, or one
// whose oxd_id is empty (like the oxd-node demo's initial settings.json),
// gives [ErrNoSite]; a file that is not valid JSON is an error of its own,
// so that a damaged file is never silently replaced by a new registration.
func LoadSite(path string) (*Site, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoSite, path)
	}
	if err != nil {
		return nil, fmt.Errorf("oxdclient: reading site file: %w", err)
	}
	var s Site
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("oxdclient: site file %s is not valid JSON (fix or remove it): %w", path, errSiteSyntax(err))
	}
	if s.OxdID == "" {
		return nil, fmt.Errorf("%w: %s has no oxd_id", ErrNoSite, path)
	}
	return &s, nil
}

// errSiteSyntax keeps the position of a JSON error but not the text around
// it (which could be a secret).
func errSiteSyntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has the wrong type", te.Field)
	}
	return errors.New("malformed")
}

// SaveSite writes s to path atomically (a temporary file in the same
// directory, synced, then renamed over path) with permissions 0600, since
// it holds the setup client's secret.
func SaveSite(path string, s *Site) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("oxdclient: encoding site: %w", err)
	}
	b = append(b, '\n')
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("oxdclient: writing site file: %w", err)
	}
	return nil
}

// EnsureSite performs the one-time setup of an application with oxd and
// keeps its result in the file at path, so that the next start reuses it:
//
//   - if path holds a site with an oxd_id, it is returned and oxd is not
//     called;
//   - otherwise setup_client runs with p, and its answer is written to path
//     (atomically, mode 0600) and returned.
//
// A file that exists but is not valid JSON is an error (nothing is
// registered): fix or remove it. If the site was removed from oxd
// (invalid_oxd_id on later commands), remove the file and restart.
//
// Call it once at startup, before serving; it is not meant for concurrent
// use on one path. Then, for an oxd that enforces protection tokens (the
// HTTPS extension always does), install the setup client's credentials:
//
//	site, err := oxdclient.EnsureSite(ctx, c, "oxd-site.json", params)
//	if err != nil { … }
//	c.SetProtection(site.ProtectionCredentials())
func EnsureSite(ctx context.Context, c *Client, path string, p SetupClientParams) (*Site, error) {
	if s, err := LoadSite(path); err == nil || !errors.Is(err, ErrNoSite) {
		return s, err
	}
	r, err := c.SetupClient(ctx, p)
	if err != nil {
		return nil, err
	}
	if r.OxdID == "" {
		return nil, transportErr(CmdSetupClient, ErrProtocol, errors.New("setup_client answered no oxd_id"), true)
	}
	s := &Site{
		OxdID:                         r.OxdID,
		OPHost:                        firstNonEmpty(r.OPHost, p.OPHost),
		OPDiscoveryPath:               p.OPDiscoveryPath,
		ClientIDOfOxdID:               r.ClientIDOfOxdID,
		SetupClientOxdID:              r.SetupClientOxdID,
		ClientID:                      r.ClientID,
		ClientSecret:                  r.ClientSecret,
		ClientRegistrationAccessToken: r.ClientRegistrationAccessToken,
		ClientRegistrationClientURI:   r.ClientRegistrationClientURI,
		ClientIDIssuedAt:              r.ClientIDIssuedAt,
		ClientSecretExpiresAt:         r.ClientSecretExpiresAt,
		Command:                       CmdSetupClient,
	}
	if err := SaveSite(path, s); err != nil {
		return nil, fmt.Errorf("%w (oxd_id %s was registered but could not be saved)", err, s.OxdID)
	}
	return s, nil
}

// EnsureRegisteredSite is [EnsureSite] with register_site instead of
// setup_client: one client, no setup client (enough for an oxd-server that
// does not enforce protection tokens). When the client has a token source,
// register_site carries a protection token, and the new site is linked to
// that token's setup client.
func EnsureRegisteredSite(ctx context.Context, c *Client, path string, p RegisterSiteParams) (*Site, error) {
	if s, err := LoadSite(path); err == nil || !errors.Is(err, ErrNoSite) {
		return s, err
	}
	r, err := c.RegisterSite(ctx, p)
	if err != nil {
		return nil, err
	}
	if r.OxdID == "" {
		return nil, transportErr(CmdRegisterSite, ErrProtocol, errors.New("register_site answered no oxd_id"), true)
	}
	s := &Site{
		OxdID:           r.OxdID,
		OPHost:          firstNonEmpty(r.OPHost, p.OPHost),
		OPDiscoveryPath: p.OPDiscoveryPath,
		Command:         CmdRegisterSite,
	}
	if err := SaveSite(path, s); err != nil {
		return nil, fmt.Errorf("%w (oxd_id %s was registered but could not be saved)", err, s.OxdID)
	}
	return s, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
