#!/usr/bin/env bash
# The test command of oxd for Go: installs what the tests need, then checks and
# tests every module of go.work. CI runs exactly this (.ci/run).
#
#   bash scripts/test.sh
#
# On Debian 12 as root (or with sudo) it installs what is missing:
#   - apt: chromium, redis-server, and nodejs + npm when node is absent
#   - npm ci in e2e/op (oidc-provider) and e2e/oxdnode (oxd-node)
#   - staticcheck (go install)
# then runs, for every module listed in go.work, from the module's directory:
#   gofmt -l, go vet ./..., staticcheck ./..., go test -race -count=1 ./...
# (e2e/load excepted), and then the load and fault suite in its short mode
# (bash scripts/load.sh, about 1-2 minutes).
#
# then, when every Go test passed, the mutation check (scripts/mutation.sh):
# each security check is disabled in turn in a temporary copy of the module
# and the tests that guard it must fail. MUTATION=0 skips it, except under CI.
#
# CI is exported as true unless it is already set, so a missing component
# fails the tests instead of skipping them. Set CI=false to let them skip
# (internal/ciutil reads CI: unset, empty, false, 0, no and off are off; any
# other value is on). The script starts no service itself: the tests start
# (and stop) their own OP, Redis and browser through e2e/harness.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2, which supports Go 1.26
GO_TEST_TIMEOUT=${GO_TEST_TIMEOUT:-20m}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CI="${CI:-true}"

T0=$(date +%s)
declare -a RESULTS=()
FAILED=0
APT_PID=""
APT_LOG=""
WORK=$(mktemp -d)

cleanup() {
	local rc=$?
	if [[ -n "$APT_PID" ]] && kill -0 "$APT_PID" 2>/dev/null; then
		echo "test.sh: stopping the package installation (pid $APT_PID)" >&2
		kill -TERM "$APT_PID" 2>/dev/null || true
		wait "$APT_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '\n==> %s\n' "$*"; }

# step NAME CMD...: runs CMD, records its result and duration, and goes on.
step() {
	local name=$1
	shift
	local s rc
	s=$(date +%s)
	log "$name"
	set +e
	"$@"
	rc=$?
	set -e
	local d=$(($(date +%s) - s))
	if [[ $rc -eq 0 ]]; then
		RESULTS+=("PASS  ${d}s  $name")
	else
		RESULTS+=("FAIL  ${d}s  $name (exit $rc)")
		FAILED=$((FAILED + 1))
	fi
	return 0
}

summary() {
	local total=$(($(date +%s) - T0))
	printf '\n==> summary (CI=%s)\n' "$CI"
	printf '%s\n' "${RESULTS[@]}"
	if [[ $FAILED -eq 0 ]]; then
		printf 'test.sh: every step succeeded in %dm%02ds\n' $((total / 60)) $((total % 60))
	else
		printf 'test.sh: %d step(s) FAILED after %dm%02ds\n' "$FAILED" $((total / 60)) $((total % 60))
	fi
}

die() {
	echo "test.sh: $*" >&2
	RESULTS+=("FAIL  -  $*")
	FAILED=$((FAILED + 1))
	summary
	exit 1
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "test.sh: need root (or sudo) to run: $*" >&2
		return 1
	fi
}

# ---- 1. system packages ----

have_chromium() { [[ -x /usr/bin/chromium ]] || command -v chromium >/dev/null 2>&1; }

APT_PKGS=()
have_chromium || APT_PKGS+=(chromium)
command -v redis-server >/dev/null 2>&1 || APT_PKGS+=(redis-server)
NODE_FROM_APT=0
if ! command -v node >/dev/null 2>&1; then
	APT_PKGS+=(nodejs npm)
	NODE_FROM_APT=1
elif ! command -v npm >/dev/null 2>&1; then
	die "node is installed but npm is not; install npm for this node ($(node --version))"
fi

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get -o DPkg::Lock::Timeout=300 update -qq &&
		as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${APT_PKGS[@]}"
}

if [[ ${#APT_PKGS[@]} -gt 0 ]]; then
	command -v apt-get >/dev/null 2>&1 || die "missing ${APT_PKGS[*]} and no apt-get to install them"
	APT_LOG="$WORK/apt.log"
	if [[ $NODE_FROM_APT -eq 1 ]]; then
		# npm ci below needs node: install in the foreground.
		step "apt-get install ${APT_PKGS[*]}" apt_install
		[[ $FAILED -eq 0 ]] || die "package installation failed"
	else
		# Chromium and Redis are needed only by the tests: install them in the
		# background while the tools are built and the code is checked.
		log "apt-get install ${APT_PKGS[*]} (in the background, log: $APT_LOG)"
		APT_START=$(date +%s)
		apt_install >"$APT_LOG" 2>&1 &
		APT_PID=$!
	fi
else
	log "system packages: chromium, redis-server and node are present"
fi

# ---- 2. npm packages of the end-to-end tests ----

npm_ci() {
	local dir=$1
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}
step "npm ci (e2e/op)" npm_ci e2e/op
step "npm ci (e2e/oxdnode)" npm_ci e2e/oxdnode

# ---- 3. staticcheck ----

GOBIN_DIR=$(go env GOBIN)
[[ -n "$GOBIN_DIR" ]] || GOBIN_DIR="$(go env GOPATH)/bin"
STATICCHECK="$GOBIN_DIR/staticcheck"
install_staticcheck() {
	if [[ -x "$STATICCHECK" ]] && "$STATICCHECK" -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
		echo "staticcheck ${STATICCHECK_VERSION} already installed"
		return 0
	fi
	go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
}
step "install staticcheck ${STATICCHECK_VERSION}" install_staticcheck

# ---- 4. modules of go.work ----

mapfile -t MODULES < <(go work edit -json | sed -n 's/.*"DiskPath": *"\([^"]*\)".*/\1/p')
[[ ${#MODULES[@]} -gt 0 ]] || die "no module in go.work"
echo "modules: ${MODULES[*]}"

check_gofmt() {
	local out
	out=$(find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*' -not -path '*/testdata/*' -print0 |
		xargs -0 gofmt -l)
	if [[ -n "$out" ]]; then
		echo "not gofmt-formatted:"
		echo "$out"
		return 1
	fi
}
step "gofmt -l" check_gofmt

in_module() {
	local dir=$1
	shift
	(cd "$dir" && "$@")
}

for m in "${MODULES[@]}"; do
	step "go vet ($m)" in_module "$m" go vet ./...
	if [[ -x "$STATICCHECK" ]]; then
		step "staticcheck ($m)" in_module "$m" "$STATICCHECK" ./...
	fi
done

# ---- 5. tests ----

if [[ -n "$APT_PID" ]]; then
	log "waiting for apt-get (pid $APT_PID)"
	set +e
	wait "$APT_PID"
	rc=$?
	set -e
	APT_PID=""
	d=$(($(date +%s) - APT_START))
	if [[ $rc -eq 0 ]]; then
		RESULTS+=("PASS  ${d}s  apt-get install ${APT_PKGS[*]} (background)")
	else
		tail -n 40 "$APT_LOG" >&2 || true
		RESULTS+=("FAIL  ${d}s  apt-get install ${APT_PKGS[*]} (exit $rc)")
		FAILED=$((FAILED + 1))
	fi
fi

log "tool versions"
go version
echo "node $(node --version 2>/dev/null || echo missing), npm $(npm --version 2>/dev/null || echo missing)"
{ /usr/bin/chromium --version 2>/dev/null || chromium --version 2>/dev/null || echo "chromium missing"; } | tail -n 1
redis-server --version 2>/dev/null || echo "redis-server missing"

# The load suite (e2e/load) runs in its own step below, without the race
# detector (it measures), in its short mode.
race_tests() {
	local pkgs
	pkgs=$(go list ./... | grep -v '/e2e/load$')
	# shellcheck disable=SC2086 # one package path per word
	go test -race -count=1 -timeout "$GO_TEST_TIMEOUT" $pkgs
}
FAILED_BEFORE_TESTS=$FAILED
for m in "${MODULES[@]}"; do
	step "go test -race ($m)" in_module "$m" race_tests
done

step "load and fault suite, short mode (scripts/load.sh)" bash scripts/load.sh

# ---- 6. mutation check ----

# ci_on follows internal/ciutil: unset, empty, false, 0, no and off are off.
ci_on() {
	local v
	v=$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')
	v="${v#"${v%%[![:space:]]*}"}"
	v="${v%"${v##*[![:space:]]}"}"
	case "$v" in
	"" | 0 | false | no | off) return 1 ;;
	*) return 0 ;;
	esac
}

if [[ $FAILED -ne $FAILED_BEFORE_TESTS ]]; then
	log "mutation check: not run (the Go tests failed)"
	RESULTS+=("SKIP  -  mutation check (the Go tests failed)")
elif [[ "${MUTATION:-1}" == "0" ]] && ! ci_on; then
	log "mutation check: skipped (MUTATION=0)"
	RESULTS+=("SKIP  -  mutation check (MUTATION=0)")
else
	if [[ "${MUTATION:-1}" == "0" ]]; then
		echo "test.sh: MUTATION=0 is ignored under CI (CI=$CI)"
	fi
	step "mutation check (scripts/mutation.sh)" bash scripts/mutation.sh
fi

summary
[[ $FAILED -eq 0 ]]
