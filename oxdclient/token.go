package oxdclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// TokenSource supplies protection access tokens. A source may also
// implement Invalidate(Secret), which the client calls when oxd rejects a
// token, so that the next ProtectionToken call obtains a fresh one.
type TokenSource interface {
	ProtectionToken(ctx context.Context) (Secret, error)
}

// ProtectionCredentials are the setup client's credentials (from
// setup_client) used to obtain protection access tokens with
// get_client_token.
type ProtectionCredentials struct {
	ClientID        string
	ClientSecret    Secret
	OPHost          string
	OPDiscoveryPath string
	// Scope requested for the token. "oxd" (required by oxd-server 3.1.4+)
	// and "openid" are always added. Default: ["openid", "oxd",
	// "uma_protection"].
	Scope []string
	// AuthenticationMethod is get_client_token's authentication_method:
	// how the server authenticates the setup client at the OP ("" means
	// client_secret_basic; this server also accepts client_secret_post
	// and client_secret_jwt). private_key_jwt and none cannot obtain
	// protection tokens: ProtectionToken then fails with
	// [ErrProtectionNeedsSecret] without calling oxd.
	AuthenticationMethod string
	// Margin is how long before expiry a token is replaced. Default 30s;
	// capped at half the token's lifetime.
	Margin time.Duration
}

// protectionTokens caches one protection token and refreshes it in a single
// flight.
type protectionTokens struct {
	c     *Client
	creds ProtectionCredentials
	now   func() time.Time

	mu      sync.Mutex
	tok     Secret
	expires time.Time
	flight  *tokenFlight
}

type tokenFlight struct {
	done chan struct{}
	tok  Secret
	err  error
}

func newProtectionTokens(c *Client, creds ProtectionCredentials) *protectionTokens {
	scope := creds.Scope
	if len(scope) == 0 {
		scope = []string{"openid", "oxd", "uma_protection"}
	}
	for _, s := range []string{"openid", "oxd"} {
		if !slices.Contains(scope, s) {
			scope = append(scope, s)
		}
	}
	creds.Scope = scope
	if creds.Margin <= 0 {
		creds.Margin = 30 * time.Second
	}
	return &protectionTokens{c: c, creds: creds, now: time.Now}
}

// ErrProtectionNeedsSecret is returned (wrapped) when the protection
// client cannot obtain protection tokens: get_client_token uses the
// client_credentials grant, authenticated with the client's secret. oxd
// signs private_key_jwt assertions only for its own sites' clients, never
// for a caller that proves nothing, and a public client (none) has no
// credentials. The message names the fix: a protection client registered
// at the OP with client_secret_basic, client_secret_post or
// client_secret_jwt, its secret passed as ClientSecret (setup_client's
// setup_client_id, setup_client_secret and
// setup_client_token_endpoint_auth_method).
var ErrProtectionNeedsSecret = errors.New("oxdclient: the protection client needs a client secret")

// secretlessMethod reports whether m is a method without a client secret.
func secretlessMethod(m string) bool {
	m = strings.TrimSpace(m)
	return m == "private_key_jwt" || m == "none"
}

// check refuses credentials that cannot obtain a protection token.
func (c *ProtectionCredentials) check() error {
	const fix = "register a protection client at the OP with client_secret_basic, client_secret_post or client_secret_jwt and pass its client_id, ClientSecret and AuthenticationMethod (setup_client: setup_client_id, setup_client_secret, setup_client_token_endpoint_auth_method)"
	if secretlessMethod(c.AuthenticationMethod) {
		return fmt.Errorf("%w: client %s authenticates with %s; %s", ErrProtectionNeedsSecret, c.ClientID, strings.TrimSpace(c.AuthenticationMethod), fix)
	}
	if c.ClientSecret.IsZero() {
		return fmt.Errorf("%w: client %s has none; %s", ErrProtectionNeedsSecret, c.ClientID, fix)
	}
	return nil
}

// ProtectionToken returns the cached token or obtains a new one; concurrent
// callers share one get_client_token call.
func (p *protectionTokens) ProtectionToken(ctx context.Context) (Secret, error) {
	if err := p.creds.check(); err != nil {
		return "", err
	}
	p.mu.Lock()
	if p.tok != "" && p.now().Before(p.expires) {
		t := p.tok
		p.mu.Unlock()
		return t, nil
	}
	f := p.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		p.flight = f
		// The fetch belongs to the trace of the command that needed it
		// (only the span context is carried over, no value or deadline).
		parent := context.Background()
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			parent = trace.ContextWithSpanContext(parent, sc)
		}
		go p.fetch(parent, f)
	}
	p.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return "", transportErr(CmdGetClientToken, ErrTimeout, ctx.Err(), false)
	}
}

// fetch runs detached from any one caller's context so that a caller that
// gives up does not fail the others; it is bounded by its own timeout.
func (p *protectionTokens) fetch(parent context.Context, f *tokenFlight) {
	ctx, cancel := context.WithTimeout(parent, 30*time.Second)
	defer cancel()
	r, err := p.c.GetClientToken(ctx, GetClientTokenParams{
		ClientID:        p.creds.ClientID,
		ClientSecret:    p.creds.ClientSecret,
		OPHost:          p.creds.OPHost,
		OPDiscoveryPath: p.creds.OPDiscoveryPath,
		Scope:           p.creds.Scope,
		// The method is sent only when set: oxd 3.1.4 knew "basic" and
		// private_key_jwt only.
		AuthenticationMethod: p.creds.AuthenticationMethod,
	})
	if err == nil && r.AccessToken == "" {
		err = transportErr(CmdGetClientToken, ErrProtocol, errors.New("get_client_token returned no access token"), true)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flight = nil
	if err != nil {
		f.err = err
		close(f.done)
		return
	}
	life := time.Duration(r.ExpiresIn) * time.Second
	if r.ExpiresIn <= 0 {
		life = 5 * time.Minute
	}
	margin := min(p.creds.Margin, life/2)
	p.tok = r.AccessToken
	p.expires = p.now().Add(life - margin)
	f.tok = r.AccessToken
	close(f.done)
}

// Invalidate drops tok from the cache if it is the cached token.
func (p *protectionTokens) Invalidate(tok Secret) {
	p.mu.Lock()
	if p.tok == tok {
		p.tok = ""
	}
	p.mu.Unlock()
}
