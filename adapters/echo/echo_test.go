package oxdecho_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"github.com/oxdgo/oxd"
	oxdecho "github.com/oxdgo/oxd/adapters/echo"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
)

func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	return e
}

func hello(c echo.Context) error {
	u, ok := oxdecho.User(c)
	if !ok {
		return c.String(http.StatusInternalServerError, "no user")
	}
	return c.String(http.StatusOK, "hello "+u.Name())
}

func item(c echo.Context) error {
	d, _ := oxd.UMAResult(c.Request())
	return c.String(http.StatusOK, fmt.Sprintf("item %s via %s", c.Param("id"), d.Template))
}

func TestLoginThroughEcho(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		e := newEcho()
		oxdecho.Mount(e, auth, oxdecho.DefaultRoutes)
		e.GET("/private", hello, oxdecho.RequireLogin(auth))
		e.GET(adaptertest.LoggedOutPath, func(c echo.Context) error { return c.String(http.StatusOK, "bye") })
		return e
	})
	res := env.Login(t, "/private", "bob", "bob-password")
	if res.Status != http.StatusOK || res.Body != "hello Bob Example" {
		t.Fatalf("after login: %d %q", res.Status, res.Body)
	}
	if res := env.Navigate(t, "/logout"); res.Status != http.StatusMethodNotAllowed {
		t.Fatalf("GET /logout: %d", res.Status)
	}
	res = env.Logout(t)
	if loc := res.Header.Get("Location"); res.Status != http.StatusSeeOther || !strings.HasPrefix(loc, env.Server.OP.Issuer()) {
		t.Fatalf("logout: %d %q", res.Status, loc)
	}
	res = env.Do(t, http.MethodGet, "/private", http.Header{"Accept": {"application/json"}})
	if res.Status != http.StatusUnauthorized || strings.Contains(res.Body, "hello") {
		t.Fatalf("after logout, API request: %d %q", res.Status, res.Body)
	}
}

// Two concrete paths of one echo route are one UMA resource.
func TestUMAOneResourcePerEchoRoute(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		e := newEcho()
		api := e.Group("/api")
		api.GET("/photos/:id", item, oxdecho.UMAProtect(auth, "GET /api/photos/:id", "photos.read"))
		// Plain oxd middleware behind RouteTemplates works the same.
		v2 := e.Group("/v2", oxdecho.RouteTemplates)
		v2.GET("/items/:id", item, echo.WrapMiddleware(auth.UMAProtect("GET /v2/items/:id", "items.read")))
		return e
	})
	rpt := env.RPT(t, "/api/photos/1")
	for _, id := range []string{"1", "2"} {
		res := env.WithRPT(t, "/api/photos/"+id, rpt)
		if want := "item " + id + " via /api/photos/:id"; res.Status != http.StatusOK || res.Body != want {
			t.Fatalf("GET /api/photos/%s with the RPT: %d %q, want %q", id, res.Status, res.Body, want)
		}
	}
	rpt2 := env.RPT(t, "/v2/items/a")
	if res := env.WithRPT(t, "/v2/items/b", rpt2); res.Status != http.StatusOK || res.Body != "item b via /v2/items/:id" {
		t.Fatalf("/v2/items/b: %d %q", res.Status, res.Body)
	}
	got := env.ProtectedPaths()
	slices.Sort(got)
	if !slices.Equal(got, []string{"/api/photos/:id", "/v2/items/:id"}) {
		t.Fatalf("registered resources %q", got)
	}
	for _, p := range env.CheckedPaths() {
		if p != "/api/photos/:id" && p != "/v2/items/:id" {
			t.Fatalf("uma_rs_check_access with path %q", p)
		}
	}
	res := env.Do(t, http.MethodGet, "/api/photos/3", nil)
	if res.Status != http.StatusUnauthorized || res.Body != "" {
		t.Fatalf("no RPT: %d %q", res.Status, res.Body)
	}
}

func TestUMATemplateMismatchRefused(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		e := newEcho()
		e.GET("/photos/:id", item, oxdecho.UMAProtect(auth, "GET /photos/{id}", "photos.read"))
		return e
	})
	if res := env.Do(t, http.MethodGet, "/photos/1", http.Header{"Accept": {"application/json"}}); res.Status != http.StatusInternalServerError {
		t.Fatalf("mismatched template: %d, want 500", res.Status)
	}
}

// The session cookie that RequireLogin's session middleware writes reaches
// the response when the echo handler writes through c.Response().
func TestSessionCookieThroughEcho(t *testing.T) {
	sessions := scs.New()
	e := newEcho()
	e.GET("/put", func(c echo.Context) error {
		sessions.Put(c.Request().Context(), "k", "v")
		return c.String(http.StatusOK, "stored")
	}, echo.WrapMiddleware(sessions.LoadAndSave))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/put", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "stored" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	if c := rec.Result().Header.Get("Set-Cookie"); !strings.HasPrefix(c, sessions.Cookie.Name+"=") {
		t.Fatalf("no session cookie: %q", c)
	}
}
