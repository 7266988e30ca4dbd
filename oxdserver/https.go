package oxdserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// DefaultHTTPSMaxBody bounds a request body of the HTTPS-extension handler.
const DefaultHTTPSMaxBody = 256 << 10

// HTTPSConfig configures [NewHTTPSHandler].
type HTTPSConfig struct {
	// RequireOperatorToken: see SocketServer.RequireOperatorToken.
	RequireOperatorToken bool

	// MaxBody bounds the request body in bytes (default 256 KiB); a larger
	// body is answered 413.
	MaxBody int64

	// Logger receives one debug line per request (path, HTTP status,
	// outcome code, duration) and failures at warn/error. It never
	// receives bodies, headers or secrets. Nil: silent.
	Logger *slog.Logger
}

// httpsRoutes maps the paths of oxd-https-extension 3.1.x (reference §5) to
// commands and whether they need the Authorization header.
var httpsRoutes = map[string]struct {
	command   string
	protected bool
}{
	"/setup-client":                      {oxdclient.CmdSetupClient, false},
	"/get-client-token":                  {oxdclient.CmdGetClientToken, false},
	"/register-site":                     {oxdclient.CmdRegisterSite, true},
	"/update-site":                       {oxdclient.CmdUpdateSite, true},
	"/remove-site":                       {oxdclient.CmdRemoveSite, true},
	"/get-authorization-url":             {oxdclient.CmdGetAuthorizationURL, true},
	"/get-tokens-by-code":                {oxdclient.CmdGetTokensByCode, true},
	"/get-user-info":                     {oxdclient.CmdGetUserInfo, true},
	"/get-logout-uri":                    {oxdclient.CmdGetLogoutURI, true},
	"/get-access-token-by-refresh-token": {oxdclient.CmdGetAccessTokenByRefreshToken, true},
	"/introspect-access-token":           {oxdclient.CmdIntrospectAccessToken, true},
	"/introspect-rpt":                    {oxdclient.CmdIntrospectRPT, true},
	"/uma-rs-protect":                    {oxdclient.CmdUMARSProtect, true},
	"/uma-rs-check-access":               {oxdclient.CmdUMARSCheckAccess, true},
	"/uma-rp-get-rpt":                    {oxdclient.CmdUMARPGetRPT, true},
	"/uma-rp-get-claims-gathering-url":   {oxdclient.CmdUMARPGetClaimsGatheringURL, true},
	"/revoke-token":                      {oxdclient.CmdRevokeToken, true},   // extension (RFC 7009)
	"/get-client-jwks":                   {oxdclient.CmdGetClientJWKS, true}, // extension
}

const fePathHealthCheck = "/health-check"

// feForbiddenBody is what oxd-https-extension 3.1.4 answers (HTTP 403) when
// the Authorization header is missing or not "Bearer <token>": Dropwizard's
// error message whose text is an oxd error envelope.
const feForbiddenBody = `{"code":403,"message":"{\"status\":\"error\",\"data\":{\"error\":\"403\",\"error_description\":\"Forbidden Access\",\"details\":null}}"}`

// NewHTTPSHandler returns an http.Handler that speaks the protocol of
// oxd-https-extension 3.1.x (reference §5) on top of e:
//
//   - GET /health-check answers "running";
//   - POST /<command-with-dashes> (the 16 commands of reference §5) takes
//     the bare params object as body and answers the socket envelope
//     {"status","data"} with HTTP 200, also for status "error";
//   - an oxd error http_status_<N> (the OP/AS answered HTTP N) is answered
//     with HTTP N and {"code":N,"message":"<description>"} (the OP's OAuth
//     error fields only, never its body);
//   - when the engine protects (Config.InsecureNoProtection false, the
//     default), a protected path without "Authorization: Bearer <token>"
//     is answered 403 with the exact body of 3.1.4; the header's token
//     replaces any protection_access_token of the body;
//   - a body that is not a JSON object is answered 400 "Invalid parameters.
//     Message: …"; a JSON null body reaches the engine without params (the
//     "parameters are not specified" error envelope);
//   - a Content-Type other than application/json: 415 (this also keeps
//     browsers from posting cross-site forms to the unprotected paths);
//   - GET ClientJWKSPathPrefix+<oxd_id> (an extension) serves the public
//     JWKS of a private_key_jwt site without authentication: the
//     jwks_uri an OP fetches. Only a UUID-shaped oxd_id reaches the store;
//     answers are cached and store reads limited (see clientJWKSHitTTL:
//     a change by this engine is served at once, a replica's within 30 s),
//     503 with Retry-After when saturated;
//   - unknown path: 404; wrong method: 405 with Allow; body over MaxBody:
//     413. These use Dropwizard's {"code":N,"message":"…"} form.
//
// The handler serves the paths at its root; mount it with http.StripPrefix
// for a prefix. It does not terminate TLS: serve it with
// http.Server.ServeTLS or behind a TLS proxy.
func NewHTTPSHandler(e *Engine, cfg HTTPSConfig) http.Handler {
	var ex feExecutor
	if e != nil {
		ex = e
	}
	h := newHTTPSHandler(ex, cfg)
	if e != nil {
		h.tel = e.tel
	}
	return h
}

func newHTTPSHandler(ex feExecutor, cfg HTTPSConfig) *httpsHandler {
	h := &httpsHandler{ex: ex, cfg: cfg, log: cfg.Logger, protect: true}
	if p, ok := ex.(interface{ Protected() bool }); ok {
		h.protect = p.Protected()
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.cfg.MaxBody <= 0 {
		h.cfg.MaxBody = DefaultHTTPSMaxBody
	}
	return h
}

type httpsHandler struct {
	ex      feExecutor
	cfg     HTTPSConfig
	log     *slog.Logger
	protect bool // the engine checks protection tokens
	tel     *engineTelemetry
}

// feRefusals are the outcomes of requests the handler refuses before the
// engine sees them; they are recorded as the command's result (the engine
// records the others).
var feRefusals = map[string]bool{
	"method_not_allowed": true, "not_found": true, "no_engine": true, "forbidden": true,
	"unsupported_media_type": true, "too_large": true, "bad_body": true, "invalid_parameters": true,
}

func (h *httpsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status, outcome, command := h.serve(w, r)
	if h.tel != nil && feRefusals[outcome] {
		h.tel.recordCommand(r.Context(), commandLabel(command), listenerHTTPS, outcome, time.Since(start))
	}
	h.log.Debug("oxd command", "transport", "https", "path", feLogName(r.URL.Path), "command", command,
		"http_status", status, "outcome", outcome, "duration", time.Since(start))
}

func (h *httpsHandler) serve(w http.ResponseWriter, r *http.Request) (status int, outcome, command string) {
	if r.URL.Path == fePathHealthCheck {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return feWriteDropwizardError(w, http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed"), "method_not_allowed", ""
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "running")
		}
		return http.StatusOK, "ok", ""
	}
	if strings.HasPrefix(r.URL.Path, ClientJWKSPathPrefix) {
		status, outcome = h.observeClientJWKS(w, r)
		return status, outcome, ""
	}
	route, ok := httpsRoutes[r.URL.Path]
	if !ok {
		return feWriteDropwizardError(w, http.StatusNotFound, "HTTP 404 Not Found"), "not_found", ""
	}
	command = route.command
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return feWriteDropwizardError(w, http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed"), "method_not_allowed", command
	}
	if h.ex == nil {
		return feWriteText(w, http.StatusInternalServerError, "Command client is not able to connect to oxd-server."), "no_engine", command
	}
	token, hasToken := feBearerToken(r.Header.Get("Authorization"))
	if route.protected && h.protect && !hasToken {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, feForbiddenBody)
		return http.StatusForbidden, "forbidden", command
	}
	if !feIsJSONContentType(r.Header.Get("Content-Type")) {
		return feWriteDropwizardError(w, http.StatusUnsupportedMediaType, "HTTP 415 Unsupported Media Type"), "unsupported_media_type", command
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return feWriteDropwizardError(w, http.StatusRequestEntityTooLarge, "HTTP 413 Request Entity Too Large"), "too_large", command
		}
		return feWriteText(w, http.StatusBadRequest, "Invalid parameters. Message: cannot read the request body"), "bad_body", command
	}

	trimmed := bytes.TrimSpace(body)
	req := Request{Command: command, requireOperator: h.cfg.RequireOperatorToken, listener: listenerHTTPS}
	switch {
	case feIsJSONNull(trimmed):
		// No parameters: the engine answers "Command parameters are not
		// specified or otherwise malformed."
	case len(trimmed) == 0 || trimmed[0] != '{':
		return feWriteText(w, http.StatusBadRequest, "Invalid parameters. Message: the body must be a JSON object with the command's parameters"), "invalid_parameters", command
	default:
		if err := feCheckJSON(trimmed); err != nil {
			return feWriteText(w, http.StatusBadRequest, "Invalid parameters. Message: "+err.Error()), "invalid_parameters", command
		}
		req.Params = json.RawMessage(trimmed)
	}
	if hasToken {
		req.ProtectionToken = token
	}
	// The caller's trace context: W3C traceparent and tracestate headers.
	data, oerr := feRunCommand(traceFromHeaders(r.Context(), r.Header), h.ex, req, h.log)

	if oerr != nil {
		if n := oerr.HTTPStatus(); n != 0 {
			// The OP/AS answered HTTP N: pass status and body on, as 3.1.4
			// does. Statuses that cannot stand for a failure become 502.
			if n < 400 {
				n = http.StatusBadGateway
			}
			return feWriteDropwizardError(w, n, oerr.Description), oerr.Code, command
		}
		feWriteJSON(w, http.StatusOK, feEncodeError(oerr))
		return http.StatusOK, oerr.Code, command
	}
	resp, err := feEncodeOK(data)
	if err != nil {
		h.log.Error("oxd command answer cannot be encoded", "command", command, "err", err)
		feWriteJSON(w, http.StatusOK, []byte(feGenericInternalError))
		return http.StatusOK, oxdclient.CodeInternalError, command
	}
	feWriteJSON(w, http.StatusOK, resp)
	return http.StatusOK, "ok", command
}

// feBearerToken returns the token of "Bearer <token>" (exactly that scheme
// spelling and one space, as oxd-https-extension checks) when it is not
// blank.
func feBearerToken(h string) (string, bool) {
	const p = "Bearer "
	if !strings.HasPrefix(h, p) {
		return "", false
	}
	t := strings.TrimSpace(h[len(p):])
	return t, t != ""
}

func feIsJSONContentType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// feCheckJSON reports why b is not valid JSON, with the offset of the error
// (never quoting the body, which may hold secrets).
func feCheckJSON(b []byte) error {
	if json.Valid(b) {
		return nil
	}
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return errors.New("invalid JSON at offset " + strconv.FormatInt(se.Offset, 10))
	}
	return errors.New("invalid JSON")
}

func feWriteJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// feWriteText writes a plain message the way Dropwizard 0.9.1 renders a
// WebApplicationException whose entity is a string: the text itself, typed
// application/json (reference §5).
func feWriteText(w http.ResponseWriter, status int, msg string) int {
	feWriteJSON(w, status, []byte(msg))
	return status
}

// feWriteDropwizardError writes {"code":N,"message":"<msg>"}.
func feWriteDropwizardError(w http.ResponseWriter, status int, msg string) int {
	b, err := feMarshalJSON(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{status, msg})
	if err != nil {
		b = []byte(`{"code":` + strconv.Itoa(status) + `,"message":""}`)
	}
	feWriteJSON(w, status, b)
	return status
}
