package oxdclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"go.uber.org/goleak"

	"github.com/oxdgo/oxd/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}

const testOxdID = "bcad760f-91ba-46e1-a020-05e4281d91b6"

// okOxdID is an answer carrying the oxd_id of the request.
func okOxdID(f fakeFrame) fakeReply {
	var p struct {
		OxdID string `json:"oxd_id"`
	}
	_ = json.Unmarshal(f.Params, &p)
	b, _ := json.Marshal(map[string]any{"status": "ok", "data": map[string]any{"oxd_id": p.OxdID}})
	return fakeReply{Body: string(b)}
}

func removeSite(ctx context.Context, c *Client, id string) (string, error) {
	r, err := c.RemoveSite(ctx, RemoveSiteParams{OxdID: id})
	if err != nil {
		return "", err
	}
	return r.OxdID, nil
}

// TestSocketEveryCommandOneConnection sends every request fixture through
// the Client over one pooled connection; the fake 3.1.4 server checks each
// frame (prefix = UTF-16 length, params = fixture) and answers the fixture.
func TestSocketEveryCommandOneConnection(t *testing.T) {
	var mu sync.Mutex
	var wantCmd string
	var wantParams []byte
	var answer string
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		mu.Lock()
		defer mu.Unlock()
		if f.Command != wantCmd || !sameParams(t, f.Params, wantParams) {
			return fakeReply{Body: `{"status":"error","data":{"error":"test_mismatch","error_description":"unexpected frame","details":null}}`}
		}
		return fakeReply{Body: answer}
	})
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1}), Config{})
	for _, tc := range socketCases {
		cmd, params := fixtureRequest(t, "socket-3.1/"+tc.request)
		mu.Lock()
		wantCmd, wantParams, answer = cmd, params, string(readFixture(t, "socket-3.1/"+tc.response))
		mu.Unlock()
		res, err := callCommand(context.Background(), c, cmd, params)
		if err != nil {
			t.Fatalf("%s: %v", tc.request, err)
		}
		// The typed answer equals the fixture's data, decoded directly.
		want, err := decodeFixture(t, cmd, "socket-3.1/"+tc.response)
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, _ := json.Marshal(res)
		wantJSON, _ := json.Marshal(want)
		if string(gotJSON) != string(wantJSON) {
			t.Fatalf("%s: answer differs:\n%s\n%s", tc.request, gotJSON, wantJSON)
		}
	}
	frames := srv.Frames()
	if len(frames) != len(socketCases) || srv.Accepted() != 1 {
		t.Fatalf("%d frames on %d connections; want %d on 1", len(frames), srv.Accepted(), len(socketCases))
	}
	for _, f := range frames {
		n, _ := strconv.Atoi(string(f.Raw[:4]))
		if n != len(f.Raw)-4 {
			t.Fatalf("prefix %q for %d bytes", f.Raw[:4], len(f.Raw)-4)
		}
		for _, b := range f.Raw {
			if b >= 0x80 {
				t.Fatal("non-ASCII byte on the wire")
			}
		}
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
}

// TestSocketExactWireBytes: requests are byte-for-byte the wire fixtures.
func TestSocketExactWireBytes(t *testing.T) {
	srv := newFakeServer(t, okOxdID)
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{}), Config{})
	ctx := context.Background()
	if _, err := c.GetRP(ctx, GetRPParams{OxdID: testOxdID}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveSite(ctx, RemoveSiteParams{OxdID: testOxdID}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateSite(ctx, UpdateSiteParams{OxdID: testOxdID, Contacts: []string{"jürgen@example.org"}}); err != nil {
		t.Fatal(err)
	}
	frames := srv.Frames()
	if string(frames[0].Raw) != string(readFixture(t, "socket-3.1/wire/get_rp.request.txt")) {
		t.Errorf("get_rp frame %s", frames[0].Raw)
	}
	if string(frames[1].Raw) != string(readFixture(t, "socket-3.1/wire/remove_site.request.txt")) {
		t.Errorf("remove_site frame %s", frames[1].Raw)
	}
	// The fixture counts ü as one unit (0118); the client escapes it, so
	// its prefix is 0123 and bytes = units. Same JSON value.
	fx := readFixture(t, "socket-3.1/wire/non_ascii.request.txt")
	if string(frames[2].Raw[:4]) != "0123" || !strings.Contains(string(frames[2].Raw), `j\u00fcrgen`) {
		t.Errorf("non-ASCII frame %s", frames[2].Raw)
	}
	if compactJSON(t, frames[2].Raw[4:]) != compactJSON(t, fx[4:]) {
		t.Errorf("non-ASCII frame value differs")
	}
}

// TestSocketCapturedAnswersExactPrefix serves the real captured answers
// verbatim; each must be read exactly (the next command on the same
// connection works), and the generic internal_error drops the connection.
func TestSocketCapturedAnswersExactPrefix(t *testing.T) {
	names := []string{
		"get_authorization_url.oxd-3.0.x", "get_client_token.oxd-3.1.0", "get_logout_uri.oxd-3.0.x",
		"get_tokens_by_code.oxd-3.0.x", "get_user_info.oxd-3.0.x", "get_user_info.oxd-3.1.0",
		"register_site.oxd-3.0.x", "setup_client.oxd-3.1.0", "update_site_registration.oxd-3.0.x",
	}
	var next atomic.Value
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		if f.Command == "get_rp" {
			return okOxdID(f)
		}
		raw := next.Load().([]byte)
		return fakeReply{Raw: raw, Close: strings.Contains(string(raw), "Unknown internal server error occurs.")}
	})
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1}), Config{})
	ctx := context.Background()
	for _, n := range names {
		raw := readFixture(t, "captured-oxd-php-logs/"+n+".response.wire.txt")
		next.Store(raw)
		var res json.RawMessage
		if err := c.Transport().Do(ctx, "anything", map[string]string{"oxd_id": "x"}, &res); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if compactJSON(t, res) != compactJSON(t, jsonData(t, raw[4:])) {
			t.Fatalf("%s: data differs", n)
		}
		if _, err := c.GetRP(ctx, GetRPParams{OxdID: "after-" + n}); err != nil {
			t.Fatalf("after %s: %v", n, err)
		}
	}
	if srv.Accepted() != 1 {
		t.Fatalf("%d connections, want 1", srv.Accepted())
	}
	next.Store(readFixture(t, "captured-oxd-php-logs/internal_error.oxd-3.0.x.response.wire.txt"))
	err := c.Transport().Do(ctx, "anything", nil, nil)
	if !IsGenericInternalError(err) {
		t.Fatalf("%v", err)
	}
	if _, err := c.GetRP(ctx, GetRPParams{OxdID: "x"}); err != nil {
		t.Fatal(err)
	}
	if srv.Accepted() != 2 {
		t.Fatalf("%d connections after the internal error, want 2", srv.Accepted())
	}
}

func jsonData(t *testing.T, env []byte) []byte {
	var e struct{ Data json.RawMessage }
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	return e.Data
}

// TestSocketGenericInternalErrorRecovers (reference §1.4, oxd#242): oxd
// answers the generic internal_error and closes; the client returns the
// error, drops the connection, and the next call succeeds on a new one
// without the first request being sent again.
func TestSocketGenericInternalErrorRecovers(t *testing.T) {
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		if f.Command == CmdUpdateSite {
			return fakeReply{Body: genericInternalError} // server closes after it
		}
		return okOxdID(f)
	})
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1}), Config{})
	ctx := context.Background()
	_, err := c.UpdateSite(ctx, UpdateSiteParams{OxdID: "first"})
	if !IsGenericInternalError(err) || asOxdError(t, err).Command != CmdUpdateSite {
		t.Fatalf("%v", err)
	}
	if id, err := removeSite(ctx, c, "second"); err != nil || id != "second" {
		t.Fatalf("%q %v", id, err)
	}
	frames := srv.Frames()
	if len(frames) != 2 || frames[0].Command != CmdUpdateSite || frames[0].Conn != 1 || frames[1].Command != CmdRemoveSite || frames[1].Conn != 2 {
		t.Fatalf("frames %+v", frames)
	}
}

// TestSocketStalePooledConnectionDetected: the server closes an idle
// connection (restart, oxd#242's stale pool); a write to it would succeed
// and the command would be lost. The client sees the close before reuse and
// sends the command once, on a new connection.
func TestSocketStalePooledConnectionDetected(t *testing.T) {
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		r := okOxdID(f)
		r.Close = f.Conn == 1 // answer, then close connection 1
		return r
	})
	sock := newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1})
	c := New(sock, Config{})
	ctx := context.Background()
	if _, err := removeSite(ctx, c, "a"); err != nil {
		t.Fatal(err)
	}
	srv.waitClosed(t, 1, 10*time.Second)
	awaitPeerClosedIdle(t, sock)
	if id, err := removeSite(ctx, c, "b"); err != nil || id != "b" {
		t.Fatalf("%q %v", id, err)
	}
	frames := srv.Frames()
	if len(frames) != 2 || frames[1].Conn != 2 {
		t.Fatalf("frames %+v", frames)
	}
}

// TestSocketNeverResendsAfterWrite: the server reads the whole command and
// closes without answering (as 3.1.4 does for an answer > 9999 units). The
// command may have run: the client reports it and does not resend.
func TestSocketNeverResendsAfterWrite(t *testing.T) {
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		if f.Command == CmdRegisterSite {
			return fakeReply{NoReply: true}
		}
		return okOxdID(f)
	})
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{}), Config{})
	_, err := c.RegisterSite(context.Background(), RegisterSiteParams{SiteParams: SiteParams{OPHost: "https://op"}})
	te := asTransportError(t, err)
	if !errors.Is(err, ErrUnavailable) || !te.Sent || te.Command != CmdRegisterSite {
		t.Fatalf("%v (sent %v)", err, te.Sent)
	}
	if _, err := removeSite(context.Background(), c, "x"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range srv.Frames() {
		if f.Command == CmdRegisterSite {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("register_site received %d times", n)
	}
}

// flakyConn fails writes on demand: with n=0 (nothing sent) or after half
// of the frame.
type flakyConn struct {
	net.Conn
	mode *atomic.Int32 // 0 ok, 1 fail before writing, 2 fail after half
}

func (c *flakyConn) Write(b []byte) (int, error) {
	switch c.mode.Load() {
	case 1:
		return 0, syscall.EPIPE
	case 2:
		n, _ := c.Conn.Write(b[:len(b)/2])
		return n, syscall.ECONNRESET
	}
	return c.Conn.Write(b)
}

// TestSocketRetryOnlyWhenNothingWritten: a write that fails before the
// first byte is retried once on a fresh connection; a write that fails
// after some bytes is not.
func TestSocketRetryOnlyWhenNothingWritten(t *testing.T) {
	srv := newFakeServer(t, okOxdID)
	var dials atomic.Int32
	modes := []*atomic.Int32{}
	var mu sync.Mutex
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		dials.Add(1)
		m := &atomic.Int32{}
		mu.Lock()
		modes = append(modes, m)
		mu.Unlock()
		return &flakyConn{Conn: nc, mode: m}, nil
	}
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1, Dialer: dialer}), Config{})
	ctx := context.Background()
	if _, err := removeSite(ctx, c, "a"); err != nil {
		t.Fatal(err)
	}
	modes[0].Store(1) // pooled connection 1 now fails before writing
	if id, err := removeSite(ctx, c, "b"); err != nil || id != "b" {
		t.Fatalf("retry: %q %v", id, err)
	}
	if dials.Load() != 2 {
		t.Fatalf("%d dials, want 2", dials.Load())
	}
	modes[1].Store(2) // connection 2 now fails after half a frame
	_, err := removeSite(ctx, c, "c")
	te := asTransportError(t, err)
	if !te.Sent || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("partial write: %v sent=%v", err, te.Sent)
	}
	if dials.Load() != 2 {
		t.Fatalf("retried after a partial write (%d dials)", dials.Load())
	}
	frames := srv.Frames()
	if len(frames) != 2 || frames[0].Conn != 1 || frames[1].Conn != 2 {
		t.Fatalf("frames %+v", frames)
	}
}

// TestSocketAnswerSplitByteByByte: the answer arrives one byte per TCP
// write, multi-byte characters split across writes.
func TestSocketAnswerSplitByteByByte(t *testing.T) {
	body := `{"status":"ok","data":{"claims":{"name":["Jürgen Müller"],"city":["東京"],"mood":["😀🎉"]},"refresh_token":null,"access_token":null}}`
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		if f.Command == CmdGetUserInfo {
			return fakeReply{Body: body, Bytewise: true}
		}
		return okOxdID(f)
	})
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1}), Config{})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		r, err := c.GetUserInfo(ctx, GetUserInfoParams{OxdID: "x", AccessToken: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Claims.String("name") != "Jürgen Müller" || r.Claims.String("city") != "東京" || r.Claims.String("mood") != "😀🎉" {
			t.Fatalf("%v", r.Claims)
		}
		if id, err := removeSite(ctx, c, "next"); err != nil || id != "next" {
			t.Fatalf("next command: %q %v", id, err)
		}
	}
	if srv.Accepted() != 1 {
		t.Fatalf("%d connections", srv.Accepted())
	}
}

// TestSocketNonASCIICountedInUTF16Units: oxd writes raw UTF-8 and counts
// UTF-16 units (ü = 1, emoji = 2); requests go out escaped (bytes = units).
func TestSocketNonASCIICountedInUTF16Units(t *testing.T) {
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		// Echo the contacts back as claims, raw UTF-8.
		var p struct {
			Contacts []string `json:"contacts"`
		}
		_ = json.Unmarshal(f.Params, &p)
		b, _ := json.Marshal(map[string]any{"status": "ok", "data": map[string]any{"claims": map[string]any{"c": p.Contacts}}})
		return fakeReply{Body: string(b)}
	})
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1}), Config{})
	values := []string{"jürgen@example.org", "日本語", "😀", "a😀b🎉c", "\u2028x\u2029"}
	var res GetUserInfoResponse
	if err := c.Transport().Do(context.Background(), CmdUpdateSite, &UpdateSiteParams{OxdID: "x", Contacts: values}, &res); err != nil {
		t.Fatal(err)
	}
	got := res.Claims.Strings("c")
	if strings.Join(got, "|") != strings.Join(values, "|") {
		t.Fatalf("%q", got)
	}
	raw := srv.Frames()[0].Raw
	n, _ := strconv.Atoi(string(raw[:4]))
	if n != len(raw)-4 {
		t.Fatal("request prefix is not the byte length")
	}
	// The answer's prefix (written by the fake) is smaller than its bytes.
	ans := frame16(fmt.Sprintf("%q", values))
	if m, _ := strconv.Atoi(string(ans[:4])); m == len(ans)-4 {
		t.Fatal("test answer must have units != bytes")
	}
}

// TestSocket9999UnitAnswer: the largest answer a 4-digit prefix allows,
// with characters of 1, 2 and 3 bytes and surrogate pairs, is read exactly.
func TestSocket9999UnitAnswer(t *testing.T) {
	head := `{"status":"ok","data":{"authorization_url":"`
	tail := `"}}`
	fill := strings.Repeat("ü日😀a", 1000) // 1+1+2+1 = 5 units, 1000× = 5000
	units := func(s string) int { return len(utf16.Encode([]rune(s))) }
	for units(head+fill+tail) < 9999 {
		fill += "x"
	}
	body := head + fill + tail
	if units(body) != 9999 || len(body) <= 9999 {
		t.Fatalf("setup: %d units, %d bytes", units(body), len(body))
	}
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		if f.Command == CmdGetAuthorizationURL {
			return fakeReply{Body: body}
		}
		return okOxdID(f)
	})
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1}), Config{})
	r, err := c.GetAuthorizationURL(context.Background(), GetAuthorizationURLParams{OxdID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if r.AuthorizationURL != fill {
		t.Fatal("answer differs")
	}
	if string(frame16(body)[:4]) != "9999" {
		t.Fatal("prefix")
	}
	if id, err := removeSite(context.Background(), c, "after"); err != nil || id != "after" || srv.Accepted() != 1 {
		t.Fatalf("next command: %q %v (%d conns)", id, err, srv.Accepted())
	}
}

// TestSocketRequestTooLarge: a request over 9999 units (counted after
// escaping) fails before anything is dialled or written; exactly 9999 goes.
func TestSocketRequestTooLarge(t *testing.T) {
	srv := newFakeServer(t, okOxdID)
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{}), Config{})
	ctx := context.Background()
	for _, contact := range []string{strings.Repeat("a", 10000), strings.Repeat("ü", 1700)} {
		_, err := c.UpdateSite(ctx, UpdateSiteParams{OxdID: "x", Contacts: []string{contact}})
		te := asTransportError(t, err)
		if !errors.Is(err, ErrTooLarge) || te.Sent {
			t.Fatalf("%v", err)
		}
		if strings.Contains(err.Error(), contact[:20]) {
			t.Fatal("error quotes the request")
		}
	}
	if srv.Accepted() != 0 {
		t.Fatal("dialled for a request that cannot be sent")
	}
	// Find the contact length that makes the frame exactly 9999.
	f := framePool.Get().(*frameBuf)
	b, _ := encodeFrame(f, CmdUpdateSite, &UpdateSiteParams{OxdID: "x", Contacts: []string{""}}, traceContext{})
	fill := strings.Repeat("é", (9999-(len(b)-4))/6) // 6 bytes escaped
	fill += strings.Repeat("a", 9999-(len(b)-4)-6*len([]rune(fill)))
	framePool.Put(f)
	if _, err := c.UpdateSite(ctx, UpdateSiteParams{OxdID: "x", Contacts: []string{fill}}); err != nil {
		t.Fatal(err)
	}
	if raw := srv.Frames()[0].Raw; string(raw[:4]) != "9999" || len(raw) != 4+9999 {
		t.Fatalf("frame %q, %d bytes", raw[:4], len(raw))
	}
	if _, err := c.UpdateSite(ctx, UpdateSiteParams{OxdID: "x", Contacts: []string{fill + "a"}}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("10000: %v", err)
	}
}

// TestSocketSilentServer: oxd never answers; the configured timeout, the
// context deadline or the context's cancellation ends the call in time with
// ErrTimeout, and the connection is dropped.
func TestSocketSilentServer(t *testing.T) {
	srv := newFakeServer(t, func(f fakeFrame) fakeReply { return fakeReply{Silent: true} })
	cases := []struct {
		name  string
		cfg   SocketConfig
		ctx   func() (context.Context, context.CancelFunc)
		cause error
	}{
		{"config timeout", SocketConfig{Timeout: 300 * time.Millisecond}, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, os.ErrDeadlineExceeded},
		{"context deadline", SocketConfig{}, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, context.DeadlineExceeded},
		{"context cancel", SocketConfig{}, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(newTestSocket(t, srv.Addr(), tc.cfg), Config{})
			start := time.Now() // before the context's 300ms start
			ctx, cancel := tc.ctx()
			defer cancel()
			_, err := c.GetAuthorizationURL(ctx, GetAuthorizationURLParams{OxdID: "x"})
			elapsed := time.Since(start)
			te := asTransportError(t, err)
			if !errors.Is(err, ErrTimeout) || !errors.Is(err, tc.cause) || !te.Sent {
				t.Fatalf("%v", err)
			}
			if elapsed < 250*time.Millisecond || elapsed > 5*time.Second {
				t.Fatalf("returned after %v", elapsed)
			}
			srv.waitClosed(t, i+1, 10*time.Second) // connection dropped
		})
	}
}

// TestSocketRefused: nothing listens: ErrUnavailable, nothing sent.
func TestSocketRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := New(newTestSocket(t, addr, SocketConfig{}), Config{})
	_, err = c.GetAuthorizationURL(context.Background(), GetAuthorizationURLParams{OxdID: "x"})
	te := asTransportError(t, err)
	if !errors.Is(err, ErrUnavailable) || te.Sent || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%v", err)
	}
}

func TestSocketDialTimeout(t *testing.T) {
	blocking := func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s := newTestSocket(t, "127.0.0.1:1", SocketConfig{DialTimeout: 100 * time.Millisecond, Dialer: blocking})
	start := time.Now()
	err := s.Do(context.Background(), CmdGetRP, nil, nil)
	if !errors.Is(err, ErrTimeout) || asTransportError(t, err).Sent || time.Since(start) > 5*time.Second {
		t.Fatalf("%v", err)
	}
}

// TestSocketMalformedAnswers: bad prefix, truncated answer, garbage JSON,
// bytes after the answer: ErrProtocol (or success for the last), and the
// connection is never reused.
func TestSocketMalformedAnswers(t *testing.T) {
	cases := []struct {
		name  string
		raw   string
		close bool
		ok    bool
	}{
		{"bad prefix", `abcd{"status":"ok","data":null}`, false, false},
		{"zero prefix", `0000`, false, false},
		{"truncated", `0100{"status":"ok"`, true, false},
		{"not json", `0008not json`, false, false},
		{"extra bytes", `0027{"status":"ok","data":null}junk`, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(f fakeFrame) fakeReply {
				if f.Command == CmdGetRP {
					return fakeReply{Raw: []byte(tc.raw), Close: tc.close}
				}
				return okOxdID(f)
			})
			s := newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1, Timeout: 2 * time.Second})
			err := s.Do(context.Background(), CmdGetRP, nil, nil)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(err, ErrProtocol) {
				t.Fatalf("%v", err)
			}
			if _, err := removeSite(context.Background(), New(s, Config{}), "next"); err != nil {
				t.Fatal(err)
			}
			if srv.Accepted() != 2 {
				t.Fatalf("connection reused after a malformed answer (%d conns)", srv.Accepted())
			}
		})
	}
}

// TestSocketPoolBounded: many callers share at most PoolSize connections,
// one command in flight on each.
func TestSocketPoolBounded(t *testing.T) {
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		time.Sleep(5 * time.Millisecond)
		return okOxdID(f)
	})
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 3}), Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint(i)
			got, err := removeSite(context.Background(), c, id)
			if err == nil && got != id {
				err = fmt.Errorf("answer %q for %q", got, id)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if srv.MaxOpen() > 3 || srv.Accepted() > 3 {
		t.Fatalf("%d open at once, %d accepted; pool size 3", srv.MaxOpen(), srv.Accepted())
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
}

// TestSocketWaitForConnectionHonoursContext: all connections busy; a caller
// whose context ends while waiting gets ErrTimeout and sends nothing.
func TestSocketWaitForConnectionHonoursContext(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(f fakeFrame) fakeReply {
		if f.Command == CmdGetRP {
			<-release
		}
		return okOxdID(f)
	})
	s := newTestSocket(t, srv.Addr(), SocketConfig{PoolSize: 1})
	done := make(chan error, 1)
	go func() { done <- s.Do(context.Background(), CmdGetRP, nil, nil) }()
	for len(srv.Frames()) == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := removeSite(ctx, New(s, Config{}), "waiting")
	te := asTransportError(t, err)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || te.Sent {
		t.Fatalf("%v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(srv.Frames()) != 1 {
		t.Fatal("the waiting caller's command was sent")
	}
}

// TestSocketCloseInterruptsAndLeaksNothing: Close ends a call in flight and
// a caller waiting for a connection with ErrClosed; later calls fail with
// ErrClosed; no goroutine survives.
func TestSocketCloseInterruptsAndLeaksNothing(t *testing.T) {
	defer leakcheck.VerifyNone(t, goleak.IgnoreCurrent())
	srv := newFakeServer(t, func(f fakeFrame) fakeReply { return fakeReply{Silent: true} })
	s, err := NewSocket(srv.Addr(), SocketConfig{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- s.Do(context.Background(), CmdGetRP, nil, nil) }()
	for len(srv.Frames()) == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() { errs <- s.Do(context.Background(), CmdGetRP, nil, nil) }()
	awaitWaitingForConn(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("%v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not interrupt")
		}
	}
	if err := s.Do(context.Background(), CmdGetRP, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	_ = s.Close() // idempotent
	srv.Close()
}

// TestSocketIdleTimeout: an idle connection is closed after IdleTimeout
// (oxd keeps a thread per connection forever); the next call dials again.
func TestSocketIdleTimeout(t *testing.T) {
	srv := newFakeServer(t, okOxdID)
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{IdleTimeout: 100 * time.Millisecond}), Config{})
	if _, err := removeSite(context.Background(), c, "a"); err != nil {
		t.Fatal(err)
	}
	srv.waitClosed(t, 1, 10*time.Second)
	if _, err := removeSite(context.Background(), c, "b"); err != nil {
		t.Fatal(err)
	}
	if srv.Accepted() != 2 {
		t.Fatalf("%d conns", srv.Accepted())
	}
}

// TestSocketMaxAge: a connection younger than MaxAge is reused, an older
// one is retired and the next call dials again.
func TestSocketMaxAge(t *testing.T) {
	const maxAge = 500 * time.Millisecond
	srv := newFakeServer(t, okOxdID)
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{MaxAge: maxAge}), Config{})
	if _, err := removeSite(context.Background(), c, "a"); err != nil {
		t.Fatal(err)
	}
	dialedBy := time.Now() // the connection was made before this
	if _, err := removeSite(context.Background(), c, "b"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(dialedBy.Add(maxAge))) // until the connection is maxAge old
	if _, err := removeSite(context.Background(), c, "c"); err != nil {
		t.Fatal(err)
	}
	if srv.Accepted() != 2 {
		t.Fatalf("%d conns, want 2", srv.Accepted())
	}
}

// TestSocketConcurrentCallersNoLeak: 64 goroutines × 25 calls through one
// pooled client; every caller gets its own answer; after Close no goroutine
// of the client remains (run with -race).
func TestSocketConcurrentCallersNoLeak(t *testing.T) {
	defer leakcheck.VerifyNone(t, goleak.IgnoreCurrent())
	srv := newFakeServer(t, okOxdID)
	s, err := NewSocket(srv.Addr(), SocketConfig{PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	c := New(s, Config{})
	const goroutines, calls = 64, 25
	var wg sync.WaitGroup
	var failures atomic.Int32
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				id := fmt.Sprintf("%d-%d", g, i)
				got, err := removeSite(context.Background(), c, id)
				if err != nil || got != id {
					failures.Add(1)
					t.Errorf("%s: %q %v", id, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.FailNow()
	}
	if len(srv.Frames()) != goroutines*calls || srv.Accepted() > 4 {
		t.Fatalf("%d frames on %d connections", len(srv.Frames()), srv.Accepted())
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
}

func TestSocketCanceledContextSendsNothing(t *testing.T) {
	srv := newFakeServer(t, okOxdID)
	c := New(newTestSocket(t, srv.Addr(), SocketConfig{}), Config{})
	if _, err := removeSite(context.Background(), c, "warm"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := removeSite(ctx, c, "canceled")
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) || asTransportError(t, err).Sent {
		t.Fatalf("%v", err)
	}
	if len(srv.Frames()) != 1 {
		t.Fatal("a canceled command was sent")
	}
	if _, err := removeSite(context.Background(), c, "after"); err != nil || srv.Accepted() != 1 {
		t.Fatalf("%v, %d connections", err, srv.Accepted())
	}
}

func TestSocketConfigAndCommandValidation(t *testing.T) {
	if _, err := NewSocket("no-port", SocketConfig{}); err == nil {
		t.Fatal("address without port accepted")
	}
	s := newTestSocket(t, "127.0.0.1:1", SocketConfig{})
	if s.cfg.PoolSize != 4 || s.cfg.Timeout != 30*time.Second || s.cfg.DialTimeout != 5*time.Second || s.cfg.IdleTimeout != 5*time.Minute {
		t.Fatalf("defaults %+v", s.cfg)
	}
	for _, cmd := range []string{"", `get_rp","x":"`, "get rp", strings.Repeat("a", 65)} {
		if err := s.Do(context.Background(), cmd, nil, nil); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: %v", cmd, err)
		}
	}
	if err := s.Do(context.Background(), CmdGetRP, map[string]any{"f": func() {}}, nil); !errors.Is(err, ErrProtocol) || asTransportError(t, err).Sent {
		t.Errorf("unencodable params: %v", err)
	}
}
