package devop

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// eventBackChannelLogout is the events member of a logout token.
const eventBackChannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// backChannelTimeout bounds one back-channel logout request.
const backChannelTimeout = 5 * time.Second

// notifyLogout tells the clients of the ended OP session s: a signed
// logout token (OpenID Connect Back-Channel Logout 1.0 §2.4: iss, aud,
// iat, jti, events, sid, sub; typ logout+jwt) POSTed to every registered
// backchannel_logout_uri, in parallel, before the browser moves on; and
// the front-channel logout URLs (with iss and sid) it returns, for the
// browser to load in iframes.
func (op *OP) notifyLogout(ctx context.Context, s *sessionRec) (front []string) {
	var wg sync.WaitGroup
	for id := range s.clients {
		c := op.clientByID(id)
		if c == nil {
			continue
		}
		if u := c.meta.FrontChannelLogoutURI; u != "" {
			front = append(front, appendQuery(u, url.Values{"iss": {op.issuer}, "sid": {s.sid}}))
		}
		if u := c.meta.BackChannelLogoutURI; u != "" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				op.sendBackChannel(ctx, u, c.id, s)
			}()
		}
	}
	wg.Wait()
	return front
}

func (op *OP) sendBackChannel(ctx context.Context, target, clientID string, s *sessionRec) {
	tok, err := op.logoutToken(clientID, s)
	if err != nil {
		op.log.LogAttrs(ctx, slog.LevelError, "devop: back-channel logout token", slog.String("error", err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backChannelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := op.cfg.LogoutHTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: backChannelTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		op.log.LogAttrs(ctx, slog.LevelWarn, "devop: back-channel logout failed", slog.String("client_id", clientID), slog.String("error", err.Error()))
		return
	}
	_ = resp.Body.Close()
	op.backChannelSent.Add(1)
	op.log.LogAttrs(ctx, slog.LevelInfo, "devop: back-channel logout", slog.String("client_id", clientID), slog.Int("status", resp.StatusCode))
}

// logoutToken signs a logout token for clientID about the OP session s.
func (op *OP) logoutToken(clientID string, s *sessionRec) (string, error) {
	k, err := op.keys.signingKey(false)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(jose.RS256)}},
		(&jose.SignerOptions{}).WithType("logout+jwt"),
	)
	if err != nil {
		return "", fmt.Errorf("devop: logout token signer: %w", err)
	}
	now := op.now()
	claims := map[string]any{
		"iss":    op.issuer,
		"aud":    clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    randomID(),
		"events": map[string]any{eventBackChannelLogout: map[string]any{}},
		"sid":    s.sid,
		"sub":    s.subject,
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// BackChannelLogoutsSent is the number of back-channel logout requests
// the OP has sent that got an HTTP answer.
func (op *OP) BackChannelLogoutsSent() int { return int(op.backChannelSent.Load()) }

var frontChannelPage = template.Must(template.New("front").Parse(pageHead + `
<p>You are signed out of the development OP{{if .Next}}; returning to the application…{{end}}</p>
{{range .Frames}}<iframe src="{{.}}" title="front-channel logout" style="display:none" width="0" height="0"></iframe>
{{end}}{{if .Next}}<p><a id="continue" href="{{.Next}}">Continue</a></p>{{end}}
` + pageFoot))

// renderFrontChannel answers the "signed out" page that loads each
// front-channel logout URL in a hidden iframe and, with next, goes there
// after two seconds (meta refresh; the page has no script).
func renderFrontChannel(w http.ResponseWriter, frames []string, next string) {
	var origins []string
	for _, f := range frames {
		if u, err := url.Parse(f); err == nil {
			origins = append(origins, u.Scheme+"://"+u.Host)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-src "+strings.Join(origins, " ")+"; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if next != "" {
		h.Set("Refresh", "2; url="+next)
	}
	w.WriteHeader(http.StatusOK)
	_ = frontChannelPage.Execute(w, struct {
		Title  string
		Frames []string
		Next   string
	}{"Signed out", frames, next})
}
