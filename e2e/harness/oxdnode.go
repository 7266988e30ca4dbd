package harness

import (
	"path/filepath"
	"testing"
)

// OxdNodeDir returns e2e/oxdnode, the npm project that holds oxd-node@3.1.4,
// after checking that node and the package are installed. Run node scripts
// there (cmd.Dir = OxdNodeDir(t)) so that require('oxd-node') resolves.
func OxdNodeDir(t testing.TB) string {
	t.Helper()
	NodePath(t)
	d := filepath.Join(e2eDir(t), "oxdnode")
	if !fileExists(filepath.Join(d, "node_modules", "oxd-node", "package.json")) {
		Required(t, "oxd-node is not installed in e2e/oxdnode (npm ci there)")
	}
	return d
}
