// Package e2e holds the end-to-end tests of oxd for Go: they run against the
// certified OpenID Provider oidc-provider (with a UMA 2.0 layer), Redis,
// headless Chromium and the oxd-node client, which the harness package starts.
//
// Run them with `bash scripts/test.sh` from the repository root: it installs
// what is missing and sets CI=true, so that a missing component fails instead
// of skipping.
package e2e
