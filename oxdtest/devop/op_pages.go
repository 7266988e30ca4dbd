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

// The pages share the look of the demo application (examples/demo): the
// same colours, top bar and cards, inline (the pages load nothing).
const pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} · oxd development OP</title>
<style>*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif;color:#1d2330;background:#f5f6f8;line-height:1.5}
.top{background:#17203a;color:#fff;padding:.9rem 1.25rem;font-weight:700}.top span{font-weight:400;color:#c9d2e8}
main{max-width:30rem;margin:2rem auto;padding:1.5rem 1.75rem;background:#fff;border:1px solid #dde1e7;border-radius:10px}
h1{font-size:1.4rem;margin:0 0 1rem}
label{display:block;margin:.8rem 0 .25rem;font-weight:600}
input{width:100%;padding:.5rem .6rem;border:1px solid #dde1e7;border-radius:6px;font:inherit}
button{margin-top:1.1rem;padding:.55rem 1.3rem;border:0;border-radius:6px;background:#2458d6;color:#fff;font:inherit;font-weight:600;cursor:pointer}
button:hover{background:#1a43a8}
table{width:100%;border-collapse:collapse;margin:.5rem 0 0;font-size:.92rem}th,td{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #dde1e7}
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f5f6f8;padding:0 .25rem;border-radius:4px}
.error{color:#b3261e;background:#fdecea;padding:.5rem .75rem;border-radius:6px}.muted{color:#5d6575;font-size:.9rem}</style>
</head><body>
<div class="top">oxd development OP <span>· for development and tests only</span></div>
<main>
<h1>{{.Title}}</h1>
`

const pageFoot = `<p class="muted">oxd development OpenID Provider</p>
</main>
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
{{if .Users}}<h2 style="font-size:1.05rem;margin-top:1.5rem">Demo users</h2>
<table id="demo-users"><thead><tr><th>User name</th><th>Password</th><th>Name</th></tr></thead><tbody>
{{range .Users}}<tr><td><code>{{.Username}}</code></td><td><code>{{.Password}}</code></td><td>{{index .Claims "name"}}</td></tr>
{{end}}</tbody></table>{{end}}
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
	Users       []User // the demo users, named on the login page
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
