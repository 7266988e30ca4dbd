package oxdgin_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/gin-gonic/gin"

	"github.com/oxdgo/oxd"
	oxdgin "github.com/oxdgo/oxd/adapters/gin"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
)

func init() { gin.SetMode(gin.TestMode) }

func hello(c *gin.Context) {
	u, ok := oxdgin.User(c)
	if !ok {
		c.String(http.StatusInternalServerError, "no user")
		return
	}
	c.String(http.StatusOK, "hello %s", u.Name())
}

func item(c *gin.Context) {
	d, _ := oxd.UMAResult(c.Request)
	c.String(http.StatusOK, "item %s via %s", c.Param("id"), d.Template)
}

func TestLoginThroughGin(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := gin.New()
		oxdgin.Mount(r, auth, oxdgin.DefaultRoutes)
		r.GET("/private", oxdgin.RequireLogin(auth), hello)
		r.GET(adaptertest.LoggedOutPath, func(c *gin.Context) { c.String(http.StatusOK, "bye") })
		return r
	})
	res := env.Login(t, "/private", "alice", "alice-password")
	if res.Status != http.StatusOK || res.Body != "hello Alice Example" {
		t.Fatalf("after login: %d %q", res.Status, res.Body)
	}
	// An API request with the session passes too.
	if res := env.Do(t, http.MethodGet, "/private", http.Header{"Accept": {"application/json"}}); res.Status != http.StatusOK {
		t.Fatalf("API request with the session: %d", res.Status)
	}
	if res := env.Navigate(t, "/logout"); res.Status != http.StatusMethodNotAllowed {
		t.Fatalf("GET /logout: %d", res.Status)
	}
	res = env.Logout(t)
	if loc := res.Header.Get("Location"); res.Status != http.StatusSeeOther || !strings.HasPrefix(loc, env.Server.OP.Issuer()) {
		t.Fatalf("logout: %d %q", res.Status, loc)
	}
	res = env.Do(t, http.MethodGet, "/private", http.Header{"Accept": {"application/json"}})
	// An API request without a session: 401, the handler never runs.
	if res.Status != http.StatusUnauthorized || strings.Contains(res.Body, "hello") {
		t.Fatalf("after logout, API request: %d %q", res.Status, res.Body)
	}
}

// Two concrete paths of one gin route are one UMA resource.
func TestUMAOneResourcePerGinRoute(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := gin.New()
		api := r.Group("/api")
		api.GET("/photos/:id", oxdgin.UMAProtect(auth, "GET /api/photos/:id", "photos.read"), item)
		return r
	})
	rpt := env.RPT(t, "/api/photos/1")
	for _, id := range []string{"1", "2"} {
		res := env.WithRPT(t, "/api/photos/"+id, rpt)
		if want := "item " + id + " via /api/photos/:id"; res.Status != http.StatusOK || res.Body != want {
			t.Fatalf("GET /api/photos/%s with the RPT: %d %q, want %q", id, res.Status, res.Body, want)
		}
	}
	if got := env.ProtectedPaths(); !slices.Equal(got, []string{"/api/photos/:id"}) {
		t.Fatalf("registered resources %q", got)
	}
	for _, p := range env.CheckedPaths() {
		if p != "/api/photos/:id" {
			t.Fatalf("uma_rs_check_access with path %q", p)
		}
	}
	// Without an RPT the chain stops at the guard: 401 with an empty body.
	res := env.Do(t, http.MethodGet, "/api/photos/3", nil)
	if res.Status != http.StatusUnauthorized || res.Body != "" {
		t.Fatalf("no RPT: %d %q", res.Status, res.Body)
	}
}

// A guard declared for another template than the route's is refused.
func TestUMATemplateMismatchRefused(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := gin.New()
		r.GET("/photos/:id", oxdgin.UMAProtect(auth, "GET /photos/{id}", "photos.read"), item)
		return r
	})
	if res := env.Do(t, http.MethodGet, "/photos/1", http.Header{"Accept": {"application/json"}}); res.Status != http.StatusInternalServerError {
		t.Fatalf("mismatched template: %d, want 500", res.Status)
	}
}

// Wrap: the middleware's request (context) reaches the handlers, and the
// chain stops when the middleware answers.
func TestWrap(t *testing.T) {
	type key struct{}
	pass := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Seen", "1")
			next.ServeHTTP(w, r.WithContext(contextWith(r, key{}, "v")))
		})
	}
	stop := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "stopped", http.StatusTeapot)
		})
	}
	r := gin.New()
	r.GET("/pass", oxdgin.Wrap(pass), func(c *gin.Context) {
		v, _ := c.Request.Context().Value(key{}).(string)
		c.String(http.StatusOK, "value=%s", v)
	})
	ran := false
	r.GET("/stop", oxdgin.Wrap(stop), func(c *gin.Context) { ran = true })
	for _, tc := range []struct {
		path, body string
		status     int
	}{{"/pass", "value=v", http.StatusOK}, {"/stop", "stopped\n", http.StatusTeapot}} {
		rec := serve(r, tc.path)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%s: %d %q", tc.path, rec.Code, rec.Body.String())
		}
	}
	if ran {
		t.Error("the handler after a middleware that answered ran")
	}
}

// A net/http middleware that writes headers at the first write of the
// response (scs.LoadAndSave sets the session cookie then) still does when
// the gin handler writes through c.Writer.
func TestWrapKeepsTheMiddlewaresWriter(t *testing.T) {
	sessions := scs.New()
	r := gin.New()
	r.GET("/put", oxdgin.Wrap(sessions.LoadAndSave), func(c *gin.Context) {
		sessions.Put(c.Request.Context(), "k", "v")
		c.String(http.StatusOK, "stored")
	})
	rec := serve(r, "/put")
	if rec.Code != http.StatusOK || rec.Body.String() != "stored" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	if c := rec.Result().Header.Get("Set-Cookie"); !strings.HasPrefix(c, sessions.Cookie.Name+"=") {
		t.Fatalf("no session cookie: %q", c)
	}
}
