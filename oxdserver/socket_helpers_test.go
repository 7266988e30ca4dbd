package oxdserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/testwait"
	"github.com/oxdgo/oxd/internal/wire"
	"github.com/oxdgo/oxd/oxdclient"
)

// fakeExec is a scripted engine for the front-end tests. Commands:
//
//	echo      answers {"params": <params>, "token": <ProtectionToken>, "protect": <Protect>}
//	slow      blocks until release is closed (or ctx ends), then answers {"slow":true}
//	panic     panics
//	fail      returns a plain Go error (→ generic internal error)
//	generic   returns the generic internal error
//	big       answers a string of params.n "x" characters
//	error     returns the *oxdclient.Error described by params {code, description, details}
//	data      answers params.data verbatim
//
// Anything else is unsupported_operation.
type fakeExec struct {
	mu      sync.Mutex
	calls   []Request
	started chan string   // receives the command name when slow starts (optional)
	release chan struct{} // closed to let slow finish
}

func newFakeExec() *fakeExec {
	return &fakeExec{started: make(chan string, 16), release: make(chan struct{})}
}

func (f *fakeExec) Calls() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.calls...)
}

func (f *fakeExec) Execute(ctx context.Context, req Request) (any, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	f.mu.Unlock()
	switch req.Command {
	case "echo":
		return map[string]any{"params": req.Params, "token": req.ProtectionToken}, nil
	case "slow":
		select {
		case f.started <- req.Command:
		default:
		}
		select {
		case <-f.release:
			return map[string]any{"slow": true}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "panic":
		panic("scripted panic")
	case "fail":
		return nil, errors.New("scripted failure")
	case "generic":
		return nil, &oxdclient.Error{Code: oxdclient.CodeInternalError, Description: oxdclient.DescInternalErrorUnknown}
	case "big":
		var p struct{ N int }
		_ = json.Unmarshal(req.Params, &p)
		return map[string]any{"s": strings.Repeat("x", min(max(p.N, 0), 20000))}, nil
	case "error":
		var p struct {
			Code        string          `json:"code"`
			Description string          `json:"description"`
			Details     json.RawMessage `json:"details"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, err
		}
		return nil, &oxdclient.Error{Code: p.Code, Description: p.Description, Details: p.Details}
	case "data":
		var p struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, err
		}
		return p.Data, nil
	}
	return nil, &oxdclient.Error{Code: oxdclient.CodeUnsupportedOperation, Description: "Operation is not supported by server error."}
}

// hybridExec sends the scripted commands of fakeExec to it and everything
// else to a real engine (with a memory store and no OP), so that the
// engine's own answers (unsupported_operation, missing params, bad oxd_id)
// are what the listener passes on.
type hybridExec struct {
	*fakeExec
	engine *Engine
}

func newHybridExec(t *testing.T) *hybridExec {
	e, err := New(Config{InsecureAllowLoopbackHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return &hybridExec{fakeExec: newFakeExec(), engine: e}
}

func (h *hybridExec) Execute(ctx context.Context, req Request) (any, error) {
	switch req.Command {
	case "echo", "slow", "panic", "fail", "generic", "big", "error", "data":
		return h.fakeExec.Execute(ctx, req)
	}
	h.mu.Lock()
	h.calls = append(h.calls, req)
	h.mu.Unlock()
	return h.engine.Execute(ctx, req)
}

// startSocket serves srv (with exec f) on a loopback port and returns the
// address. The server is closed when the test ends.
func startSocket(t *testing.T, srv *SocketServer, f feExecutor) string {
	t.Helper()
	srv.exec = f
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return ln.Addr().String()
}

// testConn is a client connection that speaks raw bytes.
type testConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *testConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &testConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (tc *testConn) write(s string) {
	tc.t.Helper()
	_ = tc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(tc.c, s); err != nil {
		tc.t.Fatalf("write: %v", err)
	}
}

// send frames payload (already JSON text) with its UTF-16 unit count.
func (tc *testConn) send(payload string) {
	tc.t.Helper()
	f, err := wire.AppendFrame(nil, []byte(payload))
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.write(string(f))
}

// readRaw reads one frame and returns prefix+payload as received.
func (tc *testConn) readRaw() (prefix string, payload []byte) {
	tc.t.Helper()
	_ = tc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var p [4]byte
	if _, err := io.ReadFull(tc.br, p[:]); err != nil {
		tc.t.Fatalf("read prefix: %v", err)
	}
	n, err := wire.ReadPrefix(strings.NewReader(string(p[:])))
	if err != nil {
		tc.t.Fatalf("bad prefix %q: %v", p, err)
	}
	b, err := wire.ReadPayload(tc.br, n)
	if err != nil {
		tc.t.Fatalf("read payload: %v", err)
	}
	return string(p[:]), b
}

// read reads one answer and decodes its envelope.
func (tc *testConn) read() (status string, data json.RawMessage) {
	tc.t.Helper()
	_, b := tc.readRaw()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		tc.t.Fatalf("answer is not an envelope: %v: %s", err, b)
	}
	return env.Status, env.Data
}

// readError reads an answer that must be status:error and returns it.
func (tc *testConn) readError() errorWire {
	tc.t.Helper()
	st, data := tc.read()
	if st != "error" {
		tc.t.Fatalf("status %q, want error (data %s)", st, data)
	}
	var e errorWire
	if err := json.Unmarshal(data, &e); err != nil {
		tc.t.Fatal(err)
	}
	return e
}

type errorWire struct {
	Error       string          `json:"error"`
	Description string          `json:"error_description"`
	Details     json.RawMessage `json:"details"`
}

// expectClosed asserts that the server closes the connection without
// sending anything (within d).
func (tc *testConn) expectClosed(d time.Duration) {
	tc.t.Helper()
	_ = tc.c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(tc.br)
	if len(b) > 0 {
		tc.t.Fatalf("got %q, want the connection closed without a reply", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		tc.t.Fatalf("connection still open after %v", d)
	}
}

// expectSilence asserts that nothing arrives within d and the connection
// stays open.
func (tc *testConn) expectSilence(d time.Duration) {
	tc.t.Helper()
	_ = tc.c.SetReadDeadline(time.Now().Add(d))
	b, err := tc.br.Peek(1)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		tc.t.Fatalf("got %q, %v; want nothing (read timeout)", b, err)
	}
}

// waitConns waits until the server tracks n connections.
func waitConns(t *testing.T, s *SocketServer, n int) {
	t.Helper()
	s.init() // Serve may not have started yet
	testwait.For(t, func() (bool, string) {
		s.mu.Lock()
		got := len(s.conns)
		s.mu.Unlock()
		return got == n, fmt.Sprintf("server has %d connections, want %d", got, n)
	})
}

func newBufReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
