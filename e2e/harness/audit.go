package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The secrets audit (house issue 13): every log line of every process of
// ours that the e2e suite and the load suite run, at debug level, is
// captured in a file, and none may contain a secret that the OP issued or
// received: a client secret, an access, refresh or ID token, an RPT or
// protection token, a registration access token, an authorization code, a
// client assertion (the JWT of private_key_jwt and client_secret_jwt).
//
// In the e2e suite, the OP (e2e/op/provider.mjs) writes every such value it
// issues or receives to a ledger (OP_SECRETS_FILE); StartProcessGroup logs
// the processes of ours (the demo, oxd-server) and DebugLogger the engines
// and middlewares the tests run in process; TestMain audits them all at
// the end (AuditRun). In the load suite the OP's fault proxy collects the
// secrets from the wire (e2e/load).

// MinSecretLen: shorter strings are not secrets of ours (and would match by
// chance); the audit looks for the first MinSecretLen characters of each.
const MinSecretLen = 12

// Secrets is a set of secret strings seen during a run.
type Secrets struct {
	mu sync.Mutex
	m  map[string]struct{}
}

// NewSecrets returns an empty set.
func NewSecrets() *Secrets { return &Secrets{m: map[string]struct{}{}} }

// Add records v when it is long enough to be a secret, and for a JWT (an ID
// token, a client assertion, a JWT access token) its signature part alone
// too: a log that printed the JWT cut or re-encoded still shows it.
func (s *Secrets) Add(v string) {
	v = strings.TrimSpace(v)
	if len(v) < MinSecretLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[v] = struct{}{}
	if parts := strings.Split(v, "."); len(parts) == 3 && len(parts[2]) >= MinSecretLen {
		s.m[parts[2]] = struct{}{}
	}
}

// AddLedger adds every line of the OP's ledger file (a missing file adds
// nothing).
func (s *Secrets) AddLedger(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.Add(sc.Text())
	}
	return sc.Err()
}

// List returns the secrets.
func (s *Secrets) List() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for k := range s.m {
		out = append(out, k)
	}
	return out
}

// Len is the number of secrets.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Leak is a secret found in a log.
type Leak struct {
	File string
	Line int
	// Kind describes the secret without showing it: its length and first
	// four characters.
	Kind string
}

// AuditLogs looks for every secret (its first MinSecretLen characters,
// anywhere in a line) in every line of the files. It returns the leaks, the
// number of lines read and an error for a file that cannot be read.
func AuditLogs(secrets []string, files []string) (leaks []Leak, lines int, err error) {
	prefix := make(map[string]string, len(secrets))
	for _, s := range secrets {
		if len(s) >= MinSecretLen {
			prefix[s[:MinSecretLen]] = s
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return leaks, lines, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			lines++
			for j := 0; j+MinSecretLen <= len(line); j++ {
				if s, ok := prefix[line[j:j+MinSecretLen]]; ok {
					leaks = append(leaks, Leak{File: f, Line: i + 1, Kind: fmt.Sprintf("%d-character secret starting %q", len(s), s[:4])})
					break
				}
			}
		}
	}
	return leaks, lines, nil
}

// audit is what this test binary registered for AuditRun.
var audit struct {
	once    sync.Once
	dir     string
	dirErr  error
	mu      sync.Mutex
	own     []string // logs of ours
	ledgers []string // the OPs' secrets ledgers
	n       int
}

// auditDir is e2e/artifacts/e2e-logs, emptied once per test binary.
func auditDir() (string, error) {
	audit.once.Do(func() {
		d := Dir()
		if d == "" {
			audit.dirErr = errors.New("the e2e directory was not found; set OXD_E2E_DIR")
			return
		}
		audit.dir = filepath.Join(d, "artifacts", "e2e-logs")
		if audit.dirErr = os.RemoveAll(audit.dir); audit.dirErr == nil {
			audit.dirErr = os.MkdirAll(audit.dir, 0o755)
		}
	})
	return audit.dir, audit.dirErr
}

// auditPath returns a fresh file path in the audit directory for name in
// test t, registered as a log of ours (own) or a ledger.
func auditPath(t testing.TB, name string, own bool) string {
	t.Helper()
	dir, err := auditDir()
	if err != nil {
		t.Fatalf("e2e: audit directory: %v", err)
	}
	audit.mu.Lock()
	defer audit.mu.Unlock()
	audit.n++
	p := filepath.Join(dir, fmt.Sprintf("%04d-%s-%s.log", audit.n, unsafeName.ReplaceAllString(t.Name(), "_"), unsafeName.ReplaceAllString(name, "_")))
	if own {
		audit.own = append(audit.own, p)
	} else {
		audit.ledgers = append(audit.ledgers, p)
	}
	return p
}

// OwnLog returns a fresh log file path for a process of ours named name
// in test t; AuditRun reads it.
func OwnLog(t testing.TB, name string) string { return auditPath(t, name, true) }

// SecretsLedger returns a fresh path for an OP's secrets ledger
// (OP_SECRETS_FILE of e2e/op/provider.mjs); AuditRun reads it.
func SecretsLedger(t testing.TB) string { return auditPath(t, "op-secrets", false) }

// DebugLogger returns a debug-level logger for an engine or middleware that
// test t runs in process, writing to a log of ours (OwnLog).
func DebugLogger(t testing.TB, name string) *slog.Logger {
	t.Helper()
	f, err := os.OpenFile(OwnLog(t, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	w := &lockedWriter{f: f}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lockedWriter drops writes after close (a handler may log after the test).
type lockedWriter struct {
	mu sync.Mutex
	f  *os.File
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return len(p), nil
	}
	return w.f.Write(p)
}

func (w *lockedWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// AuditResult is the outcome of AuditRun.
type AuditResult struct {
	Secrets, Logs, Lines int
	Leaks                []Leak
}

// AuditRun audits every log of ours registered by this test binary against
// every secret of the OPs' ledgers, after checking that the audit finds a
// planted secret. It writes a summary to w.
func AuditRun(w io.Writer) (AuditResult, error) {
	audit.mu.Lock()
	own, ledgers := append([]string(nil), audit.own...), append([]string(nil), audit.ledgers...)
	audit.mu.Unlock()
	var res AuditResult
	secrets := NewSecrets()
	for _, l := range ledgers {
		if err := secrets.AddLedger(l); err != nil {
			return res, err
		}
	}
	list := secrets.List()
	res.Secrets, res.Logs = len(list), len(own)
	if len(list) > 0 {
		// The audit can fail: a planted secret is found.
		canary := filepath.Join(audit.dir, "canary.txt")
		if err := os.WriteFile(canary, []byte("level=DEBUG msg=planted token="+list[0]+"\n"), 0o600); err != nil {
			return res, err
		}
		leaks, _, err := AuditLogs(list, []string{canary})
		os.Remove(canary)
		if err != nil || len(leaks) != 1 {
			return res, fmt.Errorf("the audit missed a planted secret (%v)", err)
		}
	}
	var existing []string
	for _, f := range own {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	leaks, lines, err := AuditLogs(list, existing)
	if err != nil {
		return res, err
	}
	res.Lines, res.Leaks = lines, leaks
	fmt.Fprintf(w, "e2e secrets audit: %d secrets from %d OP ledgers, %d log lines in %d logs of ours, %d leaks\n",
		res.Secrets, len(ledgers), res.Lines, len(existing), len(leaks))
	for i, l := range leaks {
		if i == 20 {
			fmt.Fprintf(w, "... %d more\n", len(leaks)-20)
			break
		}
		fmt.Fprintf(w, "secret in a log: %s line %d: %s\n", filepath.Base(l.File), l.Line, l.Kind)
	}
	return res, nil
}
