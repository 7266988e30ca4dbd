package oxdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"go.uber.org/goleak"

	"github.com/oxdgo/oxd/internal/leakcheck"
	"github.com/oxdgo/oxd/internal/wire"
	"github.com/oxdgo/oxd/oxdclient"
)

// Exact wire texts of reference/fixtures/socket-3.1/wire/.
const (
	fxGetRPRequest        = `0079{"command":"get_rp","params":{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6"}}`
	fxGetRPUnknownOxdID   = `0236{"status":"error","data":{"error":"invalid_oxd_id","error_description":"Invalid oxd_id. Unable to find site for oxd_id. It does not exist or removed from the server. Please use register_site command to register a site.","details":null}}`
	fxInternalError       = `0127{"status":"error","data":{"error":"internal_error","error_description":"Unknown internal server error occurs.","details":null}}`
	fxNonASCIIRequest     = `0118{"command":"update_site","params":{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","contacts":["jürgen@example.org"]}}`
	fxRemoveSiteRequest   = `0084{"command":"remove_site","params":{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6"}}`
	fxRemoveSiteResponse  = `0072{"status":"ok","data":{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6"}}`
	fxUnsupportedResponse = `{"status":"error","data":{"error":"unsupported_operation","error_description":"Operation is not supported by server error.","details":null}}`
	fxNoParamsResponse    = `{"status":"error","data":{"error":"internal_error","error_description":"Command parameters are not specified or otherwise malformed.","details":null}}`
	fxBlankOxdIDResponse  = `{"status":"error","data":{"error":"bad_request","error_description":"oxd_id is empty or not specified or is otherwise invalid (not registered).","details":null}}`
	// The engine keeps 3.1.4's code but not its advice ("Please use
	// register_site command"): see TestInvalidOxdIDNamesTheFix.
	fxInvalidOxdIDResponse = `{"status":"error","data":{"error":"invalid_oxd_id","error_description":"` + engineInvalidOxdID + `","details":null}}`
	fxOxdID                = "bcad760f-91ba-46e1-a020-05e4281d91b6"

	engineInvalidOxdID = "Invalid oxd_id. Unable to find site for oxd_id: this oxd does not know it (its store was reset, the site was removed, or this is another oxd). " +
		"If the application keeps the oxd_id in a site file, that file is stale: delete it and restart the application (oxdclient.EnsureSite registers the site again)."
)

// wireExec answers the fixture commands exactly as oxd-server 3.1.4 does.
type wireExec struct{ *fakeExec }

func (w *wireExec) Execute(ctx context.Context, req Request) (any, error) {
	w.mu.Lock()
	w.calls = append(w.calls, req)
	w.mu.Unlock()
	switch req.Command {
	case "get_rp":
		return nil, &oxdclient.Error{Code: oxdclient.CodeInvalidOxdID, Description: "Invalid oxd_id. Unable to find site for oxd_id. It does not exist or removed from the server. Please use register_site command to register a site."}
	case "remove_site":
		var p struct {
			OxdID string `json:"oxd_id"`
		}
		_ = json.Unmarshal(req.Params, &p)
		return map[string]string{"oxd_id": p.OxdID}, nil
	case "update_site":
		return map[string]any{"oxd_id": fxOxdID}, nil
	}
	return w.fakeExec.Execute(ctx, req)
}

func TestSocketWireFixtures(t *testing.T) {
	for _, quirks := range []bool{false, true} {
		t.Run(fmt.Sprintf("quirks=%v", quirks), func(t *testing.T) {
			ex := &wireExec{newFakeExec()}
			addr := startSocket(t, &SocketServer{Quirks314: quirks}, ex)
			c := dial(t, addr)

			c.write(fxGetRPRequest)
			p, b := c.readRaw()
			if got := p + string(b); got != fxGetRPUnknownOxdID {
				t.Errorf("get_rp unknown oxd_id:\n got %s\nwant %s", got, fxGetRPUnknownOxdID)
			}
			// invalid_oxd_id keeps the connection open.
			c.write(fxRemoveSiteRequest)
			p, b = c.readRaw()
			if got := p + string(b); got != fxRemoveSiteResponse {
				t.Errorf("remove_site:\n got %s\nwant %s", got, fxRemoveSiteResponse)
			}
			// The non-ASCII request is framed with UTF-16 units (118 units,
			// 119 bytes); it must be read completely and decoded.
			if n := len(fxNonASCIIRequest) - 4; n != 119 {
				t.Fatalf("fixture has %d bytes", n)
			}
			c.write(fxNonASCIIRequest)
			if st, data := c.read(); st != "ok" || !strings.Contains(string(data), fxOxdID) {
				t.Fatalf("update_site: %s %s", st, data)
			}
			calls := ex.Calls()
			last := calls[len(calls)-1]
			var up struct{ Contacts []string }
			if err := json.Unmarshal(last.Params, &up); err != nil || len(up.Contacts) != 1 || up.Contacts[0] != "jürgen@example.org" {
				t.Errorf("params reached the engine as %s (%v)", last.Params, err)
			}
			// The generic internal error: exact bytes, then close.
			c.send(`{"command":"generic","params":{}}`)
			p, b = c.readRaw()
			if got := p + string(b); got != fxInternalError {
				t.Errorf("generic internal error:\n got %s\nwant %s", got, fxInternalError)
			}
			c.expectClosed(10 * time.Second)
		})
	}
}

// TestSocketMalformedInput has one case per row of reference §1.6.
func TestSocketMalformedInput(t *testing.T) {
	type want int
	const (
		closeNoReply want = iota
		genericThenClose
		replyStaysOpen
		hangsUntilTimeout
	)
	cases := []struct {
		name    string
		input   string
		want    want
		errData string // expected exact data JSON of the reply, for replyStaysOpen
	}{
		{"prefix not a number", `abcd{"command":"echo","params":{}}`, closeNoReply, ""},
		{"negative prefix", `-001{`, closeNoReply, ""},
		{"plus sign prefix", `+030{"command":"echo","params":{}}`, closeNoReply, ""},
		{"space in prefix", ` 030{"command":"echo","params":{}}`, closeNoReply, ""},
		{"zero prefix", `0000`, closeNoReply, ""},
		{"blank JSON", `0003   `, closeNoReply, ""},
		{"length larger than data", `0050{"command":"echo"`, hangsUntilTimeout, ""},
		{"invalid JSON", `0009{not json`, genericThenClose, ""},
		{"JSON array", `0002[]`, genericThenClose, ""},
		{"JSON string", `0005"abc"`, genericThenClose, ""},
		{"trailing garbage", `0031{"command":"echo","params":{}}}`, genericThenClose, ""},
		{"extra top-level key", `0046{"command":"echo","params":{},"protect":false}`, genericThenClose, ""},
		{"command not a string", `0025{"command":1,"params":{}}`, genericThenClose, ""},
		{"unknown command", `0055{"command":"update_site_registration","params":{"a":1}}`, replyStaysOpen, fxUnsupportedResponse},
		{"license_status", `0040{"command":"license_status","params":{}}`, replyStaysOpen, fxUnsupportedResponse},
		{"no command", `0013{"params":{}}`, replyStaysOpen, fxUnsupportedResponse},
		{"missing params", `0020{"command":"get_rp"}`, replyStaysOpen, fxNoParamsResponse},
		{"null params", `0041{"command":"register_site","params":null}`, replyStaysOpen, fxNoParamsResponse},
		{"params not an object", `0048{"command":"get_authorization_url","params":[1]}`, replyStaysOpen, fxNoParamsResponse},
		{"unknown command, no params", `0038{"command":"update_site_registration"}`, replyStaysOpen, fxUnsupportedResponse},
		{"blank oxd_id", `0058{"command":"get_authorization_url","params":{"oxd_id":""}}`, replyStaysOpen, fxBlankOxdIDResponse},
		{"unknown oxd_id", `0062{"command":"get_authorization_url","params":{"oxd_id":"nope"}}`, replyStaysOpen, fxInvalidOxdIDResponse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Check that the test input's prefix is right where it matters.
			if tc.want == genericThenClose || tc.want == replyStaysOpen {
				if got := fmt.Sprintf("%04d", len(tc.input)-4); got != tc.input[:4] {
					t.Fatalf("bad test input: prefix %s, want %s", tc.input[:4], got)
				}
			}
			for _, quirks := range []bool{false, true} {
				ex := newHybridExec(t)
				// ReadTimeout leaves the silence check below (100ms) most
				// of a second on a loaded machine before the server cuts.
				srv := &SocketServer{Quirks314: quirks, ReadTimeout: time.Second}
				addr := startSocket(t, srv, ex)
				c := dial(t, addr)
				c.write(tc.input)
				switch tc.want {
				case closeNoReply:
					c.expectClosed(10 * time.Second)
				case hangsUntilTimeout:
					// 3.1.4 waits forever; we close after ReadTimeout.
					c.expectSilence(100 * time.Millisecond)
					c.expectClosed(10 * time.Second)
				case genericThenClose:
					p, b := c.readRaw()
					if got := p + string(b); got != fxInternalError {
						t.Fatalf("got %s, want %s", got, fxInternalError)
					}
					c.expectClosed(10 * time.Second)
				case replyStaysOpen:
					_, b := c.readRaw()
					if string(b) != tc.errData {
						t.Fatalf("got %s, want %s", b, tc.errData)
					}
					c.send(`{"command":"echo","params":{"still":"open"}}`)
					if st, data := c.read(); st != "ok" || !strings.Contains(string(data), `"still":"open"`) {
						t.Fatalf("after the error: %s %s", st, data)
					}
				}
				if tc.want != replyStaysOpen {
					for _, r := range ex.Calls() {
						t.Errorf("engine was called with %q", r.Command)
					}
				}
				waitConnsAfterClose(t, srv, c, tc.want == replyStaysOpen)
			}
		})
	}
}

func waitConnsAfterClose(t *testing.T, srv *SocketServer, c *testConn, open bool) {
	t.Helper()
	if open {
		_ = c.c.Close()
	}
	waitConns(t, srv, 0)
}

func TestSocketManyCommandsOneConnection(t *testing.T) {
	ex := newFakeExec()
	srv := &SocketServer{}
	addr := startSocket(t, srv, ex)
	c := dial(t, addr)
	for i := range 50 {
		c.send(fmt.Sprintf(`{"command":"echo","params":{"i":%d}}`, i))
		st, data := c.read()
		var d struct {
			Params struct{ I int }
		}
		if err := json.Unmarshal(data, &d); st != "ok" || err != nil || d.Params.I != i {
			t.Fatalf("command %d: %s %s", i, st, data)
		}
	}
	// Command names are case-insensitive, as in 3.1.4.
	c.send(`{"command":"ECHO","params":{}}`)
	if st, _ := c.read(); st != "ok" {
		t.Fatalf("upper-case command: %s", st)
	}
	waitConns(t, srv, 1)
}

func TestSocketPipelining(t *testing.T) {
	frames := ""
	for i := range 3 {
		f, _ := wire.AppendFrame(nil, fmt.Appendf(nil, `{"command":"echo","params":{"i":%d}}`, i))
		frames += string(f)
	}
	t.Run("answered in order", func(t *testing.T) {
		addr := startSocket(t, &SocketServer{}, newFakeExec())
		c := dial(t, addr)
		c.write(frames)
		for i := range 3 {
			st, data := c.read()
			if st != "ok" || !strings.Contains(string(data), fmt.Sprintf(`"i":%d`, i)) {
				t.Fatalf("answer %d: %s %s", i, st, data)
			}
		}
	})
	t.Run("quirks drop what came with the first frame", func(t *testing.T) {
		ex := newFakeExec()
		addr := startSocket(t, &SocketServer{Quirks314: true}, ex)
		c := dial(t, addr)
		c.write(frames)
		st, data := c.read()
		if st != "ok" || !strings.Contains(string(data), `"i":0`) {
			t.Fatalf("first answer: %s %s", st, data)
		}
		c.expectSilence(200 * time.Millisecond)
		// The connection still works for the next frame sent on its own.
		c.send(`{"command":"echo","params":{"i":9}}`)
		if st, data := c.read(); st != "ok" || !strings.Contains(string(data), `"i":9`) {
			t.Fatalf("after the drop: %s %s", st, data)
		}
		if n := len(ex.Calls()); n != 2 {
			t.Fatalf("engine ran %d commands, want 2", n)
		}
	})
}

func TestSocketNonASCII(t *testing.T) {
	// ü (1 unit, 2 bytes), 😀 (2 units, 4 bytes), € (1 unit, 3 bytes).
	const text = "jürgen 😀 €"
	req := `{"command":"echo","params":{"name":"` + text + `"}}`
	units := len(utf16.Encode([]rune(req)))
	if units == len(req) {
		t.Fatal("test text is ASCII")
	}
	for _, quirks := range []bool{false, true} {
		t.Run(fmt.Sprintf("quirks=%v", quirks), func(t *testing.T) {
			addr := startSocket(t, &SocketServer{Quirks314: quirks}, newFakeExec())
			c := dial(t, addr)
			c.write(fmt.Sprintf("%04d", units) + req)
			p, b := c.readRaw()
			var n int
			fmt.Sscanf(p, "%04d", &n)
			if got := len(utf16.Encode([]rune(string(b)))); got != n {
				t.Fatalf("prefix %s but %d UTF-16 units", p, got)
			}
			if quirks {
				// 3.1.4 writes raw UTF-8: bytes exceed units.
				if !strings.Contains(string(b), text) || len(b) == n {
					t.Fatalf("quirks answer should carry raw UTF-8: %s", b)
				}
			} else {
				// Escaped: pure ASCII, bytes == units.
				if len(b) != n {
					t.Fatalf("answer has %d bytes for %d units: %s", len(b), n, b)
				}
				for _, ch := range b {
					if ch >= 0x80 {
						t.Fatalf("answer is not ASCII: %s", b)
					}
				}
			}
			var d struct {
				Data struct {
					Params struct{ Name string }
				}
			}
			if err := json.Unmarshal(b, &d); err != nil || d.Data.Params.Name != text {
				t.Fatalf("decoded %q (%v)", d.Data.Params.Name, err)
			}
			// A frame announced with the UTF-8 byte count is longer than
			// the JSON: the server waits for the missing units.
			c.write(fmt.Sprintf("%04d", len(req)) + req)
			c.expectSilence(200 * time.Millisecond)
		})
	}
}

func TestSocketOversized(t *testing.T) {
	t.Run("response over 9999 units", func(t *testing.T) {
		addr := startSocket(t, &SocketServer{}, newFakeExec())
		c := dial(t, addr)
		c.send(`{"command":"big","params":{"n":9990}}`)
		e := c.readError()
		if e.Error != "internal_error" || e.Description != feDescResponseTooLarge {
			t.Fatalf("got %+v", e)
		}
		// The connection stays usable; the largest answer that fits works.
		c.send(`{"command":"big","params":{"n":9950}}`)
		if p, _ := c.readRaw(); p != "9981" {
			t.Fatalf("prefix %s", p)
		}
	})
	t.Run("escaping would overflow, raw fits", func(t *testing.T) {
		ex := newFakeExec()
		addr := startSocket(t, &SocketServer{}, ex)
		c := dial(t, addr)
		s := strings.Repeat("é", 5000) // 5000 units raw, 30000 escaped
		c.send(`{"command":"data","params":{"data":"` + s + `"}}`)
		p, b := c.readRaw()
		if p != "5025" || !strings.Contains(string(b), s) {
			t.Fatalf("prefix %s", p)
		}
	})
	t.Run("response over 9999 units, quirks", func(t *testing.T) {
		addr := startSocket(t, &SocketServer{Quirks314: true}, newFakeExec())
		c := dial(t, addr)
		c.send(`{"command":"big","params":{"n":9990}}`)
		c.expectClosed(10 * time.Second)
	})
	t.Run("five-digit prefix", func(t *testing.T) {
		// A client that writes 10000 desynchronises: the server reads 1000
		// units starting with "0{", which is not JSON.
		body := `{"command":"echo","params":{"s":"` + strings.Repeat("a", 10000-36) + `"}}`
		if len(body) != 10000 {
			t.Fatalf("len %d", len(body))
		}
		addr := startSocket(t, &SocketServer{}, newFakeExec())
		c := dial(t, addr)
		c.write("10000" + body)
		p, b := c.readRaw()
		if p+string(b) != fxInternalError {
			t.Fatalf("got %s%s", p, b)
		}
		c.expectClosed(10 * time.Second)
	})
	t.Run("request over MaxFrameUnits", func(t *testing.T) {
		ex := newFakeExec()
		addr := startSocket(t, &SocketServer{MaxFrameUnits: 100}, ex)
		c := dial(t, addr)
		c.send(`{"command":"echo","params":{"s":"` + strings.Repeat("a", 100) + `"}}`)
		c.expectClosed(10 * time.Second)
		if len(ex.Calls()) != 0 {
			t.Fatal("engine called")
		}
	})
}

func TestSocketTruncatedAndSlowFrames(t *testing.T) {
	defer leakcheck.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("truncated", func(t *testing.T) {
		ex := newFakeExec()
		srv := &SocketServer{}
		addr := startSocket(t, srv, ex)
		c := dial(t, addr)
		c.write(`0050{"command":"echo"`)
		_ = c.c.(*net.TCPConn).CloseWrite()
		c.expectClosed(10 * time.Second)
		waitConns(t, srv, 0)
		if len(ex.Calls()) != 0 {
			t.Fatal("engine called")
		}
	})
	t.Run("truncated prefix", func(t *testing.T) {
		srv := &SocketServer{}
		addr := startSocket(t, srv, newFakeExec())
		c := dial(t, addr)
		c.write(`00`)
		_ = c.c.(*net.TCPConn).CloseWrite()
		c.expectClosed(10 * time.Second)
		waitConns(t, srv, 0)
	})
	t.Run("slow frame hits the read deadline", func(t *testing.T) {
		srv := &SocketServer{ReadTimeout: 150 * time.Millisecond}
		addr := startSocket(t, srv, newFakeExec())
		// Several slow clients, each trickling bytes slower than the frame
		// deadline allows.
		var conns []*testConn
		for range 5 {
			c := dial(t, addr)
			c.write(`00`)
			conns = append(conns, c)
		}
		waitConns(t, srv, 5)
		time.Sleep(50 * time.Millisecond)
		for _, c := range conns {
			_, _ = c.c.Write([]byte(`3`)) // still inside the frame
		}
		for _, c := range conns {
			c.expectClosed(10 * time.Second)
		}
		waitConns(t, srv, 0)
	})
	t.Run("idle timeout", func(t *testing.T) {
		srv := &SocketServer{IdleTimeout: 100 * time.Millisecond}
		addr := startSocket(t, srv, newFakeExec())
		c := dial(t, addr)
		c.send(`{"command":"echo","params":{}}`)
		c.read()
		c.expectClosed(10 * time.Second)
		waitConns(t, srv, 0)
	})
	t.Run("no timeout while the engine works", func(t *testing.T) {
		ex := newFakeExec()
		srv := &SocketServer{ReadTimeout: 50 * time.Millisecond, IdleTimeout: 50 * time.Millisecond}
		addr := startSocket(t, srv, ex)
		c := dial(t, addr)
		c.send(`{"command":"slow","params":{}}`)
		<-ex.started
		time.Sleep(200 * time.Millisecond)
		close(ex.release)
		if st, _ := c.read(); st != "ok" {
			t.Fatal(st)
		}
	})
}

func TestSocketEngineFailures(t *testing.T) {
	ex := newFakeExec()
	srv := &SocketServer{}
	addr := startSocket(t, srv, ex)
	for _, cmd := range []string{"panic", "fail"} {
		c := dial(t, addr)
		c.send(`{"command":"` + cmd + `","params":{}}`)
		p, b := c.readRaw()
		if p+string(b) != fxInternalError {
			t.Fatalf("%s: got %s%s", cmd, p, b)
		}
		c.expectClosed(10 * time.Second)
	}
	// The server survives.
	c := dial(t, addr)
	c.send(`{"command":"echo","params":{}}`)
	if st, _ := c.read(); st != "ok" {
		t.Fatal(st)
	}
	// Other errors keep the connection, details pass through, and an
	// internal_error with another description does not close it.
	for _, e := range []string{
		`{"code":"need_info","description":"The authorization server needs additional information.","details":{"ticket":"t1","redirect_user":"https://as/claims?a=1&b=2"}}`,
		`{"code":"internal_error","description":"Failed to get RPT."}`,
		`{"code":"http_status_400","description":"{\"error\":\"invalid_ticket\"}"}`,
	} {
		c.send(`{"command":"error","params":` + e + `}`)
		got := c.readError()
		var want struct {
			Code        string          `json:"code"`
			Description string          `json:"description"`
			Details     json.RawMessage `json:"details"`
		}
		_ = json.Unmarshal([]byte(e), &want)
		if got.Error != want.Code || got.Description != want.Description {
			t.Fatalf("got %+v, want %s", got, e)
		}
		if want.Details == nil && string(got.Details) != "null" {
			t.Fatalf("details %s, want null", got.Details)
		}
		if want.Details != nil && !jsonEqual(got.Details, want.Details) {
			t.Fatalf("details %s, want %s", got.Details, want.Details)
		}
	}
	c.send(`{"command":"echo","params":{}}`)
	if st, _ := c.read(); st != "ok" {
		t.Fatal(st)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestSocketProtectFlagAndParams(t *testing.T) {
	{
		ex := newFakeExec()
		addr := startSocket(t, &SocketServer{}, ex)
		c := dial(t, addr)
		c.send(`{"command":"echo","params":{"protection_access_token":"tok","url":"https://x/?a=1&b=<2>"}}`)
		_, b := c.readRaw()
		// URLs keep '&', '<', '>' unescaped, as oxd writes them.
		if !strings.Contains(string(b), `"url":"https://x/?a=1&b=<2>"`) {
			t.Errorf("answer %s", b)
		}
		calls := ex.Calls()
		if len(calls) != 1 || calls[0].ProtectionToken != "" {
			t.Fatalf("engine got %+v", calls)
		}
	}
}

func TestSocketGracefulShutdown(t *testing.T) {
	defer leakcheck.VerifyNone(t, goleak.IgnoreCurrent())
	ex := newFakeExec()
	srv := &SocketServer{exec: ex}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	busy := dial(t, addr)
	idle := dial(t, addr)
	half := dial(t, addr)
	idle.send(`{"command":"echo","params":{}}`)
	idle.read()
	half.write(`0030{"comm`)
	busy.send(`{"command":"slow","params":{}}`)
	<-ex.started
	waitConns(t, srv, 3)

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()

	// Idle and half-received connections are closed at once; the busy one
	// is kept until its command has answered.
	idle.expectClosed(10 * time.Second)
	half.expectClosed(10 * time.Second)
	select {
	case err := <-served:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepts")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a command in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(ex.release)
	if st, data := busy.read(); st != "ok" || string(data) != `{"slow":true}` {
		t.Fatalf("in-flight answer: %s %s", st, data)
	}
	busy.expectClosed(10 * time.Second)
	select {
	case err := <-shut:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestSocketShutdownDeadline(t *testing.T) {
	ex := newFakeExec()
	srv := &SocketServer{}
	addr := startSocket(t, srv, ex)
	c := dial(t, addr)
	c.send(`{"command":"slow","params":{}}`)
	<-ex.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	// Close cuts the connection and cancels the command.
	_ = srv.Close()
	c.expectClosed(10 * time.Second)
	waitConns(t, srv, 0)
}

func TestSocketServeConnPipe(t *testing.T) {
	srv := &SocketServer{exec: newFakeExec()}
	cli, sv := net.Pipe()
	done := make(chan struct{})
	go func() { srv.ServeConn(sv); close(done) }()
	tc := &testConn{t: t, c: cli}
	tc.br = newBufReader(cli)
	tc.send(`{"command":"echo","params":{"x":1}}`)
	if st, _ := tc.read(); st != "ok" {
		t.Fatal(st)
	}
	_ = cli.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return")
	}
	_ = srv.Close()
}

func TestListenAndServeAfterClose(t *testing.T) {
	srv := &SocketServer{exec: newFakeExec()}
	_ = srv.Close()
	if err := srv.ListenAndServe("127.0.0.1:0"); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("got %v", err)
	}
	if err := (&SocketServer{}).Serve(nopListener{}); err == nil {
		t.Fatal("Serve without an engine succeeded")
	}
}

type nopListener struct{}

func (nopListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (nopListener) Close() error              { return nil }
func (nopListener) Addr() net.Addr            { return &net.TCPAddr{} }
