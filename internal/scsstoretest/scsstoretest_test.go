package scsstoretest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
)

// TestMemstore runs the suite on scs's own memstore, the reference
// implementation: the suite asks nothing of a store that scs's own store
// does not do.
func TestMemstore(t *testing.T) {
	Run(t, func(t *testing.T) scs.Store {
		// No cleanup goroutine (its StopCleanup races with its start):
		// Find and All check the expiry themselves.
		return memstore.NewWithCleanupInterval(0)
	})
}

func TestToken(t *testing.T) {
	a, b := Token(), Token()
	if len(a) != 43 || a == b {
		t.Fatalf("Token() = %q, %q", a, b)
	}
}

// broken is a memstore with one defect, for TestSuiteCatchesDefects.
type broken struct {
	*memstore.MemStore
	defect string
}

func (b broken) Find(token string) ([]byte, bool, error) {
	if b.defect == "error on missing" {
		d, found, err := b.MemStore.Find(token)
		if err != nil || !found {
			return nil, false, errors.New("not there")
		}
		return d, found, nil
	}
	return b.MemStore.Find(token)
}

func (b broken) Commit(token string, d []byte, expiry time.Time) error {
	if b.defect == "no expiry" {
		expiry = time.Now().Add(time.Hour)
	}
	return b.MemStore.Commit(token, d, expiry)
}

func (b broken) Delete(token string) error {
	if b.defect == "no delete" {
		return nil
	}
	return b.MemStore.Delete(token)
}

func (b broken) All() (map[string][]byte, error) {
	all, err := b.MemStore.All()
	if b.defect == "nil map" && len(all) == 0 {
		return nil, err
	}
	return all, err
}

// ctxIgnored has context methods that ignore the context.
type ctxIgnored struct{ broken }

func (c ctxIgnored) FindCtx(_ context.Context, token string) ([]byte, bool, error) {
	return c.Find(token)
}
func (c ctxIgnored) CommitCtx(_ context.Context, token string, b []byte, expiry time.Time) error {
	return c.Commit(token, b, expiry)
}
func (c ctxIgnored) DeleteCtx(_ context.Context, token string) error { return c.Delete(token) }

const childEnv = "OXD_SCSSTORETEST_DEFECT"

// TestBrokenChild runs the suite on a store with the defect named by
// childEnv; it does nothing (and passes) otherwise.
func TestBrokenChild(t *testing.T) {
	defect := os.Getenv(childEnv)
	if defect == "" {
		return
	}
	Run(t, func(t *testing.T) scs.Store {
		b := broken{MemStore: memstore.NewWithCleanupInterval(0), defect: defect}
		if defect == "context ignored" {
			return ctxIgnored{b}
		}
		return b
	})
}

// TestSuiteCatchesDefects: the suite fails a store with a defect, in the
// case that covers it (a suite that cannot fail proves nothing).
func TestSuiteCatchesDefects(t *testing.T) {
	for defect, failing := range map[string][]string{
		"error on missing": {"FindMissing"},
		"no expiry":        {"Expiry", "ExpiryShortened", "CommitPastDeadline", "All"},
		"no delete":        {"Delete", "Concurrent"},
		"nil map":          {"AllEmpty"},
		"context ignored":  {"CanceledContext"},
	} {
		t.Run(defect, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+defect)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with the defect %q:\n%s", defect, out)
			}
			for _, c := range failing {
				if !strings.Contains(string(out), "--- FAIL: TestBrokenChild/contract/"+c+" ") {
					t.Errorf("case %s did not fail for the defect %q", c, defect)
				}
			}
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}
