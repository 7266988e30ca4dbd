package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/internal/truncate"
	"github.com/oxdgo/oxd/oxdclient"
)

// The demo's API is the UMA resource server: each resource is a route
// template protected with one scope. The AS's policy (the development OP's
// DefaultPolicy, and the certified OP's UMA layer alike) decides by the
// scope's name: "claims…" needs a claim gathered from the user, "deny…" is
// always refused, anything else is granted.
type umaResource struct {
	Key         string // form value and session key
	Title       string
	Template    string // the route template, registered as one UMA resource
	Example     string // a concrete path of it
	Scope       string
	Explanation string
}

var umaResources = []umaResource{
	{
		Key: "photos", Title: "Photos", Template: "/api/photos/{id}", Example: "/api/photos/42", Scope: "photos.read",
		Explanation: "The AS grants this scope to any requesting party.",
	},
	{
		Key: "reports", Title: "Reports", Template: "/api/reports/{id}", Example: "/api/reports/q3", Scope: "claims.reports.read",
		Explanation: "The AS needs a claim about you first (need_info): you provide it on the AS's claims-gathering page.",
	},
	{
		Key: "admin", Title: "Admin area", Template: "/api/admin/{id}", Example: "/api/admin/settings", Scope: "deny.admin",
		Explanation: "The AS's policy refuses this scope to everybody.",
	},
}

func resourceByKey(k string) (umaResource, bool) {
	for _, r := range umaResources {
		if r.Key == k {
			return r, true
		}
	}
	return umaResource{}, false
}

// umaSession is what the UMA page keeps in the user's session: the RPTs
// obtained for this user (never shared with another user), the PCT the AS
// issued, a claims-gathering round trip in progress, and the last trace.
type umaSession struct {
	RPTs    map[string]oxdclient.Secret
	PCT     oxdclient.Secret
	Pending *umaPending
	Trace   *umaTrace
}

// umaPending is a claims-gathering round trip in progress.
type umaPending struct {
	State    string
	Ticket   string
	Resource string
	Created  time.Time
}

// pendingTTL bounds a claims-gathering round trip.
const pendingTTL = 10 * time.Minute

const sessionKeyUMA = "demo.uma"

func init() { gob.Register(umaSession{}) }

// umaTrace is the story of one request for a resource, step by step, as
// the UMA page shows it.
type umaTrace struct {
	Resource string
	Steps    []umaStep
	Outcome  string // "granted", "denied", "claims", "error"
	When     time.Time
}

type umaStep struct {
	Title  string
	Detail string
	Code   string // shown preformatted (HTTP status lines, headers, JSON)
	Class  string // "ok", "fail", "wait" or ""
	Link   string // a navigation the user continues with (claims gathering)
}

func (t *umaTrace) add(class, title, detail, code string) {
	t.Steps = append(t.Steps, umaStep{Title: title, Detail: detail, Code: code, Class: class})
}

// umaState is the UMA part of a registered site: the protected API (the
// resource server, guarded by the oxd middleware) and the page that plays
// the requesting party.
type umaState struct {
	a       *app
	st      *site
	browser bool // the browser-mode page is served
}

// browserTemplate is the page protected in browser RP mode: the
// middleware itself obtains the RPT for the signed-in user.
const browserTemplate = "/uma/browser/reports/{id}"

// umaConfig is the UMA configuration of a registered site.
func umaConfig(st *site) oxd.UMAConfig {
	return oxd.UMAConfig{
		Issuer:            st.settings.Site.OPHost,
		Realm:             "oxd-demo",
		ClaimsRedirectURL: st.settings.ClaimsRedirectURI,
		PushIDToken:       true,
	}
}

// routes mounts the API and the UMA page.
func (u *umaState) routes(mux *http.ServeMux) {
	auth := u.st.auth
	for _, res := range umaResources {
		mux.Handle("GET "+res.Template, u.protect(res, http.HandlerFunc(u.api(res))))
	}
	mux.Handle("GET /uma", auth.RequireLogin(http.HandlerFunc(u.page)))
	mux.Handle("POST /uma/request", auth.RequireLogin(http.HandlerFunc(u.request)))
	mux.Handle("POST /uma/forget", auth.RequireLogin(http.HandlerFunc(u.forget)))
	mux.Handle("GET /uma/claims-callback", auth.RequireLogin(http.HandlerFunc(u.claimsCallback)))
	if u.browser {
		page := auth.UMAProtectWith(oxd.UMARule{
			Template:   browserTemplate,
			Conditions: []oxd.UMAMethodRule{{Methods: []string{http.MethodGet}, Scopes: []string{"claims.reports.read"}}},
			Browser:    true,
		})
		mux.Handle("GET "+browserTemplate, auth.RequireLogin(page(http.HandlerFunc(u.browserPage))))
	}
}

type umaBrowserView struct {
	ID                          string
	NewRPT, Cached, FromSession bool
	Challenge                   string
}

// browserPage is reached only with an RPT that grants the report; the
// middleware obtained it for the user (browser RP mode).
func (u *umaState) browserPage(w http.ResponseWriter, r *http.Request) {
	v := umaBrowserView{ID: r.PathValue("id")}
	if d, ok := oxd.UMAResult(r); ok {
		v.NewRPT, v.Cached, v.FromSession, v.Challenge = d.NewRPT, d.Cached, d.SessionRPT, d.Challenge
	}
	u.a.render(w, r, u.st, http.StatusOK, "umabrowser", "UMA in the browser", "", v)
}

// api serves a resource of the demo's API. It is only reached through the
// UMA guard, i.e. with an RPT that carries the resource's scope.
func (u *umaState) api(res umaResource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"resource": res.Title,
			"id":       r.PathValue("id"),
			"message":  "Access granted: the RPT carries the scope " + res.Scope + ".",
		})
	}
}

// sessionState returns the user's UMA state (a copy, safe to modify).
func (u *umaState) sessionState(ctx context.Context) umaSession {
	s, _ := u.st.sessions.Get(ctx, sessionKeyUMA).(umaSession)
	rpts := make(map[string]oxdclient.Secret, len(s.RPTs))
	for k, v := range s.RPTs {
		rpts[k] = v
	}
	s.RPTs = rpts
	return s
}

func (u *umaState) saveState(ctx context.Context, s umaSession) {
	u.st.sessions.Put(ctx, sessionKeyUMA, s)
}

type umaView struct {
	Resources []umaResourceView
	Trace     *umaTrace
	TraceOf   string
	AsURI     string
	Browser   bool
}

type umaResourceView struct {
	umaResource
	HasRPT bool
}

// page shows the resources and the trace of the last request.
func (u *umaState) page(w http.ResponseWriter, r *http.Request) {
	s := u.sessionState(r.Context())
	v := umaView{AsURI: u.st.settings.Site.OPHost, Trace: s.Trace, Browser: u.browser}
	for _, res := range umaResources {
		_, has := s.RPTs[res.Key]
		v.Resources = append(v.Resources, umaResourceView{umaResource: res, HasRPT: has})
	}
	if s.Trace != nil {
		if res, ok := resourceByKey(s.Trace.Resource); ok {
			v.TraceOf = res.Title
		}
	}
	u.a.render(w, r, u.st, http.StatusOK, "uma", "UMA", "", v)
}

// forget drops the user's RPTs, PCT and trace (POST /uma/forget).
func (u *umaState) forget(w http.ResponseWriter, r *http.Request) {
	u.st.sessions.Remove(r.Context(), sessionKeyUMA)
	http.Redirect(w, r, "/uma", http.StatusSeeOther)
}

// request plays the requesting party for one resource (POST /uma/request):
// call the API (with the RPT kept in the session, if any), read the 401
// challenge, obtain an RPT for its ticket, and call again.
func (u *umaState) request(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1024)
	if err := r.ParseForm(); err != nil {
		u.a.renderError(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	res, ok := resourceByKey(r.PostForm.Get("resource"))
	if !ok {
		u.a.renderError(w, r, http.StatusBadRequest, "Unknown resource", "There is no such resource.")
		return
	}
	ctx := r.Context()
	s := u.sessionState(ctx)
	s.Pending = nil
	t := &umaTrace{Resource: res.Key, When: time.Now()}
	u.flow(ctx, &s, t, res, s.RPTs[res.Key])
	s.Trace = t
	u.saveState(ctx, s)
	http.Redirect(w, r, "/uma#trace", http.StatusSeeOther)
}

// flow runs the requesting party's steps and records them in t.
func (u *umaState) flow(ctx context.Context, s *umaSession, t *umaTrace, res umaResource, rpt oxdclient.Secret) {
	if rpt != "" {
		status, hdr, body, err := u.call(ctx, res, rpt)
		switch {
		case err != nil:
			t.add("fail", "GET "+res.Example+" with the RPT kept in your session", "The API could not be reached: "+err.Error(), "")
			t.Outcome = "error"
			return
		case status == http.StatusOK:
			t.add("ok", "GET "+res.Example+" with the RPT kept in your session", "The RPT still carries the scope: access granted without a new RPT.", httpSummary(status, hdr, body))
			t.Outcome = "granted"
			return
		default:
			t.add("wait", "GET "+res.Example+" with the RPT kept in your session", "The RPT is no longer enough (expired, or without this scope).", httpSummary(status, hdr, body))
			delete(s.RPTs, res.Key)
		}
	}

	// 1. Without an RPT: the resource server answers with a challenge.
	status, hdr, body, err := u.call(ctx, res, "")
	if err != nil {
		t.add("fail", "GET "+res.Example+" without an RPT", "The API could not be reached: "+err.Error(), "")
		t.Outcome = "error"
		return
	}
	ticket, asURI, perr := parseUMAChallenge(hdr.Get("WWW-Authenticate"))
	if status != http.StatusUnauthorized || perr != nil {
		t.add("fail", "GET "+res.Example+" without an RPT", "Expected 401 with a UMA challenge.", httpSummary(status, hdr, body))
		t.Outcome = "error"
		return
	}
	t.add("ok", "GET "+res.Example+" without an RPT",
		"The resource server registered a permission for the scope "+res.Scope+" and answered 401 with a permission ticket and the AS's address ("+asURI+").",
		httpSummary(status, hdr, body))

	// 2. The ticket goes to the AS (uma_rp_get_rpt).
	u.getRPT(ctx, s, t, res, ticket)
}

// getRPT exchanges a ticket for an RPT and, when it gets one, calls the API
// with it.
func (u *umaState) getRPT(ctx context.Context, s *umaSession, t *umaTrace, res umaResource, ticket string) {
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	site := u.st.settings.Site
	rr, err := u.a.d.client.UMARPGetRPT(octx, oxdclient.UMARPGetRPTParams{OxdID: site.OxdID, Ticket: ticket, PCT: s.PCT})
	if err != nil {
		if ni, ok := needInfo(err); ok {
			u.needInfo(octx, s, t, res, ni)
			return
		}
		var oe *oxdclient.Error
		if errors.As(err, &oe) && s.PCT != "" && strings.Contains(oe.Description, "pct") {
			s.PCT = ""
		}
		detail := "The AS refused to issue an RPT: " + describeOxdError(err)
		t.add("fail", "uma_rp_get_rpt with the ticket", detail, "")
		t.Outcome = "denied"
		return
	}
	if rr.AccessToken == "" {
		t.add("fail", "uma_rp_get_rpt with the ticket", "oxd answered without an RPT.", "")
		t.Outcome = "error"
		return
	}
	if rr.PCT != "" {
		s.PCT = rr.PCT
	}
	s.RPTs[res.Key] = rr.AccessToken
	t.add("ok", "uma_rp_get_rpt with the ticket",
		"The AS issued an RPT ("+cmp(rr.TokenType, "Bearer")+" token, fingerprint "+fingerprintSecret(rr.AccessToken)+"). It is kept in your session only; the token itself is never shown.", "")

	// 3. The same request, with the RPT.
	status, hdr, body, err := u.call(ctx, res, rr.AccessToken)
	if err != nil {
		t.add("fail", "GET "+res.Example+" with the RPT", "The API could not be reached: "+err.Error(), "")
		t.Outcome = "error"
		return
	}
	if status != http.StatusOK {
		t.add("fail", "GET "+res.Example+" with the RPT", "The resource server did not accept the RPT.", httpSummary(status, hdr, body))
		t.Outcome = "denied"
		return
	}
	t.add("ok", "GET "+res.Example+" with the RPT", "The resource server checked the RPT (uma_rs_check_access): access granted.", httpSummary(status, hdr, body))
	t.Outcome = "granted"
}

// needInfo handles the AS's need_info answer: it asks oxd for the
// claims-gathering URL, remembers the round trip in the session, and
// leaves a link for the user.
func (u *umaState) needInfo(ctx context.Context, s *umaSession, t *umaTrace, res umaResource, ni *oxdclient.NeedInfo) {
	detail := "The AS needs more information about you (need_info) before it issues an RPT."
	if claims := requiredClaimNames(ni); claims != "" {
		detail += " Required claims: " + claims + "."
	}
	t.add("wait", "uma_rp_get_rpt with the ticket", detail, "")
	site := u.st.settings.Site
	cg, err := u.a.d.client.UMARPGetClaimsGatheringURL(ctx, oxdclient.UMARPGetClaimsGatheringURLParams{
		OxdID:             site.OxdID,
		Ticket:            ni.Ticket,
		ClaimsRedirectURI: u.st.settings.ClaimsRedirectURI,
	})
	if err != nil {
		t.add("fail", "uma_rp_get_claims_gathering_url", "oxd could not build the claims-gathering URL: "+describeOxdError(err), "")
		t.Outcome = "error"
		return
	}
	link, err := url.Parse(cg.URL)
	if err != nil || (link.Scheme != "https" && link.Scheme != "http") || cg.State == "" {
		t.add("fail", "uma_rp_get_claims_gathering_url", "oxd answered an unusable claims-gathering URL.", "")
		t.Outcome = "error"
		return
	}
	s.Pending = &umaPending{State: cg.State, Ticket: ni.Ticket, Resource: res.Key, Created: time.Now()}
	t.Steps = append(t.Steps, umaStep{
		Title:  "uma_rp_get_claims_gathering_url",
		Detail: "Continue at the AS's claims-gathering page; it sends you back to " + u.st.settings.ClaimsRedirectURI + " with a new ticket.",
		Class:  "wait",
		Link:   link.String(),
	})
	t.Outcome = "claims"
}

// claimsCallback is the claims redirect URI: the AS sends the user back
// with a new ticket and the state of the round trip.
func (u *umaState) claimsCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	s := u.sessionState(ctx)
	p := s.Pending
	state, ticket := q.Get("state"), q.Get("ticket")
	if p == nil || state == "" || len(state) > 512 || subtle.ConstantTimeCompare([]byte(state), []byte(p.State)) != 1 {
		if u.browser {
			// Not this page's round trip: the browser-mode middleware's
			// (one claims redirect URI serves both); it checks the state
			// against its own requests.
			u.st.auth.ClaimsCallbackHandler().ServeHTTP(w, r)
			return
		}
		u.a.renderError(w, r, http.StatusBadRequest, "Claims response not recognised",
			"This answer of the AS does not belong to a claims-gathering started in this browser, or it was already used. Start again from the UMA page.")
		return
	}
	s.Pending = nil // single use
	res, _ := resourceByKey(p.Resource)
	t := s.Trace
	if t == nil || t.Resource != res.Key {
		t = &umaTrace{Resource: res.Key, When: time.Now()}
	}
	for i := range t.Steps {
		if t.Steps[i].Link != "" { // the round trip is over: its link is spent
			t.Steps[i].Link = ""
			t.Steps[i].Class = "ok"
		}
	}
	switch {
	case time.Since(p.Created) > pendingTTL:
		t.add("fail", "Back from the claims-gathering page", "The round trip took too long; start again.", "")
		t.Outcome = "error"
	case q.Get("error") != "":
		t.add("fail", "Back from the claims-gathering page", "The AS answered "+truncate.String(sanitize(q.Get("error")), 64)+".", "")
		t.Outcome = "denied"
	case ticket == "" || len(ticket) > 2048 || ticket == p.Ticket:
		t.add("fail", "Back from the claims-gathering page", "The AS did not send a new ticket.", "")
		t.Outcome = "error"
	default:
		t.add("ok", "Back from the claims-gathering page", "The AS gathered the claims and sent a new permission ticket.", "")
		u.getRPT(ctx, &s, t, res, ticket)
	}
	s.Trace = t
	u.saveState(ctx, s)
	http.Redirect(w, r, "/uma#trace", http.StatusSeeOther)
}

// call makes a request to the demo's own API over HTTPS, as another
// application would, with the RPT (when given) as the Bearer token.
func (u *umaState) call(ctx context.Context, res umaResource, rpt oxdclient.Secret) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.a.d.baseURL+res.Example, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if rpt != "" {
		req.Header.Set("Authorization", "Bearer "+rpt.Reveal())
	}
	resp, err := u.a.rsClient.Do(req)
	if err != nil {
		return 0, nil, nil, errors.New("request failed")
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, resp.Header, body, nil
}

// httpSummary shows a response as a status line, the headers that matter
// for UMA, and the body.
func httpSummary(status int, h http.Header, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\n", status, http.StatusText(status))
	for _, k := range []string{"WWW-Authenticate", "Warning", "Content-Type"} {
		for _, v := range h.Values(k) {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var out bytes.Buffer
		if json.Indent(&out, body, "", "  ") == nil {
			body = out.Bytes()
		}
		b.WriteString("\n")
		b.Write(body)
	}
	return strings.TrimRight(b.String(), "\n")
}

// parseUMAChallenge reads the ticket and as_uri of a
// `UMA realm="…", as_uri="…", ticket="…"` challenge.
func parseUMAChallenge(h string) (ticket, asURI string, err error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "UMA") {
		return "", "", errors.New("not a UMA challenge")
	}
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			return "", "", errors.New("malformed challenge")
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if !strings.HasPrefix(v, `"`) {
			return "", "", errors.New("malformed challenge")
		}
		end := strings.Index(v[1:], `"`)
		if end < 0 {
			return "", "", errors.New("malformed challenge")
		}
		params[k] = v[1 : end+1]
		rest = strings.TrimPrefix(strings.TrimSpace(v[end+2:]), ",")
		rest = strings.TrimSpace(rest)
	}
	if params["ticket"] == "" || params["as_uri"] == "" {
		return "", "", errors.New("challenge without ticket or as_uri")
	}
	return params["ticket"], params["as_uri"], nil
}

// needInfo extracts the need_info details of an uma_rp_get_rpt error.
func needInfo(err error) (*oxdclient.NeedInfo, bool) {
	var oe *oxdclient.Error
	if !errors.As(err, &oe) || !oxdclient.IsNeedInfo(err) {
		return nil, false
	}
	ni, ok := oe.NeedInfo()
	if !ok || ni.Ticket == "" {
		return nil, false
	}
	return ni, true
}

func requiredClaimNames(ni *oxdclient.NeedInfo) string {
	var names []string
	for _, c := range ni.RequiredClaims {
		n := cmp(c.FriendlyName, c.Name)
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return truncate.String(strings.Join(names, ", "), 200)
}

// fingerprintSecret is a short hash of a secret, enough to tell two apart
// and useless to an attacker.
func fingerprintSecret(s oxdclient.Secret) string {
	sum := sha256.Sum256([]byte(s.Reveal()))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// sanitize keeps printable ASCII only.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

// protect guards a resource of the API with its scope: the route template
// is declared here, next to the route, and registered by register.
func (u *umaState) protect(res umaResource, h http.Handler) http.Handler {
	return u.st.auth.UMAProtect("GET "+res.Template, res.Scope)(h)
}

// register registers the declared templates at oxd (uma_rs_protect). It is
// idempotent: an unchanged set is not registered again.
func (u *umaState) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return u.st.auth.RegisterUMA(ctx)
}
