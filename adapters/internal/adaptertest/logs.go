package adaptertest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Logs returns the lines the middleware has logged at level or above so
// far, each as "LEVEL message key=value …".
func (e *Env) Logs(level slog.Level) []string {
	return e.rec.logs.lines(level)
}

// logHandler is the middleware's logger: it keeps every record.
type logHandler struct {
	mu      sync.Mutex
	records []logLine
	attrs   []slog.Attr
	parent  *logHandler
}

type logLine struct {
	level slog.Level
	text  string
}

func (h *logHandler) root() *logHandler {
	for h.parent != nil {
		h = h.parent
	}
	return h
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	root := h.root()
	root.mu.Lock()
	root.records = append(root.records, logLine{level: r.Level, text: b.String()})
	root.mu.Unlock()
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{parent: h.root(), attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

func (h *logHandler) lines(level slog.Level) []string {
	root := h.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	var out []string
	for _, l := range root.records {
		if l.level >= level {
			out = append(out, l.text)
		}
	}
	return out
}
