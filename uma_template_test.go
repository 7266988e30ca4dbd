package oxd

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
)

func TestRouteTemplate(t *testing.T) {
	for pattern, want := range map[string]string{
		"":                      "",
		"/photos/{id}":          "/photos/{id}",
		"GET /photos/{id}":      "/photos/{id}",
		"POST  /a":              "/a",
		"GET example.com/x/{y}": "example.com/x/{y}",
		"/static/":              "/static/",
		"/files/{path...}":      "/files/{path...}",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Pattern = pattern
		assert.Equal(t, want, routeTemplate(r), pattern)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Pattern = "GET /a/{id}"
	r = r.WithContext(WithRouteTemplate(r.Context(), "/a/:id"))
	assert.Equal(t, "/a/:id", routeTemplate(r), "the adapter's template wins")
	r = r.WithContext(WithRouteTemplate(r.Context(), ""))
	assert.Equal(t, "/a/{id}", routeTemplate(r), "an empty template falls back to Pattern")
}

// The route template can come from a router adapter through
// WithRouteTemplate (gin FullPath style); it wins over Request.Pattern.
func TestUMAWithRouteTemplate(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	guard := rg.auth.UMAProtect("GET /items/:id", "view")(rg.page("items"))
	// A tiny "router": strips a prefix and sets the template, as an adapter would.
	rg.mux.Handle("GET /items/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		guard.ServeHTTP(w, r.WithContext(WithRouteTemplate(r.Context(), "/items/:id")))
	}))
	rg.register()
	rpt := rg.rpt("GET", "/items/1")
	assert.Equal(t, http.StatusOK, rg.do("GET", "/items/2", bearer(rpt)).status)
	assert.Equal(t, "/items/:id", rg.tr.lastCheck().Path)
}

// A request whose route template differs from the guard's (or that has
// none) is refused with 500 every time, but a flood of them writes a
// bounded number of log lines: at most one per kind and template and
// mismatchLogInterval, with the count of the refusals not logged. Every
// refusal is counted.
func TestUMATemplateMismatchLogRateLimited(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{})
	guard := rg.auth.UMAProtect("GET /photos/{id}", "view")(rg.page("photos"))
	rg.mux.Handle("GET /photos/{id}", guard)
	rg.register()
	rpt := rg.rpt("GET", "/photos/1")
	logLines := func() int { return strings.Count(rg.logs.String(), "UMA configuration error; request denied") }

	serve := func(pattern string) int {
		r := httptest.NewRequest("GET", "/photos/1/../../admin/1", nil)
		r.Pattern = pattern
		r.Header.Set("Authorization", "Bearer "+rpt)
		w := httptest.NewRecorder()
		guard.ServeHTTP(w, r)
		return w.Code
	}
	const n = 1000
	for i := range n {
		pattern := "GET /admin/{id}"
		if i%2 == 1 {
			pattern = "" // no template at all
		}
		require.Equal(t, http.StatusInternalServerError, serve(pattern))
	}
	assert.Zero(t, rg.pageCalls("photos"), "never passed")
	assert.Equal(t, uint64(n), rg.auth.uma.mismatches.count.Load(), "every refusal counted")
	assert.Equal(t, 2, logLines(), "one line per kind of mismatch")
	assert.Zero(t, rg.tr.count(oxdclient.CmdUMARSCheckAccess)-1, "no oxd call for a refused request (one for rg.rpt)")

	// After the interval, one more line that says how many were not logged.
	rg.clock.Advance(mismatchLogInterval + time.Second)
	require.Equal(t, http.StatusInternalServerError, serve("GET /admin/{id}"))
	assert.Equal(t, 3, logLines())
	assert.Contains(t, rg.logs.String(), fmt.Sprintf("suppressed=%d", n/2-1))

	// The guard's own route still works.
	r := httptest.NewRequest("GET", "/photos/1", nil)
	r.Pattern = "GET /photos/{id}"
	r.Header.Set("Authorization", "Bearer "+rpt)
	w := httptest.NewRecorder()
	guard.ServeHTTP(w, r)
	assert.Equal(t, http.StatusOK, w.Code)
}
