package oxdserver_test

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdserver"
)

// fileStoreWriterEnv makes the test binary a child that writes the file
// store at that path in a loop until it is killed.
const fileStoreWriterEnv = "OXDSERVER_TEST_FILESTORE_WRITER"

// TestMain turns the test binary into the file store writer when
// fileStoreWriterEnv is set (the child of TestFileStoreKilledDuringWrites).
func TestMain(m *testing.M) {
	if path := os.Getenv(fileStoreWriterEnv); path != "" {
		writeFileStoreForever(path)
	}
	os.Exit(m.Run())
}

func writeFileStoreForever(path string) {
	s, err := oxdserver.NewFileStore(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	big := strings.Repeat("x", 4000)
	for i := 0; ; i++ {
		_ = s.PutSite(context.Background(), &oxdserver.Site{OxdID: fmt.Sprintf("site-%d", i%200), ClientID: "c",
			ClientSecret: "CRASH-SECRET-" + big, OPHost: "https://op.example"})
	}
}

// TestFileStoreKilledDuringWrites (server hardening, defect 8): a writer
// killed with SIGKILL in the middle of writes leaves a valid store; its
// stale temporary copies (which hold client secrets) are removed when the
// store is opened again, and nothing else in the directory is touched.
func TestFileStoreKilledDuringWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sites.json")
	keep := []string{".sites.json.backup", ".sites.json.12ab.tmp", ".other.json.123.tmp", "sites.json.123.tmp"}
	for _, k := range keep {
		require.NoError(t, os.WriteFile(filepath.Join(dir, k), []byte("keep"), 0o600))
	}
	stale := func() []string {
		m, err := filepath.Glob(filepath.Join(dir, ".sites.json.*.tmp"))
		require.NoError(t, err)
		var out []string
		for _, f := range m {
			if !strings.HasSuffix(f, ".12ab.tmp") {
				out = append(out, f)
			}
		}
		return out
	}
	leftBehind := 0
	for round := range 8 {
		cmd := osexec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fileStoreWriterEnv+"="+path)
		require.NoError(t, cmd.Start())
		// Let it write for a while (bounded), then kill -9.
		time.Sleep(time.Duration(60+round*15) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		leftBehind += len(stale())
		s, err := oxdserver.NewFileStore(path)
		require.NoError(t, err, "round %d: the store is not valid after kill -9", round)
		assert.Empty(t, stale(), "round %d: stale temporaries left", round)
		_, _ = s.ListSites(context.Background())
	}
	t.Logf("kill -9 left %d temporary copies over 8 rounds; all removed at open", leftBehind)
	// A planted temporary (as a crash leaves it) goes too.
	planted := filepath.Join(dir, ".sites.json.4242.tmp")
	require.NoError(t, os.WriteFile(planted, []byte("CRASH-SECRET"), 0o600))
	_, err := oxdserver.NewFileStore(path)
	require.NoError(t, err)
	assert.NoFileExists(t, planted)
	for _, k := range keep {
		assert.FileExists(t, filepath.Join(dir, k))
	}
}
