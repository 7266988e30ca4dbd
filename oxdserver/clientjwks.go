package oxdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/oxdclient"
)

// ClientJWKSPathPrefix is the path under which the HTTPS-extension handler
// serves the public JWKS of each private_key_jwt site, without
// authentication: GET <prefix><oxd_id>. Register
// https://<extension host><prefix><oxd_id> at the OP as the client's
// jwks_uri (pre-registered client) or pass it as client_jwks_uri. Only
// public keys are served; an unknown oxd_id and a site that does not use
// private_key_jwt get the same 404.
const ClientJWKSPathPrefix = "/client-jwks/"

// clientJWKSMaxAge is the Cache-Control max-age of the public JWKS route:
// with the engine's own cache (clientJWKSHitTTL) shorter than
// keyRotationLead, so an OP that honours it fetches a rotated key before
// the key signs.
const clientJWKSMaxAge = 300

// getClientJWKS answers get_client_jwks, an extension (not in oxd 3.1.4):
// the public JWKS of the site's private_key_jwt client, protected like the
// other site commands.
func (e *Engine) getClientJWKS(ctx context.Context, c *call, _ *oxdclient.GetClientJWKSParams) (any, error) {
	b, err := e.ClientJWKS(ctx, c.site.OxdID)
	if errors.Is(err, ErrNoClientKeys) {
		return nil, oxdErr(oxdclient.CodeInvalidRequest, "The site's client does not authenticate with private_key_jwt: it has no key set (client_token_endpoint_auth_method is "+string(siteMethod(c.site))+").")
	}
	if err != nil {
		return nil, err
	}
	return clientJWKSAnswer{OxdID: nstr(c.site.OxdID), JWKS: b}, nil
}

type clientJWKSAnswer struct {
	OxdID nstr            `json:"oxd_id"`
	JWKS  json.RawMessage `json:"jwks"`
}

// clientJWKSSource is what the public JWKS route needs of the executor.
type clientJWKSSource interface {
	publicClientJWKS(ctx context.Context, oxdID string) ([]byte, error)
}

// isOxdID reports whether s has the form of an oxd_id: a UUID in its
// canonical text form, lower-case hex digits in groups of 8-4-4-4-12, as
// the engine (newOxdID) and Gluu's oxd make them. The public JWKS route
// reads the store for nothing else.
func isOxdID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// serveClientJWKS answers GET/HEAD ClientJWKSPathPrefix+oxd_id. Only a 200
// is cacheable (clientJWKSMaxAge); the other answers are no-store, so that
// a site registered after a 404 is fetched at once.
func (h *httpsHandler) serveClientJWKS(w http.ResponseWriter, r *http.Request) (int, string) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		return feWriteDropwizardError(w, http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed"), "method_not_allowed"
	}
	id := strings.TrimPrefix(r.URL.Path, ClientJWKSPathPrefix)
	src, ok := h.ex.(clientJWKSSource)
	if !ok || !isOxdID(id) {
		return feWriteDropwizardError(w, http.StatusNotFound, "HTTP 404 Not Found"), "not_found"
	}
	b, err := src.publicClientJWKS(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoClientKeys):
		return feWriteDropwizardError(w, http.StatusNotFound, "HTTP 404 Not Found"), "not_found"
	case errors.Is(err, errBusy):
		hd.Set("Retry-After", "1")
		return feWriteDropwizardError(w, http.StatusServiceUnavailable, "HTTP 503 Service Unavailable"), "busy"
	case err != nil:
		h.log.Error("oxd client JWKS cannot be served", "err", err.Error())
		return feWriteDropwizardError(w, http.StatusInternalServerError, "HTTP 500 Internal Server Error"), "internal_error"
	}
	hd.Set("Content-Type", "application/jwk-set+json")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	hd.Set("Cache-Control", "public, max-age="+strconv.Itoa(clientJWKSMaxAge))
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
	return http.StatusOK, "ok"
}

// rotatesPreregisteredKeys reports whether update_site p on the
// pre-registered site s is a key rotation: a private_key_jwt client, and
// no parameter besides oxd_id (and the protection token). Nothing else of
// a pre-registered client can change through oxd.
func rotatesPreregisteredKeys(s *Site, p *oxdclient.UpdateSiteParams) bool {
	if !s.Preregistered || siteMethod(s) != clientauth.MethodPrivateKeyJWT || s.ClientKeys == nil {
		return false
	}
	q := *p
	q.OxdID, q.Protection = "", oxdclient.Protection{}
	return reflect.DeepEqual(q, oxdclient.UpdateSiteParams{})
}

// rotatePreregisteredKeys rotates the key set of a pre-registered
// private_key_jwt site (update_site with only oxd_id): the new key is
// published at once (get_client_jwks, ClientJWKSPathPrefix) and signs
// after keyRotationLead, longer than the route's max-age, so an OP that
// fetches the client's jwks_uri sees it first (an OP holding a pasted
// jwks needs the new document within that time); the superseded key stays
// published for clientauth.KeyRetireGrace. Called with the site locked.
func (e *Engine) rotatePreregisteredKeys(ctx context.Context, s *Site) (any, error) {
	if s.SetupOxdID != "" && s.SetupClientID == s.ClientID {
		return nil, oxdErr(oxdclient.CodeInvalidRequest, "The site's client also plays the protection role (setup_client with one pre-registered client), whose keys would diverge: run setup_client again to replace them.")
	}
	now := time.Now()
	s.ClientKeys = s.ClientKeys.Clone()
	if _, err := s.ClientKeys.Rotate("", now, keyRotationLead); err != nil {
		return nil, oxdErr(oxdclient.CodeInvalidRequest, "The client's keys cannot be rotated now: "+err.Error())
	}
	if err := e.putSite(ctx, s); err != nil {
		return nil, fmt.Errorf("store site: %w", err)
	}
	return oxdIDAnswer{OxdID: nstr(s.OxdID)}, nil
}
