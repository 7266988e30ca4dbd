package logouttoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/sessionindex"
)

// MaxBodySize bounds the body of a back-channel logout request.
const MaxBodySize = 64 << 10

// Index is what the handlers need of a session index (oxd.SessionIndex
// implements it).
type Index interface {
	BySID(ctx context.Context, issuer, sid string) ([]string, error)
	BySubject(ctx context.Context, issuer, subject string) ([]string, error)
	Remove(ctx context.Context, storeKey string) error
}

// DestroyFunc ends the session with store key storeKey: it deletes it from
// the scs Store (the key is what the Store is addressed with, already
// hashed when HashTokenInStore is set). Deleting a key that is gone is not
// an error.
type DestroyFunc func(ctx context.Context, storeKey string) error

// endSessions destroys every session of the OP session sid, or (without a
// sid) of the subject sub, at issuer, and removes them from the index. A
// session whose destruction failed stays in the index (a later logout can
// still reach it). n is the number of sessions ended.
func endSessions(ctx context.Context, idx Index, destroy DestroyFunc, issuer, sid, sub string) (n int, err error) {
	var keys []string
	if sid != "" {
		// The OP session: sub, when sent too, names the same user and does
		// not widen the logout to the user's other OP sessions.
		keys, err = idx.BySID(ctx, issuer, sid)
	} else {
		keys, err = idx.BySubject(ctx, issuer, sub)
	}
	if err != nil {
		return 0, fmt.Errorf("session index lookup: %w", err)
	}
	var errs []error
	for _, k := range keys {
		if derr := destroy(ctx, k); derr != nil {
			errs = append(errs, fmt.Errorf("destroy session: %w", derr))
			continue
		}
		n++
		if rerr := idx.Remove(ctx, k); rerr != nil {
			// The session is gone; a stale entry only costs a lookup.
			errs = append(errs, fmt.Errorf("session index remove: %w", rerr))
		}
	}
	return n, errors.Join(errs...)
}

// BackChannelHandler serves the back-channel logout endpoint (OpenID
// Connect Back-Channel Logout 1.0 §2.5, §2.8): a POST with an
// application/x-www-form-urlencoded body of at most MaxBodySize bytes that
// holds one logout_token. A valid token ends every session of its OP
// session (sid) or, with sub only, of its subject, on every replica that
// shares idx and the scs store.
//
// Answers, always with Cache-Control: no-store and never a redirect:
//   - 200: the token was valid and its sessions were ended (none is fine);
//   - 400 {"error":"invalid_request","error_description":…}: no, a repeated
//     or an invalid logout_token (the description is the reason, see
//     Reason);
//   - 400 {"error":"server_error",…}: the logout failed on our side (keys,
//     replay cache, index or store unavailable); §2.8 asks for 400 for a
//     failed logout too. Details go to log, not to the sender;
//   - 405 (not POST), 413 (body too large), 415 (another content type);
//   - 501 when idx or v is nil (no session index configured).
//
// log may be nil. Nothing logged contains the token.
func BackChannelHandler(v *Validator, idx Index, destroy DestroyFunc, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if v == nil || idx == nil || destroy == nil {
			jsonError(w, http.StatusNotImplemented, "server_error", "back-channel logout needs a session index")
			return
		}
		if r.Method != http.MethodPost {
			h.Set("Allow", http.MethodPost)
			jsonError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			jsonError(w, http.StatusUnsupportedMediaType, "invalid_request", "application/x-www-form-urlencoded only")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				jsonError(w, http.StatusRequestEntityTooLarge, "invalid_request", "body too large")
				return
			}
			jsonError(w, http.StatusBadRequest, "invalid_request", "body could not be read")
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			jsonError(w, http.StatusBadRequest, "invalid_request", "body is not form-encoded")
			return
		}
		toks := form["logout_token"]
		if len(toks) != 1 || toks[0] == "" {
			jsonError(w, http.StatusBadRequest, "invalid_request", "exactly one logout_token required")
			return
		}
		ctx := r.Context()
		c, err := v.Validate(ctx, toks[0])
		if err != nil {
			if why := Reason(err); why != "" {
				log.LogAttrs(ctx, slog.LevelWarn, "oxd: back-channel logout token refused", slog.String("reason", why))
				jsonError(w, http.StatusBadRequest, "invalid_request", "invalid logout_token: "+why)
				return
			}
			log.LogAttrs(ctx, slog.LevelError, "oxd: back-channel logout failed", slog.String("error", err.Error()))
			jsonError(w, http.StatusBadRequest, "server_error", "the logout could not be completed")
			return
		}
		n, err := endSessions(ctx, idx, destroy, c.Issuer, c.SID, c.Subject)
		if err != nil {
			log.LogAttrs(ctx, slog.LevelError, "oxd: back-channel logout failed", slog.Int("sessions_ended", n), slog.String("error", err.Error()))
			jsonError(w, http.StatusBadRequest, "server_error", "the logout could not be completed")
			return
		}
		log.LogAttrs(ctx, slog.LevelInfo, "oxd: back-channel logout", slog.Int("sessions_ended", n), slog.Bool("by_sid", c.SID != ""))
		w.WriteHeader(http.StatusOK)
	})
}

// frameAncestorHost reports whether h, the issuer's host, names exactly one
// host in a CSP source expression: a DNS name or an IP literal without a
// zone ("*" or "*.example.com" would let other origins frame the page).
func frameAncestorHost(h string) bool {
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Zone() == ""
	}
	return hostutil.IsDNSName(h)
}

func jsonError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
}

// FrontChannelHandler serves the front-channel logout URI (OpenID Connect
// Front-Channel Logout 1.0 §2–§4): the OP loads it in an iframe with the
// query parameters iss and sid (register frontchannel_logout_session_required
// true). iss must equal the issuer; every session of the OP session sid is
// ended, on every replica that shares idx and the scs store.
//
// issuer must be an http(s) URL whose host is a DNS name or an IP literal
// (it becomes the frame-ancestors source). The answer is a tiny page the
// OP's origin (and only it) may frame:
// Content-Security-Policy "default-src 'none'; frame-ancestors <OP origin>",
// Cache-Control: no-store. Without iss and sid, or with another issuer, the
// answer is 400 and nothing is ended; a request that is not GET gets 405;
// a failure of the index or store 500; no index configured 501.
//
// The request carries no proof that the OP sent it: anyone who knows an OP
// session's sid can end it. A sid is an unguessable value the OP shares only
// with its RPs, and ending a session is the safe direction.
func FrontChannelHandler(issuer string, idx Index, destroy DestroyFunc, log *slog.Logger) (http.Handler, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(issuer, " ;,'\"") ||
		!frameAncestorHost(u.Hostname()) {
		return nil, fmt.Errorf("logouttoken: issuer is not an http(s) URL usable as frame ancestor")
	}
	origin := u.Scheme + "://" + u.Host
	csp := "default-src 'none'; frame-ancestors " + origin
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	page := func(w http.ResponseWriter, status int, text string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<!doctype html><meta charset=utf-8><title>"+text+"</title><p>"+text+"</p>\n")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if idx == nil || destroy == nil {
			page(w, http.StatusNotImplemented, "Logout is not configured")
			return
		}
		if r.Method != http.MethodGet {
			h.Set("Allow", http.MethodGet)
			page(w, http.StatusMethodNotAllowed, "Method not allowed")
			return
		}
		q := r.URL.Query()
		isss, sids := q["iss"], q["sid"]
		if len(isss) != 1 || len(sids) != 1 || isss[0] != issuer || sids[0] == "" || len(sids[0]) > sessionindex.MaxValueLen {
			log.LogAttrs(r.Context(), slog.LevelWarn, "oxd: front-channel logout without this OP's iss and a sid refused")
			page(w, http.StatusBadRequest, "Bad logout request")
			return
		}
		n, err := endSessions(r.Context(), idx, destroy, issuer, sids[0], "")
		if err != nil {
			log.LogAttrs(r.Context(), slog.LevelError, "oxd: front-channel logout failed", slog.Int("sessions_ended", n), slog.String("error", err.Error()))
			page(w, http.StatusInternalServerError, "Logout failed")
			return
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "oxd: front-channel logout", slog.Int("sessions_ended", n))
		page(w, http.StatusOK, "Signed out")
	}), nil
}
