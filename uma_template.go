package oxd

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type routeTemplateKey struct{}

// WithRouteTemplate returns ctx carrying the route template of the
// request, for routers that do not set http.Request.Pattern. Router
// adapters call it before UMAProtect runs, for example in gin:
//
//	ctx := oxd.WithRouteTemplate(c.Request.Context(), c.FullPath())
//	c.Request = c.Request.WithContext(ctx)
//
// An empty template removes nothing: UMAProtect then falls back to
// Request.Pattern, and with neither it denies the request.
func WithRouteTemplate(ctx context.Context, template string) context.Context {
	return context.WithValue(ctx, routeTemplateKey{}, template)
}

// routeTemplate returns the route template UMAProtect checks a request
// against: the value of [WithRouteTemplate], else the path part of
// Request.Pattern (http.ServeMux since Go 1.22, chi v5.1+), without a
// method. It is "" when the router provides neither.
func routeTemplate(r *http.Request) string {
	if t, _ := r.Context().Value(routeTemplateKey{}).(string); t != "" {
		return t
	}
	if r.Pattern == "" {
		return ""
	}
	_, t := splitPattern(r.Pattern)
	return t
}

// splitPattern splits a ServeMux-style pattern "[METHOD ]template".
func splitPattern(p string) (method, template string) {
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		return p[:i], strings.TrimLeft(p[i:], " \t")
	}
	return "", p
}

// mismatchLogInterval is how often a guard logs that requests were
// refused for its template: once per template and interval at most.
const mismatchLogInterval = time.Minute

// templateMismatches counts the requests a guard refused because the
// router reported no template or another route's template, and rate-limits
// the log lines about them. Such requests can be made by anyone (with
// chi's CleanPath, a path with ".." routes elsewhere), so logging each at
// ERROR would let a client flood the log. The map is keyed by the kind of
// mismatch (no template, another template) and the declared template,
// which comes from the application's code: it is bounded.
type templateMismatches struct {
	count atomic.Uint64 // requests refused, since New

	mu   sync.Mutex
	last map[string]mismatchLog // by kind and declared template
}

// mismatchLog is the state of one declared template's log line.
type mismatchLog struct {
	at         time.Time // last line written
	suppressed uint64    // refusals since then, not logged
}

func (m *templateMismatches) init() { m.last = map[string]mismatchLog{} }

// record counts one refusal under key and reports whether
// it is to be logged, with the number of refusals not logged since the
// previous line.
func (m *templateMismatches) record(key string, now time.Time) (logIt bool, suppressed uint64) {
	m.count.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	l, seen := m.last[key]
	if seen && now.Sub(l.at) < mismatchLogInterval && !now.Before(l.at) {
		l.suppressed++
		m.last[key] = l
		return false, 0
	}
	m.last[key] = mismatchLog{at: now}
	return true, l.suppressed
}

// templateMatches checks that the route the router matched is the one the
// guard was declared for, so a declaration can never guard another route
// than its own. Otherwise it answers 500 through the error handler
// (ErrUMAConfig, as for any configuration error), counts the refusal and
// logs it at most once per mismatchLogInterval, and returns false.
func (g *umaGuard) templateMatches(w http.ResponseWriter, r *http.Request, declared string) bool {
	tmpl := routeTemplate(r)
	if tmpl == declared {
		return true
	}
	var err error
	kind := "other"
	if tmpl == "" {
		kind = "none"
		err = fmt.Errorf("%w: no route template for the request (use Request.Pattern, a router adapter, or oxd.WithRouteTemplate); declared %q", ErrUMAConfig, declared)
	} else {
		err = fmt.Errorf("%w: the request's route template %q is not the declared %q", ErrUMAConfig, sanitizeText(tmpl, 200), declared)
	}
	if logIt, suppressed := g.mismatches.record(kind+" "+declared, g.now()); logIt {
		g.log.LogAttrs(r.Context(), slog.LevelError, "oxd: UMA configuration error; request denied (logged once a minute per template)",
			slog.String("method", r.Method), slog.String("template", declared), slog.String("error", err.Error()),
			slog.Uint64("suppressed", suppressed))
	}
	setNoStore(w)
	g.errh(w, r, http.StatusInternalServerError, err)
	return false
}
