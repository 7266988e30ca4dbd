package oxdserver_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/oxdgo/oxd/internal/wire"
)

// lastServerSpanParent returns the parent of the last ended server span.
func lastServerSpanParent(t *testing.T, f *telFixture) trace.SpanContext {
	t.Helper()
	ended := f.spans.Ended()
	for i := len(ended) - 1; i >= 0; i-- {
		if ended[i].SpanKind() == trace.SpanKindServer {
			return ended[i].Parent()
		}
	}
	t.Fatal("no server span")
	return trace.SpanContext{}
}

// TestTraceContextOnlyExactKeys: the socket listener reads the caller's
// trace context only from the exact top-level keys "traceparent" and
// "tracestate" of params, each present once and holding a string. Keys in
// another case (encoding/json matches struct fields case-insensitively),
// keys of nested objects and duplicated keys (which parsers resolve
// differently) make a root span, as a malformed value does. Over HTTPS, a
// request with more than one traceparent header makes a root span, and
// tracestate headers are combined (W3C Trace Context §3.3.1.1).
func TestTraceContextOnlyExactKeys(t *testing.T) {
	f := newTelFixture(t)
	c, err := net.Dial("tcp", f.sockAddr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	br := bufio.NewReader(c)
	const tid = "0af7651916cd43dd8448eb211c80319c"
	valid := `"00-` + tid + `-b7ad6b7169203331-01"`
	send := func(params string) {
		t.Helper()
		env := `{"command":"get_client_token","params":` + params + `}`
		frame, err := wire.AppendFrame(nil, []byte(env))
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
		_, err = c.Write(frame)
		require.NoError(t, err)
		payload, err := wire.ReadFrame(br)
		require.NoError(t, err)
		var resp struct {
			Status string `json:"status"`
		}
		require.NoError(t, json.Unmarshal(payload, &resp), "the connection answers")
	}
	op := `"op_host":"` + f.op.Issuer() + `"`
	for name, params := range map[string]string{
		"title case":             `{` + op + `,"Traceparent":` + valid + `}`,
		"upper case":             `{` + op + `,"TRACEPARENT":` + valid + `}`,
		"mixed case":             `{` + op + `,"traceParent":` + valid + `}`,
		"nested, cased at top":   `{` + op + `,"x":{"traceparent":"garbage"},"TraceParent":` + valid + `}`,
		"nested only":            `{` + op + `,"x":{"traceparent":` + valid + `}}`,
		"duplicate, valid last":  `{` + op + `,"traceparent":"garbage","traceparent":` + valid + `}`,
		"duplicate, valid first": `{` + op + `,"traceparent":` + valid + `,"traceparent":"garbage"}`,
		"duplicate, both valid":  `{` + op + `,"traceparent":` + valid + `,"traceparent":` + valid + `}`,
		"cased duplicate":        `{` + op + `,"traceparent":"garbage","TRACEPARENT":` + valid + `}`,
		"in an array":            `[{"traceparent":` + valid + `}]`,
		"duplicate tracestate":   `{` + op + `,"traceparent":` + valid + `,"tracestate":"a=1","tracestate":"b=2"}`,
		"number tracestate":      `{` + op + `,"traceparent":` + valid + `,"tracestate":5}`,
		"escaped key":            `{` + op + `,"x":"\"traceparent\"","trace\u0070arent":` + valid + `}`,
	} {
		send(params)
		assert.False(t, lastServerSpanParent(t, f).IsValid(), "%s: the span joined the caller's trace", name)
	}
	// Control: the exact key once joins the caller's trace, also after
	// other keys and with a tracestate.
	send(`{` + op + `,"x":{"y":[1,{"z":null}]},"traceparent":` + valid + `,"tracestate":"v=1"}`)
	p := lastServerSpanParent(t, f)
	require.True(t, p.IsValid(), "the exact traceparent key is read")
	assert.Equal(t, tid, p.TraceID().String())
	assert.Equal(t, "v=1", p.TraceState().String())

	// HTTPS headers.
	post := func(h http.Header) trace.SpanContext {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, f.httpsURL+"/get-client-token", strings.NewReader(`{`+op+`}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		for k, vs := range h {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		res, err := f.https.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return lastServerSpanParent(t, f)
	}
	tp := strings.Trim(valid, `"`)
	other := "00-" + strings.Repeat("1", 32) + "-b7ad6b7169203331-01"
	assert.False(t, post(http.Header{"Traceparent": {tp, other}}).IsValid(), "two traceparent headers")
	assert.False(t, post(http.Header{"Traceparent": {tp, tp}}).IsValid(), "a repeated traceparent header")
	p = post(http.Header{"Traceparent": {tp}, "Tracestate": {"a=1", "b=2"}})
	require.True(t, p.IsValid())
	assert.Equal(t, "a=1,b=2", p.TraceState().String(), "tracestate headers are combined")
}

// TestUnsampledCallerStillCounted: a caller whose traceparent asks for no
// sampling (flags 00) may, through the sampler's parent-based decision,
// keep its commands' spans from being recorded (W3C lets a receiver follow
// the flag; the SDK's default sampler does), but never out of the metrics
// or the logs: every command is counted and logged whatever the caller's
// flags.
func TestUnsampledCallerStillCounted(t *testing.T) {
	f := newTelFixture(t)
	sc := f.dialSocket(t)
	const n = 5
	for i := 0; i < n; i++ {
		oe := sc.do(t, "get_client_token", map[string]any{"op_host": f.op.Issuer()},
			map[string]any{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}, nil)
		require.NotNil(t, oe)
	}
	for _, s := range f.spans.Ended() {
		assert.NotEqual(t, "0af7651916cd43dd8448eb211c80319c", s.SpanContext().TraceID().String(),
			"the default sampler recorded a span the caller asked not to sample")
	}
	m := metricsOf(t, f.reader)
	assert.Equal(t, uint64(n), histCount(m["oxd.server.command.duration"], map[string]string{"oxd.command": "get_client_token", "oxd.listener": "socket"}),
		"every command is counted")
	assert.GreaterOrEqual(t, strings.Count(f.logs.String(), `"command":"get_client_token"`), n, "every command is logged")
}
