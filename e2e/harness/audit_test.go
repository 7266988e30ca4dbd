package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditFindsPlantedSecrets: the audit finds each kind of secret a log
// could leak, from the OP's ledger: a client secret inside a line, an
// authorization code in a logged URL, a client assertion (a JWT) whole or
// only its signature, a token URL-encoded nowhere; a line without secrets
// is clean, and a leak's description does not show the secret.
func TestAuditFindsPlantedSecrets(t *testing.T) {
	dir := t.TempDir()
	const (
		clientSecret = "cs-3b1e0f6a9d2c4e7b8a5f"
		code         = "Xq2v9LrT0bWmZkP4nYhC8sJdFgE1uA7o"
		assertion    = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJjbGllbnQiLCJqdGkiOiIxIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
		refresh      = "rt_9f8e7d6c5b4a39281706f5e4"
	)
	ledger := filepath.Join(dir, "ledger")
	if err := os.WriteFile(ledger, []byte(strings.Join([]string{clientSecret, code, assertion, refresh, "short"}, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewSecrets()
	if err := s.AddLedger(ledger); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLedger(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("a missing ledger: %v", err)
	}
	if s.Len() != 5 { // four secrets and the assertion's signature; "short" is too short
		t.Fatalf("%d secrets: %q", s.Len(), s.List())
	}
	lines := []string{
		`level=DEBUG msg="oxd call" command=get_tokens_by_code`,           // clean
		`level=DEBUG msg=register client_secret=` + clientSecret + ` x=1`, // 2
		`level=INFO msg=callback url="/callback?code=` + code + `&state=s"`,
		`level=DEBUG msg=token client_assertion=` + assertion,
		`level=DEBUG msg=sig ` + assertion[strings.LastIndexByte(assertion, '.')+1:], // 5: the signature alone
		`level=DEBUG msg=refresh token=` + refresh[:MinSecretLen] + `…`,              // 6: cut, still found
		`level=DEBUG msg="a token" token=[redacted]`,
	}
	log := filepath.Join(dir, "app.log")
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	leaks, n, err := AuditLogs(s.List(), []string{log})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(lines)+1 {
		t.Errorf("%d lines read, want %d", n, len(lines)+1)
	}
	var at []int
	for _, l := range leaks {
		at = append(at, l.Line)
		for _, sec := range []string{clientSecret, code, assertion, refresh} {
			if strings.Contains(l.Kind, sec[:MinSecretLen]) {
				t.Errorf("the leak's description shows the secret: %s", l.Kind)
			}
		}
	}
	if want := []int{2, 3, 4, 5, 6}; len(at) != len(want) || !equalInts(at, want) {
		t.Errorf("leaks on lines %v, want %v", at, want)
	}
}

func equalInts(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}
