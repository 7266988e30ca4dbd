package oxdserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oxdgo/oxd/internal/wire"
)

func socketSeeds() []string {
	return []string{
		fxGetRPRequest,
		fxNonASCIIRequest,
		fxRemoveSiteRequest + fxGetRPRequest,
		`0030{"command":"echo","params":{}}0030{"command":"echo","params":{}}`,
		`abcd`,
		`0000`,
		`0003   `,
		`0050{"command":"echo"`,
		`0009{not json`,
		`0032{"command":"panic","params":{}}`,
		`0039{"command":"big","params":{"n":9990}}`,
		`0020{"command":"get_rp"}`,
		`0013{"params":{}}`,
		"0004\xff\xfe\xfd\xfc",
		"0002😀",
		"0001😀",
	}
}

// FuzzSocketServer feeds arbitrary bytes to one connection of the listener
// (over net.Pipe) in both modes. The server must neither panic nor hang:
// once the client side is closed, the handler returns. Every answer is a
// well-formed frame holding a JSON envelope.
func FuzzSocketServer(f *testing.F) {
	for _, s := range socketSeeds() {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, input []byte, quirks bool) {
		srv := &SocketServer{
			exec:           newFakeExec(),
			Quirks314:      quirks,
			ReadTimeout:    2 * time.Second,
			IdleTimeout:    2 * time.Second,
			CommandTimeout: time.Second, // "slow" waits for it
		}
		defer srv.Close()
		cli, sv := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeConn(sv)
		}()
		// Drain and parse the answers while writing.
		answers := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(cli)
			answers <- b
		}()
		_ = cli.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = cli.Write(input)
		// Give the server a moment to answer what it has, then hang up.
		time.Sleep(time.Millisecond)
		_ = cli.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection handler did not return for input %q", input)
		}
		out := <-answers
		checkFrames(t, out)
	})
}

// checkFrames checks that b is a sequence of complete frames of JSON
// envelopes (the last one may be cut by the client's hang-up).
func checkFrames(t *testing.T, b []byte) {
	for len(b) > 0 {
		n, err := wire.ReadPrefix(bytes.NewReader(b))
		if err != nil {
			if len(b) < 4 {
				return
			}
			t.Fatalf("bad answer prefix in %q: %v", b, err)
		}
		rest := b[4:]
		units, i := 0, 0
		for i < len(rest) && units < n {
			r, size := utf8.DecodeRune(rest[i:])
			if r >= 0x10000 {
				units += 2
			} else {
				units++
			}
			i += size
		}
		if units < n {
			return // cut by the hang-up
		}
		var env struct {
			Status string          `json:"status"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(rest[:i], &env); err != nil || (env.Status != "ok" && env.Status != "error") {
			t.Fatalf("answer is not an envelope: %q (%v)", rest[:i], err)
		}
		b = rest[i:]
	}
}

// FuzzDecodeCommand checks the envelope decoder against a straightforward
// reading of the rules: it never panics, accepts exactly the JSON objects
// whose keys are among "command" (string or null) and "params", and
// returns params only when they are a JSON object.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{
		`{"command":"get_rp","params":{"oxd_id":"x"}}`,
		`{"command":"GET_RP","params":null}`,
		`{"command":null}`,
		`{"params":[]}`,
		`{"command":1}`,
		`{"command":"a","params":{},"x":1}`,
		`{"command":"a","command":"b"}`,
		`  {"command":"a"}  `,
		`[]`, `""`, `null`, ``, `   `, `{`, `{}}`,
		"{\"command\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := feDecodeCommand(b)
		trimmed := bytes.TrimSpace(b)
		if len(trimmed) == 0 {
			if err != errFEBlankCommand {
				t.Fatalf("blank input: %v", err)
			}
			return
		}
		var top map[string]any
		ok := json.Valid(trimmed) && json.Unmarshal(trimmed, &top) == nil && top != nil
		if ok {
			for k, v := range top {
				switch k {
				case "command":
					if _, isStr := v.(string); !isStr && v != nil {
						ok = false
					}
				case "params":
				default:
					ok = false
				}
			}
		}
		if ok != (err == nil) {
			t.Fatalf("input %q: decoder error %v, expected valid=%v", b, err, ok)
		}
		if err != nil {
			if err != errFEMalformedCommand {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if name, _ := top["command"].(string); cmd.Name != strings.ToLower(strings.TrimSpace(name)) {
			t.Fatalf("name %q from %q", cmd.Name, name)
		}
		_, isObj := top["params"].(map[string]any)
		if cmd.HasParams != isObj {
			t.Fatalf("HasParams %v for %q", cmd.HasParams, b)
		}
		if cmd.HasParams {
			var p map[string]any
			if err := json.Unmarshal(cmd.Params, &p); err != nil || p == nil {
				t.Fatalf("params %q do not decode to an object: %v", cmd.Params, err)
			}
		}
	})
}
