package oxdclient

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// envelopeSeeds are every answer body in the fixtures: socket answers and
// errors, captured oxd-server answers, HTTPS-extension bodies.
func envelopeSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, pattern := range []string{"socket-3.1/*.response.json", "socket-3.1/errors/*.response.json"} {
		files, _ := filepath.Glob(filepath.Join("testdata", filepath.FromSlash(pattern)))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			seeds = append(seeds, b)
		}
	}
	for _, pattern := range []string{"captured-oxd-php-logs/*.wire.txt", "socket-3.1/wire/*response.txt"} {
		files, _ := filepath.Glob(filepath.Join("testdata", filepath.FromSlash(pattern)))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			seeds = append(seeds, b[4:])
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "https-extension-3.1", "*.json"))
	for _, f := range files {
		var ex struct {
			Response struct {
				Body json.RawMessage `json:"body"`
			} `json:"response"`
		}
		b, _ := os.ReadFile(f)
		if json.Unmarshal(b, &ex) == nil {
			seeds = append(seeds, ex.Response.Body)
		}
	}
	if len(seeds) < 40 {
		tb.Fatalf("only %d seeds", len(seeds))
	}
	return seeds
}

// FuzzDecodeEnvelope: any answer body decodes into any answer type without
// panicking, to nil, an *Error with a code, or an ErrProtocol
// *TransportError whose message does not quote the body.
func FuzzDecodeEnvelope(f *testing.F) {
	for i, s := range envelopeSeeds(f) {
		f.Add(uint8(i), s)
	}
	f.Add(uint8(0), []byte(`{"status":"error","data":{"error":"need_info","details":{"ticket":5}}}`))
	f.Add(uint8(1), []byte(`{"status":"ok","data":{"claims":{"a":[1,{"b":null}]}}}`))
	var types []reflect.Type
	for _, ty := range commandTypes {
		types = append(types, ty[1])
	}
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		res := reflect.New(types[int(sel)%len(types)]).Interface()
		err := DecodeEnvelope("fuzz", body, res)
		if err == nil {
			return
		}
		var oe *Error
		var te *TransportError
		switch {
		case errors.As(err, &oe):
			if oe.Code == "" || oe.Command != "fuzz" {
				t.Fatalf("error without code: %+v", oe)
			}
			_, _ = oe.NeedInfo()
			_ = oe.HTTPStatus()
			_ = oe.Error()
		case errors.As(err, &te):
			if !errors.Is(err, ErrProtocol) || !te.Sent {
				t.Fatalf("unexpected transport error %v", err)
			}
			if len(body) >= 8 && strings.Contains(err.Error(), string(body)) {
				t.Fatal("error quotes the body")
			}
		default:
			t.Fatalf("unexpected error type %T", err)
		}
		if len(err.Error()) > 600 {
			t.Fatalf("error message of %d bytes", len(err.Error()))
		}
	})
}

func TestErrorMessageBounded(t *testing.T) {
	e := &Error{Code: strings.Repeat("c", 500), Description: strings.Repeat("é", 400), Command: "x"}
	msg := e.Error()
	if len(msg) > 420 || !strings.HasSuffix(msg, "…") || !utf8ValidString(msg) {
		t.Fatalf("%d bytes: %q", len(msg), msg)
	}
}

func utf8ValidString(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }
