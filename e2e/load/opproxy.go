package load

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
)

// FaultProxy stands in front of the OP: the OP's issuer is the proxy's URL,
// so every browser and every oxd request to the OP goes through it. It can
// delay every request (a slow OP) or drop every connection (a dead OP), it
// counts refresh-token grants, and it collects every secret that crosses it
// (client secrets, codes, tokens, RPTs, client assertions) for the secrets
// audit.
type FaultProxy struct {
	URL string

	ln       net.Listener
	srv      *http.Server
	upstream atomic.Pointer[url.URL]
	rp       *httputil.ReverseProxy

	delay    atomic.Int64 // ns
	dead     atomic.Bool
	refresh  atomic.Int64
	inFlight atomic.Int64

	Secrets *harness.Secrets
}

// NewFaultProxy listens on a free 127.0.0.1 port; SetUpstream must be
// called before it forwards anything.
func NewFaultProxy() (*FaultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &FaultProxy{URL: "http://" + ln.Addr().String(), ln: ln, Secrets: harness.NewSecrets()}
	// Node's HTTP server (the certified OP) closes an idle keep-alive
	// connection after 5 s; a POST sent on one it is closing fails and is
	// not retried. Dropping idle connections sooner keeps that race out of
	// the figures.
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 3 * time.Second}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := p.upstream.Load()
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the OP checks nothing, but keep what the client sent
		},
		Transport:      tr,
		ModifyResponse: p.inspectResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
		ErrorLog: discardLogger(),
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLogger()}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// SetUpstream points the proxy at the OP's real address.
func (p *FaultProxy) SetUpstream(u *url.URL) { p.upstream.Store(u) }

// SetDelay delays every back-channel request (the ones oxd makes) by d
// (0: none).
func (p *FaultProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// SetDead makes the proxy drop every connection without an answer.
func (p *FaultProxy) SetDead(dead bool) { p.dead.Store(dead) }

// RefreshGrants is the number of refresh_token grants forwarded so far.
func (p *FaultProxy) RefreshGrants() int64 { return p.refresh.Load() }

// InFlight is the number of requests being served now.
func (p *FaultProxy) InFlight() int64 { return p.inFlight.Load() }

// Close stops the proxy.
func (p *FaultProxy) Close() { _ = p.srv.Close() }

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	if p.dead.Load() {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // reset, as a crashed host's kernel would
				}
				c.Close()
				return
			}
		}
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if d := time.Duration(p.delay.Load()); d > 0 && backChannel(r.URL.Path) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	// Look at what the request carries: client credentials, codes, tokens.
	if _, pw, ok := r.BasicAuth(); ok {
		p.Secrets.Add(pw)
		if un, err := url.QueryUnescape(pw); err == nil {
			p.Secrets.Add(un)
		}
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		p.Secrets.Add(tok)
	}
	if r.Method == http.MethodPost && r.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		ct := r.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			if v, err := url.ParseQuery(string(body)); err == nil {
				if v.Get("grant_type") == "refresh_token" && r.URL.Path == "/token" {
					p.refresh.Add(1)
				}
				for _, k := range []string{"client_secret", "code", "refresh_token", "token", "client_assertion", "rpt", "claim_token"} {
					for _, s := range v[k] {
						p.Secrets.Add(s)
					}
				}
			}
		}
	}
	for _, k := range []string{"code", "id_token_hint"} {
		for _, s := range r.URL.Query()[k] {
			p.Secrets.Add(s)
		}
	}
	p.rp.ServeHTTP(w, r)
}

// backChannel reports whether path is an endpoint that oxd calls (token,
// userinfo, keys, discovery, introspection, registration, UMA), as opposed
// to the pages a browser visits.
func backChannel(path string) bool {
	for _, p := range []string{"/token", "/me", "/jwks", "/.well-known/", "/reg", "/uma/resource_set", "/uma/permission"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// inspectResponse collects the secrets the OP hands out.
func (p *FaultProxy) inspectResponse(resp *http.Response) error {
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			for _, k := range []string{"code", "access_token", "id_token"} {
				p.Secrets.Add(u.Query().Get(k))
			}
		}
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"access_token", "refresh_token", "id_token", "client_secret", "registration_access_token"} {
			if s, ok := m[k].(string); ok {
				p.Secrets.Add(s)
			}
		}
	}
	return nil
}
