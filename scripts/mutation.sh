#!/usr/bin/env bash
# The mutation check of oxd for Go: proves that the security tests guard
# something. For each security check listed in internal/mutation/mutants.go
# (return-to validation, state comparison, session renewal at login, the UMA
# route-template check, secret redaction, the engine's nonce, at_hash, aud,
# azp, iss, exp and iat checks, the id_token algorithms, PKCE, the
# protection-token checks, the cross-origin checks, …) it disables the check
# in a temporary copy of the module, runs the tests that guard it, and
# requires a failure. The real tree is never modified.
#
#   bash scripts/mutation.sh            # every mutant, prints a table
#   bash scripts/mutation.sh -list      # only locate every target
#   bash scripts/mutation.sh -only 'nonce|pat-' -v
#
# Exits non-zero when a mutant is not caught (MISSED), when its tests select
# nothing (NO TESTS), when it does not compile (BROKEN) or when its target is
# no longer found (NOT FOUND, AMBIGUOUS: the code moved or changed; re-point
# the mutant's Find in internal/mutation/mutants.go). scripts/test.sh runs it
# after the Go tests pass (MUTATION=0 skips it there, except under CI).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GOWORK=off exec go run ./internal/mutation "$@"
