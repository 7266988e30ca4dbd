package oxd

import (
	"context"
	"net/http"
	"strings"
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
