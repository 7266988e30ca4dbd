package devop

import (
	"bytes"
	"html/template"
	"net/http"
)

// The OP's pages are plain HTML forms without scripts or external assets,
// so a real browser (and a test's cookie-jar client) can drive them:
// the login form has input[name=username], input[name=password] and
// button[type=submit] labelled "Sign in".

const pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} · oxd development OP</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1.2rem}.error{color:#a00}.muted{color:#666;font-size:.9rem}</style>
</head><body>
<h1>{{.Title}}</h1>
`

const pageFoot = `<p class="muted">oxd development OpenID Provider</p>
</body></html>
`

var pages = template.Must(template.New("login").Parse(pageHead + `
{{if .Client}}<p>to continue to <strong>{{.Client}}</strong></p>{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="interaction" value="{{.Interaction}}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
` + pageFoot))

func init() {
	template.Must(pages.New("message").Parse(pageHead + `
<p{{if .IsError}} class="error" role="alert"{{end}}>{{.Message}}</p>
` + pageFoot))
	template.Must(pages.New("logout").Parse(pageHead + `
<p>Do you want to sign out of the development OP?</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="xsrf" value="{{.Interaction}}">
<button type="submit" name="logout" value="yes">Sign out</button>
</form>
` + pageFoot))
	template.Must(pages.New("claims").Parse(pageHead + `
<p>{{if .Client}}<strong>{{.Client}}</strong> needs{{else}}The authorization server needs{{end}} more information before it can grant access.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="oxdtest_interaction" value="{{.Interaction}}">
{{range .Claims}}<label for="claim-{{.}}">{{.}}</label>
<input id="claim-{{.}}" name="{{.}}" type="text" required>
{{end}}<button type="submit">Continue</button>
</form>
` + pageFoot))
}

type pageData struct {
	Title       string
	Client      string
	Error       string
	Message     string
	Action      string
	Interaction string
	Username    string
	Claims      []string
	IsError     bool
}

func renderPage(w http.ResponseWriter, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderMessage shows a small page with a title and one message.
func renderMessage(w http.ResponseWriter, status int, title, msg string) {
	renderPage(w, status, "message", pageData{Title: title, Message: msg, IsError: status >= 400})
}
