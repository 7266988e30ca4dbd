package oxdclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// HTTPSConfig configures an [HTTPS] transport. The zero value gives the
// defaults.
type HTTPSConfig struct {
	// HTTPClient sends the requests and is used as is (its TLS settings,
	// proxy and timeouts are honoured, nothing in it is changed). Default:
	// a client of this transport's own, with TLS certificate verification
	// on (TLS 1.2+) and connect/handshake timeouts. To trust the
	// extension's self-signed certificate, give a client whose transport
	// has that certificate in its RootCAs, never InsecureSkipVerify.
	HTTPClient *http.Client

	// Timeout bounds one command (request and whole answer), on top of the
	// context's deadline and the client's own timeout. Default 30s.
	Timeout time.Duration

	// MaxResponseBytes bounds the answer body read into memory. Default
	// 1 MiB.
	MaxResponseBytes int64

	// InsecureAllowHTTP accepts an http:// base URL. Protection tokens and
	// client secrets then travel in clear text: acceptable only on a
	// loopback interface or in tests.
	InsecureAllowHTTP bool
}

const defaultMaxResponseBytes = 1 << 20

// HTTPS is the transport of the oxd-https-extension 3.1.x: each command is
// POST <base>/<command with "_" replaced by "-">, with the bare params
// object as the JSON body and, when the params carry a protection access
// token, the header "Authorization: Bearer <token>". The extension answers
// the socket envelope with HTTP 200 even for status:"error".
//
// The token is sent in the header only (the extension would replace a body
// token with the header's anyway); the caller's params are not modified.
//
// Error answers of the extension itself are mapped as follows:
//   - 403 with the oxd envelope inside Dropwizard's {"code","message"}
//     (missing or malformed Authorization header) → [*Error] with Code
//     "403" ([CodeForbidden]);
//   - HTTP N with {"code":N,"message":"<body>"} (an OP/AS error passed
//     through, oxd's http_status_N) → [*Error] with Code "http_status_N"
//     and the OP's body as Description;
//   - 400 "Invalid parameters…" → [ErrProtocol];
//   - 500 "Command response is null…" (oxd-server dropped the connection)
//     and 500 "Command client is not able to connect to oxd-server." →
//     [ErrUnavailable];
//   - Dropwizard's generic 500 ("There was an error processing your
//     request…"), any other status or an unreadable body → [ErrProtocol].
//
// HTTPS changes no global state (http.DefaultTransport and
// http.DefaultClient are never used or modified) and is safe for
// concurrent use.
type HTTPS struct {
	base    string // without trailing slash
	client  *http.Client
	own     *http.Transport // non-nil when the client is ours
	timeout time.Duration
	maxBody int64
	paths   sync.Map // command -> full URL
}

// NewHTTPS returns a transport for the oxd-https-extension at baseURL (for
// example "https://127.0.0.1:8443"; a path prefix is kept).
func NewHTTPS(baseURL string, cfg HTTPSConfig) (*HTTPS, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("oxdclient: invalid HTTPS extension URL: %w", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && cfg.InsecureAllowHTTP:
	case u.Scheme == "http":
		return nil, errors.New("oxdclient: the HTTPS extension URL is http://; set InsecureAllowHTTP to allow clear text")
	default:
		return nil, fmt.Errorf("oxdclient: HTTPS extension URL needs an https scheme, got %q", u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("oxdclient: the HTTPS extension URL must be scheme://host[:port][/path] without user info, query or fragment")
	}
	h := &HTTPS{
		base:    strings.TrimRight(u.String(), "/"),
		client:  cfg.HTTPClient,
		timeout: cfg.Timeout,
		maxBody: cfg.MaxResponseBytes,
	}
	if h.timeout <= 0 {
		h.timeout = defaultTimeout
	}
	if h.maxBody <= 0 {
		h.maxBody = defaultMaxResponseBytes
	}
	if h.client == nil {
		h.own = &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   defaultDialTimeout,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          32,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       defaultIdleTimeout,
			ExpectContinueTimeout: time.Second,
		}
		// A redirect is returned as the answer, never followed: following
		// it would resend the protection token and the command's secrets.
		h.client = &http.Client{Transport: h.own, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	return h, nil
}

// BaseURL returns the extension's base URL, without trailing slash.
func (h *HTTPS) BaseURL() string { return h.base }

func (h *HTTPS) url(command string) string {
	if v, ok := h.paths.Load(command); ok {
		return v.(string)
	}
	u := h.base + "/" + strings.ReplaceAll(command, "_", "-")
	h.paths.Store(command, u)
	return u
}

// Do sends one command and decodes its answer; see [Transport].
func (h *HTTPS) Do(ctx context.Context, command string, params, result any) error {
	if !validCommand(command) {
		return transportErr(command, ErrProtocol, errors.New("invalid command name"), false)
	}
	var token Secret
	if p, ok := params.(protected); ok {
		if token = p.protection().ProtectionAccessToken; token != "" {
			params = withoutToken(params)
		}
	}
	body := []byte("{}")
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return transportErr(command, ErrProtocol, fmt.Errorf("cannot encode the parameters: %w", err), false)
		}
		body = b
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url(command), bytes.NewReader(body))
	if err != nil {
		return transportErr(command, ErrProtocol, err, false)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token.Reveal())
	}
	// W3C trace context of the caller's span (nothing without one).
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return transportErr(command, ErrTimeout, err, true)
		}
		return transportErr(command, ErrUnavailable, err, true)
	}
	defer resp.Body.Close()
	limit := h.maxBody
	if resp.StatusCode != http.StatusOK {
		limit = min(limit, 64<<10)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return transportErr(command, ErrTimeout, err, true)
		}
		return transportErr(command, ErrUnavailable, fmt.Errorf("reading the answer: %w", err), true)
	}
	if int64(len(data)) > limit {
		return transportErr(command, ErrProtocol, fmt.Errorf("answer larger than %d bytes (HTTP %d)", limit, resp.StatusCode), true)
	}
	if resp.StatusCode == http.StatusOK {
		return DecodeEnvelope(command, data, result)
	}
	return httpsError(command, resp.StatusCode, data)
}

// dropwizardError is the body Dropwizard's exception mapper writes.
type dropwizardError struct {
	Code    *int    `json:"code"`
	Message *string `json:"message"`
}

// httpsError maps a non-200 answer of the extension (reference §5).
func httpsError(command string, status int, body []byte) error {
	var dw dropwizardError
	if json.Unmarshal(body, &dw) == nil && dw.Code != nil && dw.Message != nil {
		msg := *dw.Message
		// The extension's own errors carry an oxd envelope as the message.
		if env := strings.TrimSpace(msg); strings.HasPrefix(env, "{") && strings.Contains(env, `"status"`) {
			err := DecodeEnvelope(command, []byte(env), nil)
			var oe *Error
			if errors.As(err, &oe) {
				return oe
			}
		}
		// Dropwizard's own answer to an unhandled exception in the extension.
		if status == http.StatusInternalServerError && strings.HasPrefix(msg, "There was an error processing your request") {
			return transportErr(command, ErrProtocol, errors.New("the HTTPS extension failed to process the request (HTTP 500; see its log)"), true)
		}
		// oxd's http_status_<N>: the OP/AS answered N with this body.
		return &Error{Code: CodeHTTPStatusPrefix + strconv.Itoa(status), Description: msg, Command: command}
	}
	text := strings.TrimSpace(string(body))
	if strings.HasPrefix(text, `"`) {
		var s string
		if json.Unmarshal([]byte(text), &s) == nil {
			text = s
		}
	}
	switch {
	case status == http.StatusBadRequest && strings.HasPrefix(text, "Invalid parameters"):
		// The message quotes the parser's view of the body: not repeated.
		return transportErr(command, ErrProtocol, errors.New("the HTTPS extension rejected the parameters (HTTP 400 Invalid parameters)"), true)
	case status == http.StatusInternalServerError && strings.HasPrefix(text, "Command response is null"):
		return transportErr(command, ErrUnavailable, errors.New("oxd-server returned no answer to the HTTPS extension (it drops the connection after an internal error or an answer over 9999 characters; see oxd-server.log)"), true)
	case status == http.StatusInternalServerError && strings.HasPrefix(text, "Command client is not able to connect"):
		return transportErr(command, ErrUnavailable, errors.New("the HTTPS extension cannot connect to oxd-server"), true)
	}
	return transportErr(command, ErrProtocol, fmt.Errorf("unexpected HTTP status %d from the HTTPS extension", status), true)
}

// HealthCheck calls GET <base>/health-check, which answers "running".
func (h *HTTPS) HealthCheck(ctx context.Context) error {
	const command = "health_check"
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/health-check", nil)
	if err != nil {
		return transportErr(command, ErrProtocol, err, false)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return transportErr(command, ErrTimeout, err, true)
		}
		return transportErr(command, ErrUnavailable, err, true)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return transportErr(command, ErrUnavailable, err, true)
	}
	text := strings.Trim(strings.TrimSpace(string(data)), `"`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(text, "running") {
		return transportErr(command, ErrProtocol, fmt.Errorf("health check answered HTTP %d", resp.StatusCode), true)
	}
	return nil
}

// Close releases the idle connections of the transport's own HTTP client.
// A caller-provided client is left alone. Later calls still work.
func (h *HTTPS) Close() error {
	if h.own != nil {
		h.own.CloseIdleConnections()
	}
	return nil
}

var _ Transport = (*HTTPS)(nil)

// withoutToken returns a shallow copy of *params with the protection token
// cleared, leaving the caller's value untouched.
func withoutToken(params any) any {
	v := reflect.ValueOf(params)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return params
	}
	cp := reflect.New(v.Elem().Type())
	cp.Elem().Set(v.Elem())
	out := cp.Interface()
	if p, ok := out.(protected); ok {
		p.protection().ProtectionAccessToken = ""
	}
	return out
}
