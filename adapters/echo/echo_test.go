package oxdecho_test

import (
	"net/http"
	"net/http/httptest"
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
	return c.String(http.StatusOK, adaptertest.Hello(oxdecho.User(c)))
}

func item(c echo.Context) error {
	return c.String(http.StatusOK, adaptertest.Item(c.Request(), c.Param("id")))
}

func TestLoginThroughEcho(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		e := newEcho()
		oxdecho.Mount(e, auth, oxdecho.DefaultRoutes)
		e.GET(adaptertest.PrivatePath, hello, oxdecho.RequireLogin(auth))
		e.GET(adaptertest.LoggedOutPath, hello)
		return e
	})
	env.CheckLogin(t)
}

// Two concrete paths of one echo route are one UMA resource, with
// UMAProtect and with plain oxd middleware behind RouteTemplates; a guard
// declared for another template than its route's is refused.
func TestUMAOneResourcePerEchoRoute(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		e := newEcho()
		api := e.Group("/api")
		api.GET("/photos/:id", item, oxdecho.UMAProtect(auth, "GET /api/photos/:id", "photos.read"))
		v2 := e.Group("/v2", oxdecho.RouteTemplates)
		v2.GET("/items/:id", item, echo.WrapMiddleware(auth.UMAProtect("GET /v2/items/:id", "items.read")))
		e.GET("/photos/:id", item, oxdecho.UMAProtect(auth, "GET /photos/{id}", "photos.read"))
		return e
	})
	env.CheckOneResource(t, "/api/photos/", "/api/photos/:id", "1", "2")
	env.CheckOneResource(t, "/v2/items/", "/v2/items/:id", "a", "b")
	env.CheckRefused(t, "/photos/1")
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
