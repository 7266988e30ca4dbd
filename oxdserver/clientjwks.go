package oxdserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

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
// shorter than keyRotationLead, so an OP that honours it fetches a
// rotated key before the key signs.
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
	ClientJWKS(ctx context.Context, oxdID string) ([]byte, error)
}

// validOxdIDSegment accepts the characters of the engine's oxd_ids (and of
// Gluu's): letters, digits, '-', '_' and '.', at most 128 of them.
func validOxdIDSegment(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// serveClientJWKS answers GET/HEAD ClientJWKSPathPrefix+oxd_id.
func (h *httpsHandler) serveClientJWKS(w http.ResponseWriter, r *http.Request) (int, string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return feWriteDropwizardError(w, http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed"), "method_not_allowed"
	}
	id := strings.TrimPrefix(r.URL.Path, ClientJWKSPathPrefix)
	src, ok := h.ex.(clientJWKSSource)
	if !ok || !validOxdIDSegment(id) {
		return feWriteDropwizardError(w, http.StatusNotFound, "HTTP 404 Not Found"), "not_found"
	}
	b, err := src.ClientJWKS(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoClientKeys):
		return feWriteDropwizardError(w, http.StatusNotFound, "HTTP 404 Not Found"), "not_found"
	case err != nil:
		h.log.Error("oxd client JWKS cannot be served", "err", err.Error())
		return feWriteDropwizardError(w, http.StatusInternalServerError, "HTTP 500 Internal Server Error"), "internal_error"
	}
	hd := w.Header()
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
