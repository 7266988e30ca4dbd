package logouttoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/oxdgo/oxd/internal/hostutil"
)

// maxDocSize bounds the discovery document and the JWKS read from the OP.
const maxDocSize = 1 << 20

// keySet caches the OP's verification keys. Keys are fetched on first use
// and again after maxAge; a token with a kid that no cached key has (key
// rotation) triggers a refetch, at most once per refetchEvery, so that
// tokens with made-up kids cannot make us hammer the OP.
type keySet struct {
	issuer       string
	jwksURL      string // "" until discovered
	client       *http.Client
	maxAge       time.Duration
	refetchEvery time.Duration
	now          func() time.Time

	group singleflight.Group

	mu          sync.Mutex
	keys        []jose.JSONWebKey
	fetchedAt   time.Time
	lastRefetch time.Time // last fetch triggered by an unknown kid
	lastFailure time.Time // last fetch of stale keys that failed
	fetches     int       // for tests
}

// get returns the cached keys, fetching them when there are none or they
// are older than maxAge.
func (k *keySet) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	keys, at, failed := k.keys, k.fetchedAt, k.lastFailure
	k.mu.Unlock()
	now := k.now()
	if keys != nil && (now.Sub(at) < k.maxAge || (!failed.IsZero() && now.Sub(failed) < k.refetchEvery)) {
		// Fresh keys, or stale ones whose refresh failed less than
		// refetchEvery ago: a failing OP is not asked again for every
		// token that arrives (any compact JWS gets this far).
		return keys, nil
	}
	fresh, err := k.fetch(ctx)
	if err != nil {
		if keys != nil {
			k.mu.Lock()
			k.lastFailure = now
			k.mu.Unlock()
			return keys, nil // the OP is unreachable: keep verifying with what we had
		}
		return nil, err
	}
	return fresh, nil
}

// refetch fetches the keys again for an unknown kid, unless that was done
// less than refetchEvery ago; ok reports whether new keys were fetched.
func (k *keySet) refetch(ctx context.Context) (keys []jose.JSONWebKey, ok bool) {
	k.mu.Lock()
	now := k.now()
	if !k.lastRefetch.IsZero() && now.Sub(k.lastRefetch) < k.refetchEvery {
		k.mu.Unlock()
		return nil, false
	}
	k.lastRefetch = now
	k.mu.Unlock()
	keys, err := k.fetch(ctx)
	return keys, err == nil
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	v, err, _ := k.group.Do("jwks", func() (any, error) {
		// The fetch outlives a caller that goes away, within its own bound.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		u, err := k.jwksURI(fctx)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := k.getJSON(fctx, u, &doc); err != nil {
			return nil, err
		}
		keys := make([]jose.JSONWebKey, 0, len(doc.Keys))
		for _, raw := range doc.Keys {
			var jk jose.JSONWebKey
			if err := jk.UnmarshalJSON(raw); err != nil {
				continue // a key type we do not know: skip it, not the set
			}
			// Public signature keys only: a symmetric ("oct") key would turn
			// the signature check into an HMAC check.
			if !jk.Valid() || !jk.IsPublic() || (jk.Use != "" && jk.Use != "sig") {
				continue
			}
			keys = append(keys, jk)
		}
		k.mu.Lock()
		k.keys, k.fetchedAt = keys, k.now()
		k.fetches++
		k.mu.Unlock()
		return keys, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]jose.JSONWebKey), nil
}

// jwksURI returns the configured JWKS URL or discovers it from the issuer
// (OpenID Connect Discovery 1.0 §4; the document's issuer must be ours).
func (k *keySet) jwksURI(ctx context.Context) (string, error) {
	k.mu.Lock()
	u := k.jwksURL
	k.mu.Unlock()
	if u != "" {
		return u, nil
	}
	doc, err := fetchDiscovery(ctx, k.client, strings.TrimSuffix(k.issuer, "/"))
	if err != nil {
		return "", err
	}
	if doc.Issuer != k.issuer {
		return "", fmt.Errorf("%w: the discovery document names another issuer", ErrKeysUnavailable)
	}
	if err := checkHTTPURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("%w: discovery: jwks_uri: %w", ErrKeysUnavailable, err)
	}
	// The keys come over https when the issuer does: a plain-http
	// jwks_uri (even on loopback) would let whoever holds that port choose
	// the keys.
	if strings.HasPrefix(strings.ToLower(k.issuer), "https:") && !strings.HasPrefix(strings.ToLower(doc.JWKSURI), "https:") {
		return "", fmt.Errorf("%w: discovery: jwks_uri is plain http for an https issuer", ErrKeysUnavailable)
	}
	k.mu.Lock()
	k.jwksURL = doc.JWKSURI
	k.mu.Unlock()
	return doc.JWKSURI, nil
}

// discoveryDoc is the part of the OP's discovery document used here.
type discoveryDoc struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// fetchDiscovery reads base + "/.well-known/openid-configuration".
func fetchDiscovery(ctx context.Context, client *http.Client, base string) (discoveryDoc, error) {
	var doc discoveryDoc
	k := keySet{client: client}
	err := k.getJSON(ctx, base+"/.well-known/openid-configuration", &doc)
	return doc, err
}

// DiscoverIssuer returns the issuer identifier of a site's OP, exactly as
// the OP's discovery document states it: the value an ID token's and a
// logout token's iss must equal (OpenID Connect Core §3.1.3.7,
// Back-Channel Logout §2.6). opHost and discoveryPath are the site's
// op_host and op_discovery_path at oxd; the document is read from
// op_host (https:// assumed without a scheme, trailing slashes dropped)
// joined with op_discovery_path, + "/.well-known/openid-configuration",
// the URL oxd reads it from. The document's issuer must name that URL up
// to trailing slashes, the only difference oxd allows between op_host and
// the issuer (any other, such as another case of the host, an explicit
// default port or another path, is refused: the site could not sign in
// either). client nil uses a client with a 10 s timeout. Plain http is
// allowed only to a loopback host.
func DiscoverIssuer(ctx context.Context, client *http.Client, opHost, discoveryPath string) (string, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	base := siteIssuerBase(opHost, discoveryPath)
	if err := checkHTTPURL(base); err != nil {
		return "", fmt.Errorf("%w: op_host: %w", ErrKeysUnavailable, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	doc, err := fetchDiscovery(dctx, client, base)
	if err != nil {
		return "", err
	}
	if doc.Issuer == "" || strings.TrimRight(doc.Issuer, "/") != base {
		return "", fmt.Errorf("%w: the discovery document at op_host names another issuer", ErrKeysUnavailable)
	}
	if err := checkHTTPURL(doc.Issuer); err != nil {
		return "", fmt.Errorf("%w: discovery: issuer: %w", ErrKeysUnavailable, err)
	}
	return doc.Issuer, nil
}

// siteIssuerBase is the issuer URL oxd derives from op_host and
// op_discovery_path, without trailing slash.
func siteIssuerBase(opHost, discoveryPath string) string {
	h := strings.TrimSpace(opHost)
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	h = strings.TrimRight(h, "/")
	if p := strings.Trim(strings.TrimSpace(discoveryPath), "/"); p != "" {
		h += "/" + p
	}
	return h
}

func (k *keySet) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := noDowngrade(k.client).Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: HTTP %d", ErrKeysUnavailable, u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocSize+1))
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", ErrKeysUnavailable, u, err)
	}
	if len(body) > maxDocSize {
		return fmt.Errorf("%w: GET %s: larger than %d bytes", ErrKeysUnavailable, u, maxDocSize)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: GET %s: %w", ErrKeysUnavailable, u, err)
	}
	return nil
}

// noDowngrade returns a copy of c that refuses a redirect to a URL
// checkHTTPURL refuses, and a redirect from https to another scheme (the
// document or the keys would then cross the network, or a local port, in
// clear); c's own redirect policy applies after that.
func noDowngrade(c *http.Client) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkHTTPURL(req.URL.String()); err != nil {
			return fmt.Errorf("redirect: %w", err)
		}
		if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("redirect from https to plain http refused")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "" || u.User != nil:
		return fmt.Errorf("not an absolute URL without user info")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && hostutil.PlainHTTPStaysLocal(u.Hostname()):
		return nil // a development OP on this machine
	}
	return fmt.Errorf("not https (plain http only to a loopback host)")
}
