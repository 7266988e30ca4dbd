package oxdclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/oxdgo/oxd/internal/testwait"
)

// ---------------------------------------------------------------------------
// Fixtures

func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// fixtureRequest returns the command and params of a socket-3.1 request
// fixture.
func fixtureRequest(t testing.TB, rel string) (string, json.RawMessage) {
	t.Helper()
	var req struct {
		Command string          `json:"command"`
		Params  json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(readFixture(t, rel), &req); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return req.Command, req.Params
}

// compactJSON re-encodes a JSON value compactly (keys sorted by
// encoding/json's map ordering).
func compactJSON(t testing.TB, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %.200s", err, b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// normalizeParams decodes a params object and drops keys whose value is
// null or "" (oxd treats both as absent), recursively.
func normalizeParams(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("params not JSON: %v", err)
	}
	return dropAbsent(v)
}

func dropAbsent(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil || e == "" {
				delete(x, k)
				continue
			}
			x[k] = dropAbsent(e)
		}
	case []any:
		for i := range x {
			x[i] = dropAbsent(x[i])
		}
	}
	return v
}

func sameParams(t testing.TB, got, want []byte) bool {
	t.Helper()
	return reflect.DeepEqual(normalizeParams(t, got), normalizeParams(t, want))
}

// strictUnmarshal decodes a fixture's params into a params type and fails
// on any key the type does not know.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// callCommand decodes params (strictly) into the command's params type and
// calls the Client method: it is how the fixture tests drive every command.
func callCommand(ctx context.Context, c *Client, command string, params []byte) (any, error) {
	var err error
	dec := func(v any) bool {
		err = strictUnmarshal(params, v)
		return err == nil
	}
	switch command {
	case CmdSetupClient:
		var p SetupClientParams
		if dec(&p) {
			return c.SetupClient(ctx, p)
		}
	case CmdRegisterSite:
		var p RegisterSiteParams
		if dec(&p) {
			return c.RegisterSite(ctx, p)
		}
	case CmdUpdateSite:
		var p UpdateSiteParams
		if dec(&p) {
			return c.UpdateSite(ctx, p)
		}
	case CmdRemoveSite:
		var p RemoveSiteParams
		if dec(&p) {
			return c.RemoveSite(ctx, p)
		}
	case CmdGetAuthorizationURL:
		var p GetAuthorizationURLParams
		if dec(&p) {
			return c.GetAuthorizationURL(ctx, p)
		}
	case CmdGetTokensByCode:
		var p GetTokensByCodeParams
		if dec(&p) {
			return c.GetTokensByCode(ctx, p)
		}
	case CmdGetAccessTokenByRefreshToken:
		var p GetAccessTokenByRefreshTokenParams
		if dec(&p) {
			return c.GetAccessTokenByRefreshToken(ctx, p)
		}
	case CmdGetUserInfo:
		var p GetUserInfoParams
		if dec(&p) {
			return c.GetUserInfo(ctx, p)
		}
	case CmdGetLogoutURI:
		var p GetLogoutURIParams
		if dec(&p) {
			return c.GetLogoutURI(ctx, p)
		}
	case CmdGetClientToken:
		var p GetClientTokenParams
		if dec(&p) {
			return c.GetClientToken(ctx, p)
		}
	case CmdIntrospectAccessToken:
		var p IntrospectAccessTokenParams
		if dec(&p) {
			return c.IntrospectAccessToken(ctx, p)
		}
	case CmdIntrospectRPT:
		var p IntrospectRPTParams
		if dec(&p) {
			return c.IntrospectRPT(ctx, p)
		}
	case CmdUMARSProtect:
		var p UMARSProtectParams
		if dec(&p) {
			return c.UMARSProtect(ctx, p)
		}
	case CmdUMARSCheckAccess:
		var p UMARSCheckAccessParams
		if dec(&p) {
			return c.UMARSCheckAccess(ctx, p)
		}
	case CmdUMARPGetRPT:
		var p UMARPGetRPTParams
		if dec(&p) {
			return c.UMARPGetRPT(ctx, p)
		}
	case CmdUMARPGetClaimsGatheringURL:
		var p UMARPGetClaimsGatheringURLParams
		if dec(&p) {
			return c.UMARPGetClaimsGatheringURL(ctx, p)
		}
	case CmdGetRP:
		var p GetRPParams
		if dec(&p) {
			return c.GetRP(ctx, p)
		}
	default:
		return nil, fmt.Errorf("test: no method for command %q", command)
	}
	return nil, fmt.Errorf("test: fixture params do not fit the params type: %w", err)
}

// ---------------------------------------------------------------------------
// A fake oxd-server 3.1.4 socket listener.

const genericInternalError = `{"status":"error","data":{"error":"internal_error","error_description":"Unknown internal server error occurs.","details":null}}`

// fakeReply is what the fake server does with one command.
type fakeReply struct {
	Body     string // envelope, written as raw UTF-8 (like Jackson)
	Raw      []byte // exact bytes to write instead of prefix+Body
	Close    bool   // close the connection after replying
	NoReply  bool   // close the connection without replying
	Silent   bool   // never answer (keep reading)
	Bytewise bool   // write the answer one byte per TCP write
}

// fakeFrame is one command received by the fake server.
type fakeFrame struct {
	Conn    int    // index of the connection, from 1
	Raw     []byte // the whole frame, prefix included
	Command string
	Params  json.RawMessage
}

type fakeServer struct {
	t      testing.TB
	ln     net.Listener
	handle func(f fakeFrame) fakeReply

	mu         sync.Mutex
	frames     []fakeFrame
	accepted   int
	open       int
	maxOpen    int
	conns      map[net.Conn]struct{}
	violations []string
	closedConn chan int // connection indexes the server or peer closed
	wg         sync.WaitGroup
}

// newFakeServer starts a loopback listener that behaves like oxd-server
// 3.1.4's socket loop (reference §1.4, §1.6): frames in lock-step, generic
// internal_error and close on invalid JSON or unknown top-level keys,
// close without reply on a bad prefix.
func newFakeServer(t testing.TB, handle func(f fakeFrame) fakeReply) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, handle: handle, conns: map[net.Conn]struct{}{}, closedConn: make(chan int, 1024)}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *fakeServer) Addr() string { return s.ln.Addr().String() }

func (s *fakeServer) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.accepted++
		idx := s.accepted
		s.open++
		s.maxOpen = max(s.maxOpen, s.open)
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(idx, c)
			_ = c.Close()
			s.mu.Lock()
			s.open--
			delete(s.conns, c)
			s.mu.Unlock()
			s.closedConn <- idx
		}()
	}
}

// readFrame16 reads one frame counting UTF-16 units rune by rune, the way
// oxd's BufferedReader does; it is independent of package wire.
func readFrame16(br *bufio.Reader) (raw []byte, payload []byte, err error) {
	var p [4]byte
	if _, err := io.ReadFull(br, p[:]); err != nil {
		return nil, nil, err
	}
	n, err := strconv.Atoi(string(p[:]))
	if err != nil || n <= 0 || p[0] == '+' || p[0] == '-' {
		return nil, nil, fmt.Errorf("bad prefix %q", p[:])
	}
	units := 0
	for units < n {
		r, size, err := br.ReadRune()
		if err != nil {
			return nil, nil, err
		}
		if r == 0xfffd && size == 1 {
			payload = append(payload, 0xef, 0xbf, 0xbd)
		} else {
			payload = append(payload, string(r)...)
		}
		units += utf16.RuneLen(r)
	}
	return append(p[:], payload...), payload, nil
}

func (s *fakeServer) violation(format string, args ...any) {
	s.mu.Lock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *fakeServer) serveConn(idx int, c net.Conn) {
	br := bufio.NewReader(c)
	for {
		raw, payload, err := readFrame16(br)
		if err != nil {
			return // EOF, bad prefix: close without reply
		}
		if br.Buffered() > 0 {
			s.violation("conn %d: bytes sent before the answer (pipelining)", idx)
		}
		f := fakeFrame{Conn: idx, Raw: raw}
		var req map[string]json.RawMessage
		var reply fakeReply
		if json.Unmarshal(payload, &req) != nil {
			reply = fakeReply{Body: genericInternalError, Close: true}
		} else {
			for k := range req {
				if k != "command" && k != "params" {
					reply = fakeReply{Body: genericInternalError, Close: true}
				}
			}
			_ = json.Unmarshal(req["command"], &f.Command)
			f.Params = req["params"]
		}
		s.mu.Lock()
		s.frames = append(s.frames, f)
		s.mu.Unlock()
		if reply.Body == "" {
			reply = s.handle(f)
		}
		switch {
		case reply.Silent:
			continue
		case reply.NoReply:
			return
		}
		out := reply.Raw
		if out == nil {
			out = frame16(reply.Body)
		}
		if reply.Bytewise {
			for i := range out {
				if _, err := c.Write(out[i : i+1]); err != nil {
					return
				}
				if i%7 == 0 {
					time.Sleep(50 * time.Microsecond)
				}
			}
		} else if _, err := c.Write(out); err != nil {
			return
		}
		if reply.Close || reply.Body == genericInternalError {
			return
		}
	}
}

// frame16 frames body with its UTF-16 unit count, written as raw UTF-8.
func frame16(body string) []byte {
	n := len(utf16.Encode([]rune(body)))
	return append([]byte(fmt.Sprintf("%04d", n)), body...)
}

func (s *fakeServer) Frames() []fakeFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fakeFrame(nil), s.frames...)
}

func (s *fakeServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func (s *fakeServer) MaxOpen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxOpen
}

func (s *fakeServer) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// waitClosed waits until the server has seen connection idx close.
func (s *fakeServer) waitClosed(t testing.TB, idx int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case got := <-s.closedConn:
			if got == idx {
				return
			}
		case <-deadline:
			t.Fatalf("connection %d still open after %v", idx, within)
		}
	}
}

// unprotectedHTTPS lists the HTTPS paths that need no Authorization header
// (reference §5).
var unprotectedHTTPS = map[string]bool{CmdSetupClient: true, CmdGetClientToken: true}

// fakeHTTPS is a fake oxd-https-extension: POST /<command-with-dashes>,
// Authorization checks, envelope with HTTP 200.
type fakeHTTPS struct {
	srv    *httptest.Server
	handle func(command string, params json.RawMessage, token string, r *http.Request) (status int, body string)

	mu       sync.Mutex
	requests []fakeHTTPRequest
}

type fakeHTTPRequest struct {
	Method, Path, Authorization, ContentType string
	Body                                     []byte
}

func newFakeHTTPS(t testing.TB, handle func(command string, params json.RawMessage, token string, r *http.Request) (int, string)) *fakeHTTPS {
	t.Helper()
	f := &fakeHTTPS{handle: handle}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serveHTTP))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// forbidden is the extension's answer without a valid Authorization header.
const forbiddenBody = `{"code":403,"message":"{\"status\":\"error\",\"data\":{\"error\":\"403\",\"error_description\":\"Forbidden Access\",\"details\":null}}"}`

func (f *fakeHTTPS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, fakeHTTPRequest{
		Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"),
		ContentType: r.Header.Get("Content-Type"), Body: body,
	})
	f.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Path == "/health-check" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "running")
		return
	}
	command := strings.ReplaceAll(strings.TrimPrefix(r.URL.Path, "/"), "-", "_")
	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	token := ""
	if !unprotectedHTTPS[command] {
		auth := r.Header.Get("Authorization")
		token = strings.TrimPrefix(auth, "Bearer ")
		if !strings.HasPrefix(auth, "Bearer ") || strings.TrimSpace(token) == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, forbiddenBody)
			return
		}
	}
	status, out := f.handle(command, body, token, r)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, out)
}

func (f *fakeHTTPS) Requests() []fakeHTTPRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeHTTPRequest(nil), f.requests...)
}

// httpsClient returns an HTTPS transport that trusts the fake's certificate.
func (f *fakeHTTPS) transport(t testing.TB, cfg HTTPSConfig) *HTTPS {
	t.Helper()
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = f.srv.Client()
	}
	h, err := NewHTTPS(f.srv.URL, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// ---------------------------------------------------------------------------
// Misc helpers

func newTestSocket(t testing.TB, addr string, cfg SocketConfig) *Socket {
	t.Helper()
	s, err := NewSocket(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func asTransportError(t testing.TB, err error) *TransportError {
	t.Helper()
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("want *TransportError, got %T: %v", err, err)
	}
	return te
}

func asOxdError(t testing.TB, err error) *Error {
	t.Helper()
	var oe *Error
	if !errors.As(err, &oe) {
		t.Fatalf("want *Error, got %T: %v", err, err)
	}
	return oe
}

// funcTransport is an in-memory Transport for client-level tests.
type funcTransport func(ctx context.Context, command string, params, result any) error

func (f funcTransport) Do(ctx context.Context, command string, params, result any) error {
	return f(ctx, command, params, result)
}

// envelopeTransport answers through DecodeEnvelope, like a real transport.
func envelopeTransport(answer func(command string, params []byte) string) Transport {
	return funcTransport(func(ctx context.Context, command string, params, result any) error {
		b, err := json.Marshal(params)
		if err != nil {
			return err
		}
		return DecodeEnvelope(command, []byte(answer(command, b)), result)
	})
}

// awaitWaitingForConn waits until a goroutine is blocked in Socket.Do
// waiting for a free connection (in its select on the pool's slots): a
// started goroutine alone may not have got there yet.
func awaitWaitingForConn(t testing.TB) {
	t.Helper()
	buf := make([]byte, 1<<20)
	testwait.Until(t, "a caller waits for a free connection", func() bool {
		n := runtime.Stack(buf, true)
		for n == len(buf) {
			buf = make([]byte, 2*len(buf))
			n = runtime.Stack(buf, true)
		}
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			// "goroutine N [select]:" (or "[select, 2 minutes]:"), then the
			// innermost frame outside the runtime.
			head, rest, _ := strings.Cut(g, "\n")
			if strings.Contains(head, " [select") && strings.HasPrefix(rest, "github.com/oxdgo/oxd/oxdclient.(*Socket).Do(") {
				return true
			}
		}
		return false
	})
}

// awaitPeerClosedIdle waits until the client's socket has received the
// close of the server's end of its one idle pooled connection (loopback
// delivers the FIN on its own schedule), and until that connection has been
// idle long enough to be probed before reuse (aliveCheckIdle).
func awaitPeerClosedIdle(t testing.TB, s *Socket) {
	t.Helper()
	testwait.Until(t, "the server's close reaches the client's socket", func() bool {
		s.mu.Lock()
		if len(s.idle) != 1 {
			s.mu.Unlock()
			t.Fatalf("%d idle connections, want 1", len(s.idle))
		}
		c := s.idle[0]
		s.mu.Unlock()
		return !c.alive() && time.Since(c.lastUsed) > aliveCheckIdle
	})
}
