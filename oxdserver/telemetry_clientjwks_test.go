package oxdserver_test

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/oxdgo/oxd/oxdserver"
)

// TestClientJWKSRouteObserved: the public client JWKS route of the HTTPS
// extension has a server span (the caller's trace context as parent) and
// its duration in oxd.server.command.duration under oxd.command
// "client_jwks", like every other HTTPS request; under a scan of many
// oxd_ids the label set stays fixed and no oxd_id is in a label or an
// attribute.
func TestClientJWKSRouteObserved(t *testing.T) {
	f := newTelFixture(t)
	const n = 200
	ids := make([]string, 0, n+1)
	get := func(method, id string, headers map[string]string) int {
		t.Helper()
		req, err := http.NewRequest(method, f.httpsURL+oxdserver.ClientJWKSPathPrefix+id, nil)
		require.NoError(t, err)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res, err := f.https.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	for range n {
		id := rand.Text()
		ids = append(ids, id)
		require.Equal(t, http.StatusNotFound, get(http.MethodGet, id, nil))
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"
	traced := rand.Text()
	ids = append(ids, traced)
	require.Equal(t, http.StatusNotFound, get(http.MethodGet, traced, map[string]string{"traceparent": parent}))
	require.Equal(t, http.StatusMethodNotAllowed, get(http.MethodPost, rand.Text(), nil))

	m := metricsOf(t, f.reader)
	cmd := m["oxd.server.command.duration"]
	assert.Equal(t, uint64(n+1), histCount(cmd, map[string]string{"oxd.command": "client_jwks", "oxd.listener": "https", "oxd.result": "not_found"}))
	assert.Equal(t, uint64(1), histCount(cmd, map[string]string{"oxd.command": "client_jwks", "oxd.listener": "https", "oxd.result": "method_not_allowed"}))
	h, ok := cmd.Data.(metricdata.Histogram[float64])
	require.True(t, ok)
	series := 0
	for _, dp := range h.DataPoints {
		if v, _ := dp.Attributes.Value("oxd.command"); v.AsString() == "client_jwks" {
			series++
		}
	}
	assert.Equal(t, 2, series, "one series per outcome, whatever the oxd_ids")

	var routeSpans []sdktrace.ReadOnlySpan
	for _, s := range f.spans.Ended() {
		if s.Name() == "GET /client-jwks/{oxd_id}" {
			routeSpans = append(routeSpans, s)
		}
	}
	require.Len(t, routeSpans, n+2)
	var withParent int
	for _, s := range routeSpans {
		assert.Equal(t, "/client-jwks/{oxd_id}", attrOf(s, "http.route"))
		if s.Parent().TraceID().String() == traceID {
			withParent++
			assert.Equal(t, "404", attrOf(s, "http.response.status_code"))
			assert.Equal(t, "not_found", attrOf(s, "oxd.result"))
		}
	}
	assert.Equal(t, 1, withParent, "the caller's traceparent is the span's parent")

	// Spans and metric labels (the debug log names the path, as for
	// every request).
	text := f.telemetryText(t)
	for _, where := range []string{"spans", "metrics"} {
		s := text[where]
		for _, id := range ids {
			if strings.Contains(s, id) {
				t.Fatalf("an oxd_id is in %s", where)
			}
		}
	}
}
