package adaptertest

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/oxdgo/oxd"
)

// Serve is the handler of a template test's route: it answers the
// template of the route (route) and the template of the UMA decision that
// let the request through ("-" for none).
func Serve(route string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		uma := "-"
		if d, ok := oxd.UMAResult(r); ok {
			uma = d.Template
		}
		fmt.Fprintf(w, "route=%s uma=%s", route, uma)
	}
}

// Route is a route of a template test's router, whose handler is
// Serve(Template).
type Route struct {
	// Template is the route's template in the router's syntax.
	Template string
	// Path is a concrete path of a guarded route, where its RPT is
	// obtained; "" for an open route.
	Path string
}

// Routes are the routes of a template test's router by name.
type Routes map[string]Route

// StandardRoutes are the routes every adapter's template test router has,
// with their templates in the router's syntax:
//
//   - "photos": GET /photos/{id}, guarded with the scope photos.read by the
//     adapter's UMAProtect on the route;
//   - "admin": GET /admin/{id}, the same with admin.all;
//   - "items": GET /api/items/{id}, items.read, guarded in the way that runs
//     earliest in the router (a sub-router's or group's middleware where
//     there is one);
//   - "plain": GET /v2/items/{id}, items.read, plain oxd middleware behind
//     the adapter's RouteTemplates;
//   - "public": an open wildcard route GET /public/*.
func StandardRoutes(photos, admin, items, plain, public string) Routes {
	return Routes{
		"photos": {photos, "/photos/1"},
		"admin":  {admin, "/admin/1"},
		"items":  {items, "/api/items/1"},
		"plain":  {plain, "/v2/items/1"},
		"public": {Template: public},
	}
}

// StandardCases are the cases of every router setup of a template test
// on StandardRoutes: each guarded route opens with its own RPT and only
// with it.
var StandardCases = Cases(
	"/photos/1 photos 200 photos",
	"/photos/2 photos 200 photos",
	"/photos/2 - 401 photos",
	"/admin/1 photos 401 admin",
	"/api/items/1 items 200 items",
	"/api/items/1 photos 401 items",
	"/api/items/1 plain 401 items",
	"/v2/items/1 plain 200 plain",
	"/v2/items/1 items 401 plain",
	"/public/a photos 200 public",
)

// Case is one request of a template test.
type Case struct {
	// Path is sent as is (dot segments, escapes and double slashes reach
	// the server unchanged).
	Path string
	// RPT names the route whose RPT is sent as Bearer token ("" for
	// none).
	RPT string
	// Status is the expected status.
	Status int
	// Route names the route that serves the request, "" when none does
	// (a 404, a redirect). When it is a guarded route, the UMA decision
	// must be for it: every uma_rs_check_access the request causes names
	// its template, and a 200 body says that the decision's template is
	// the route's.
	Route string
}

// Setup is one router setup of a template test.
type Setup struct {
	Name string
	// Router builds the router, with the routes of Routes.
	Router func(*oxd.Auth) http.Handler
	// Routes are the routes of Router; nil: the test's.
	Routes Routes
	// Cases are checked after StandardCases and the test's own, one a
	// line as [Cases] reads them.
	Cases []string
}

// CheckTemplates checks every setup on a bench of its own: it obtains an
// RPT for each guarded route (through its challenge), then checks
// StandardCases, the cases of every setup (each as [Cases] reads it) and
// the setup's own Cases.
func CheckTemplates(t *testing.T, routes Routes, cases []string, setups ...Setup) {
	for _, s := range setups {
		t.Run(s.Name, func(t *testing.T) {
			rs := s.Routes
			if rs == nil {
				rs = routes
			}
			e := New(t, s.Router)
			rpts := map[string]string{}
			for name, r := range rs {
				if r.Path != "" {
					rpts[name] = e.RPT(t, r.Path)
				}
			}
			all := append(append(slices.Clone(StandardCases), Cases(cases...)...), Cases(s.Cases...)...)
			e.Check(t, rs, rpts, all)
		})
	}
}

// Check sends every case, with the RPTs by route name rpts, to a router
// with routes and checks it; then that the middleware logged nothing at
// ERROR and no RPT at any level.
func (e *Env) Check(t *testing.T, routes Routes, rpts map[string]string, cases []Case) {
	t.Helper()
	for _, c := range cases {
		h := http.Header{"Accept": {"application/json"}}
		if c.RPT != "" {
			h.Set("Authorization", "Bearer "+rpts[c.RPT])
		}
		route, known := routes[c.Route]
		if c.Route != "" && !known || c.RPT != "" && rpts[c.RPT] == "" {
			t.Fatalf("case %+v: unknown route or RPT", c)
		}
		guarded := route.Path != ""
		before := len(e.CheckedPaths())
		res := e.Do(t, http.MethodGet, c.Path, h)
		checked := e.CheckedPaths()[before:]
		where := fmt.Sprintf("GET %s (RPT of %q)", c.Path, c.RPT)
		if res.Status == http.StatusInternalServerError {
			t.Errorf("%s: 500 %q", where, res.Body)
			continue
		}
		if res.Status != c.Status {
			t.Errorf("%s: status %d, want %d (body %q, Location %q)", where, res.Status, c.Status, res.Body, res.Header.Get("Location"))
		}
		for _, p := range checked {
			if !guarded || p != route.Template {
				t.Errorf("%s: uma_rs_check_access for %q; the route that serves it is %q %q", where, p, c.Route, route.Template)
			}
		}
		if res.Status == http.StatusOK {
			uma := "-"
			if guarded {
				uma = route.Template
			}
			if want := fmt.Sprintf("route=%s uma=%s", route.Template, uma); res.Body != want {
				t.Errorf("%s: served %q, want %q", where, res.Body, want)
			}
		}
		if res.Status == http.StatusUnauthorized && guarded && len(checked) == 0 {
			t.Errorf("%s: 401 without a decision for %q", where, route.Template)
		}
	}
	if l := e.Logs(slog.LevelError); len(l) > 0 {
		t.Errorf("logged at ERROR:\n%s", strings.Join(l, "\n"))
	}
	for _, l := range e.Logs(slog.LevelDebug) {
		for name, rpt := range rpts {
			if strings.Contains(l, rpt) {
				t.Errorf("the RPT of %q logged: %s", name, strings.ReplaceAll(l, rpt, "<RPT>"))
			}
		}
	}
}

// Cases parses cases written one a line as "path rpt status route", with
// "-" for no RPT and for no serving route, e.g.
// "/photos/../admin/1 photos 401 admin". It panics on a malformed line.
func Cases(lines ...string) []Case {
	out := make([]Case, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		var status int
		if len(f) != 4 {
			panic("adaptertest: malformed case " + l)
		}
		if _, err := fmt.Sscanf(f[2], "%d", &status); err != nil {
			panic("adaptertest: malformed case " + l)
		}
		for _, i := range []int{1, 3} {
			if f[i] == "-" {
				f[i] = ""
			}
		}
		out = append(out, Case{Path: f[0], RPT: f[1], Status: status, Route: f[3]})
	}
	return out
}
