package adaptertest

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/oxdgo/oxd"
)

// Served is the body a route handler of a template test writes: the
// template of the route (route) and the template of the UMA decision that
// let the request through ("-" for none).
func Served(r *http.Request, route string) string {
	uma := "-"
	if d, ok := oxd.UMAResult(r); ok {
		uma = d.Template
	}
	return fmt.Sprintf("route=%s uma=%s", route, uma)
}

// Case is one request of a template test.
type Case struct {
	// Path is sent as is (dot segments, escapes and double slashes
	// reach the server unchanged).
	Path string
	// RPT is the Bearer token sent ("" for none).
	RPT string
	// Status is the expected status.
	Status int
	// Route is the template of the route that serves the request, ""
	// when none does (a 404, a redirect). When it is a guarded route, the
	// UMA decision must be for it: every uma_rs_check_access the request
	// causes names it, and a 200 body is Served(r, Route) with the
	// decision's template equal to Route.
	Route string
	// Guarded tells that Route is UMA-protected.
	Guarded bool
}

// Check sends every case and checks it; then that the middleware logged
// nothing at ERROR.
func (e *Env) Check(t *testing.T, cases []Case) {
	t.Helper()
	for _, c := range cases {
		h := http.Header{"Accept": {"application/json"}}
		if c.RPT != "" {
			h.Set("Authorization", "Bearer "+c.RPT)
		}
		before := len(e.CheckedPaths())
		res := e.Do(t, http.MethodGet, c.Path, h)
		checked := e.CheckedPaths()[before:]
		where := fmt.Sprintf("GET %s (rpt %t)", c.Path, c.RPT != "")
		if res.Status == http.StatusInternalServerError {
			t.Errorf("%s: 500 %q", where, res.Body)
			continue
		}
		if res.Status != c.Status {
			t.Errorf("%s: status %d, want %d (body %q, Location %q)", where, res.Status, c.Status, res.Body, res.Header.Get("Location"))
		}
		for _, p := range checked {
			if !c.Guarded || p != c.Route {
				t.Errorf("%s: uma_rs_check_access for %q; the route that serves it is %q (guarded %t)", where, p, c.Route, c.Guarded)
			}
		}
		if res.Status == http.StatusOK {
			uma := "-"
			if c.Guarded {
				uma = c.Route
			}
			if want := fmt.Sprintf("route=%s uma=%s", c.Route, uma); res.Body != want {
				t.Errorf("%s: served %q, want %q", where, res.Body, want)
			}
		}
		if res.Status == http.StatusUnauthorized && c.Guarded && len(checked) == 0 {
			t.Errorf("%s: 401 without a decision for %q", where, c.Route)
		}
	}
	if l := e.Logs(slog.LevelError); len(l) > 0 {
		t.Errorf("logged at ERROR:\n%s", strings.Join(l, "\n"))
	}
}
