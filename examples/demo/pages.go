package main

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/oxdgo/oxd/oxdtest/devop"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the parsed templates, one set per page (layout + page).
type pages struct {
	t map[string]*template.Template
}

var pageNames = []string{"home", "settings", "login", "userinfo", "loggedout", "uma", "umabrowser", "error"}

func parsePages() (*pages, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.Local().Format("2006-01-02 15:04:05 MST")
		},
	}
	p := &pages{t: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		p.t[name] = t
	}
	return p, nil
}

// layoutData is what every page gets; View is the page's own data.
type layoutData struct {
	Title, Page string
	Notice      string
	Registered  bool
	SignedIn    bool
	UserName    string
	Oxd, OPHost string
	View        any
}

// render writes a page. It renders into a buffer first so that a template
// error becomes a clean 500, never half a page.
func (a *app) render(w http.ResponseWriter, r *http.Request, st *site, status int, page, title, notice string, view any) {
	data := layoutData{Title: title, Page: page, Notice: notice, View: view, Oxd: a.d.oxdDesc}
	if st != nil {
		data.Registered = st.settings.Registered()
		data.OPHost = st.settings.OPHost
		if st.settings.Registered() {
			data.OPHost = st.settings.Site.OPHost
		}
		if st.auth != nil {
			if u, ok := st.auth.Authenticated(r); ok {
				data.SignedIn = true
				data.UserName = cmp(u.Claim("name"), u.Subject)
			}
		}
	}
	var buf bytes.Buffer
	if err := a.pages.t[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		a.log.Error("demo: rendering a page", "page", page, "error", err)
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorView struct {
	Status  int
	Heading string
	Message string
}

// renderError shows an error page with a fixed heading and message.
func (a *app) renderError(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	var st *site
	if s := a.cur.Load(); s != nil {
		st = s
	}
	a.render(w, r, st, status, "error", heading, "", errorView{Status: status, Heading: heading, Message: msg})
}

// staticHandler serves the embedded stylesheet.
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// devOPUsers are the development OP's accounts for the sign-in page. Their
// passwords are not secrets: they are documented demo accounts.
func devOPUsers() []demoUser {
	out := make([]demoUser, 0, len(devop.DemoUsers))
	for _, u := range devop.DemoUsers {
		note := ""
		if _, ok := u.Claims["country"]; ok {
			note = "has a country claim: the UMA report is granted at once"
		} else {
			note = "no country claim: the UMA report goes through claims gathering"
		}
		out = append(out, demoUser{Username: u.Username, Password: u.Password, Note: note})
	}
	return out
}
