package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/truncate"
)

// UMAGrantType is the grant type of the UMA 2.0 token request.
const UMAGrantType = "urn:ietf:params:oauth:grant-type:uma-ticket"

// IDTokenClaimFormat is the claim_token_format of a pushed OpenID Connect ID Token.
const IDTokenClaimFormat = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"

// OIDCProvider is a running oidc-provider (e2e/op/provider.mjs) with its UMA
// 2.0 layer, on http://127.0.0.1:<port>. Its state lives in memory and goes
// away with the process.
type OIDCProvider struct {
	issuer string
	proc   *ProcessGroup
	static *staticProfile // nil unless WithStaticProfile
}

type opConfig struct {
	env          []string
	startTimeout time.Duration
	static       *staticProfile // WithStaticProfile
}

// OPOption configures StartOIDCProvider.
type OPOption func(*opConfig)

// WithOPEnv sets an environment variable of the provider process, for example
// WithOPEnv("OP_TTL_ACCESS_TOKEN", "5") or WithOPEnv("OP_UMA_NEED_INFO_SCOPES", "photo_*").
// See the header of e2e/op/provider.mjs and e2e/op/uma.mjs for the variables.
func WithOPEnv(key, value string) OPOption {
	return func(c *opConfig) { c.env = append(c.env, key+"="+value) }
}

// WithOPStartTimeout bounds how long StartOIDCProvider waits for the ready line
// (default 30 s).
func WithOPStartTimeout(d time.Duration) OPOption {
	return func(c *opConfig) { c.startTimeout = d }
}

var opReadyLine = regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)$`)

// NodePath returns the path of the node binary, or reports it missing through
// Required.
func NodePath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		Required(t, "node (Node.js) is not installed")
	}
	return p
}

// OPDir returns e2e/op, after checking that its npm dependencies are installed.
func OPDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(e2eDir(t), "op")
	if !fileExists(filepath.Join(d, "node_modules", "oidc-provider", "package.json")) {
		Required(t, "oidc-provider is not installed in e2e/op (npm ci there)")
	}
	return d
}

// StartOIDCProvider starts e2e/op/provider.mjs on a free 127.0.0.1 port, waits
// until it answers its discovery document, and stops it when the test ends.
func StartOIDCProvider(t testing.TB, opts ...OPOption) *OIDCProvider {
	t.Helper()
	cfg := opConfig{startTimeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	node := NodePath(t)
	dir := OPDir(t)

	// The provider binds port 0 itself and prints the address it got, so no
	// other process can take the port between choosing and binding it.
	args := []string{"provider.mjs", "--port", "0"}
	if cfg.static != nil {
		args = append(args, "--profile", "static")
		cfg.env = append(cfg.env, "OP_CLIENTS_FILE="+cfg.static.write(t))
	}
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	// The OP writes every secret it issues or receives to a ledger, for
	// the secrets audit (AuditRun).
	cmd.Env = append(append(os.Environ(), cfg.env...), "OP_SECRETS_FILE="+SecretsLedger(t))
	proc := StartPeerProcessGroup(t, "oidc-provider", cmd)

	ctx, cancel := context.WithTimeout(context.Background(), cfg.startTimeout)
	defer cancel()
	m, err := proc.WaitForLine(ctx, opReadyLine)
	if err != nil {
		t.Fatalf("e2e: oidc-provider did not start: %v", err) // its output is logged at cleanup
	}
	op := &OIDCProvider{issuer: m[1], proc: proc, static: cfg.static}
	var disc struct {
		Issuer string `json:"issuer"`
	}
	if err := op.getJSON(ctx, http.DefaultClient, "/.well-known/openid-configuration", &disc); err != nil {
		t.Fatalf("e2e: oidc-provider discovery: %v", err)
	}
	if disc.Issuer != op.issuer {
		t.Fatalf("e2e: oidc-provider discovery says issuer %q, want %q", disc.Issuer, op.issuer)
	}
	return op
}

// Issuer is the issuer URL, e.g. http://127.0.0.1:38813 (no trailing slash).
func (op *OIDCProvider) Issuer() string { return op.issuer }

// URL returns the issuer joined with path, e.g. URL("/token").
func (op *OIDCProvider) URL(path string) string { return op.issuer + path }

// Process is the provider's process.
func (op *OIDCProvider) Process() *ProcessGroup { return op.proc }

// Discovery returns the OpenID Connect discovery document.
func (op *OIDCProvider) Discovery(ctx context.Context) (map[string]any, error) {
	var m map[string]any
	err := op.getJSON(ctx, http.DefaultClient, "/.well-known/openid-configuration", &m)
	return m, err
}

// UMAConfiguration returns the UMA 2.0 discovery document.
func (op *OIDCProvider) UMAConfiguration(ctx context.Context) (map[string]any, error) {
	var m map[string]any
	err := op.getJSON(ctx, http.DefaultClient, "/.well-known/uma2-configuration", &m)
	return m, err
}

func (op *OIDCProvider) getJSON(ctx context.Context, c *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, op.URL(path), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, snippet(body))
	}
	return json.Unmarshal(body, v)
}

// Client is a client registered at the provider.
type Client struct {
	ID                      string
	Secret                  string
	RegistrationAccessToken string
	RegistrationClientURI   string
	// Metadata is the whole registration response.
	Metadata map[string]any
}

// RegisterClient registers a client by open dynamic registration (RFC 7591).
// metadata is sent as is; redirect_uris is required by the provider.
func (op *OIDCProvider) RegisterClient(ctx context.Context, metadata map[string]any) (*Client, error) {
	body, err := json.Marshal(metadata)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, op.URL("/reg"), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("client registration: HTTP %d: %s", resp.StatusCode, snippet(raw))
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("client registration: %w", err)
	}
	c := &Client{Metadata: m}
	c.ID, _ = m["client_id"].(string)
	c.Secret, _ = m["client_secret"].(string)
	c.RegistrationAccessToken, _ = m["registration_access_token"].(string)
	c.RegistrationClientURI, _ = m["registration_client_uri"].(string)
	if c.ID == "" {
		return nil, errors.New("client registration: no client_id in the response")
	}
	return c, nil
}

// MustRegisterClient is RegisterClient that fails the test on error.
func (op *OIDCProvider) MustRegisterClient(t testing.TB, metadata map[string]any) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := op.RegisterClient(ctx, metadata)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return c
}

// ---- driving the provider's pages over plain HTTP ----

const maxHops = 25

// LoginHTTP drives the provider's devInteractions login and consent pages with
// client (whose cookie jar carries the browser session). It starts at authURL
// (the provider's authorization URL, or an application URL that redirects to
// it), signs in as user with pass, consents, and follows the provider's
// redirects until the provider redirects away from itself (to the relying
// party's redirect_uri). It returns that URL without following it. An error
// page of the provider becomes an error. client is not modified.
func (op *OIDCProvider) LoginHTTP(ctx context.Context, client *http.Client, authURL, user, pass string) (redirectedTo *url.URL, err error) {
	return op.drive(ctx, client, authURL, false, func(p *page) (url.Values, bool) {
		switch {
		case p.has("login"):
			v := p.hidden()
			v.Set("login", user)
			v.Set("password", pass)
			return v, true
		case p.hiddenValue("prompt") == "consent":
			return p.hidden(), true
		}
		return nil, false
	})
}

// LogoutHTTP drives RP-initiated logout: it opens endSessionURL (the
// provider's end_session URL with id_token_hint, post_logout_redirect_uri and
// state), confirms the sign-out, and returns the URL the provider redirects to
// outside itself (the post_logout_redirect_uri) without following it. Without
// a post_logout_redirect_uri it returns the URL of the provider's final page.
func (op *OIDCProvider) LogoutHTTP(ctx context.Context, client *http.Client, endSessionURL string) (*url.URL, error) {
	return op.drive(ctx, client, endSessionURL, true, func(p *page) (url.Values, bool) {
		if p.hiddenValue("xsrf") != "" && strings.Contains(p.action, "/session/end/confirm") {
			v := p.hidden()
			v.Set("logout", "yes")
			return v, true
		}
		return nil, false
	})
}

// GatherClaimsHTTP drives the UMA claims-gathering page: it opens gatherURL
// (claims_interaction_endpoint?client_id=&ticket=&claims_redirect_uri=&state=),
// submits email, and returns the claims_redirect_uri the provider redirects to
// (with the new ticket and the state) without following it.
func (op *OIDCProvider) GatherClaimsHTTP(ctx context.Context, client *http.Client, gatherURL, email string) (*url.URL, error) {
	return op.drive(ctx, client, gatherURL, false, func(p *page) (url.Values, bool) {
		if p.hiddenValue("ticket") != "" && strings.Contains(p.action, "/uma/gather_claims") {
			v := p.hidden()
			v.Set("email", email)
			return v, true
		}
		return nil, false
	})
}

// drive GETs target and then loops: a redirect from the provider to elsewhere
// ends the walk (returned, not followed); other redirects are followed; a
// provider HTML page with a form that fill accepts is submitted; a provider
// page that fill does not accept ends the walk with an error, or, when
// finalPageOK is set and the page has no form, with the page's URL.
func (op *OIDCProvider) drive(ctx context.Context, client *http.Client, target string, finalPageOK bool, fill func(*page) (url.Values, bool)) (*url.URL, error) {
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	issuer, err := url.Parse(op.issuer)
	if err != nil {
		return nil, err
	}
	cur, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	method := http.MethodGet
	var form url.Values
	for hop := 0; hop < maxHops; hop++ {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, cur.String(), body)
		if err != nil {
			return nil, err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		fromOP := sameOrigin(cur, issuer)
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			next, err := cur.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("bad Location from %s: %w", cur.Redacted(), err)
			}
			if fromOP && !sameOrigin(next, issuer) {
				return next, nil
			}
			cur, method, form = next, http.MethodGet, nil
			continue
		}
		if !fromOP {
			return nil, fmt.Errorf("%s answered HTTP %d instead of leading to the provider: %s", pathOf(cur), resp.StatusCode, snippet(raw))
		}
		p := parsePage(string(raw))
		if msg := p.opError(); msg != "" {
			return nil, fmt.Errorf("provider error page at %s (HTTP %d): %s", pathOf(cur), resp.StatusCode, msg)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("provider answered HTTP %d at %s: %s", resp.StatusCode, pathOf(cur), snippet(raw))
		}
		values, ok := fill(p)
		if !ok {
			if finalPageOK && p.action == "" {
				return cur, nil // a final page of the provider, e.g. "signed out"
			}
			return nil, fmt.Errorf("unexpected provider page at %s: %s", pathOf(cur), snippet(raw))
		}
		action, err := cur.Parse(p.action)
		if err != nil {
			return nil, fmt.Errorf("bad form action at %s: %w", pathOf(cur), err)
		}
		cur, method, form = action, http.MethodPost, values
	}
	return nil, fmt.Errorf("more than %d hops without leaving the provider", maxHops)
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// pathOf is a URL without its query, which may carry codes or tokens.
func pathOf(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.Path
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	return truncate.String(s, 300)
}
