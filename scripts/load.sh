#!/usr/bin/env bash
# The load and fault suite of oxd for Go (e2e/load; design §5, §7), and the
# peer benchmark against oauth2-proxy (e2e/bench/peer).
#
#   bash scripts/load.sh            short mode (CI): 50 users, scenarios a b d e f h,
#                                   d on a Redis Cluster, a b against the development
#                                   OP, the secrets audit; ~1.5 min on 2 cores
#   bash scripts/load.sh --long     long mode: 500 users, plus (c) one refresh across
#                                   replicas and (g) 100,000 anonymous navigations,
#                                   then every fuzz target for a fixed budget
#                                   (scripts/fuzz.sh; FUZZTIME, default 30s each)
#   bash scripts/load.sh --fuzz     the fuzzing of the long mode alone
#   bash scripts/load.sh --peer [flags]
#                                   side by side with oauth2-proxy v7.15.6 (built with
#                                   `go install` into a temporary GOBIN, never into the
#                                   repository; OAUTH2_PROXY=<binary> reuses one);
#                                   flags of e2e/bench/peer, e.g. -rounds 5 -duration 10s
#
# Everything runs on 127.0.0.1: Redis, oidc-provider (e2e/op, `npm ci` here
# when missing), cmd/oxd-server, two replicas of e2e/load/app. Every process
# is started in its own process group and stopped by its PID. Figures go to
# e2e/artifacts/load-*.json (JSON lines) and are printed; the logs of every
# process are in e2e/artifacts/load-logs/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CI="${CI:-true}"

usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
	exit 2
}

need() {
	command -v "$1" >/dev/null 2>&1 || {
		echo "load.sh: $1 is required ($2)" >&2
		exit 1
	}
}
need node "Debian: apt-get install nodejs npm"
need redis-server "Debian: apt-get install redis-server"
need redis-cli "Debian: apt-get install redis-server"
if [[ ! -f e2e/op/node_modules/oidc-provider/package.json ]]; then
	echo "load.sh: installing oidc-provider in e2e/op (npm ci)" >&2
	(cd e2e/op && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

T0=$(date +%s)
rm -f e2e/artifacts/load-{main,devop,cluster,refresh,flood}.json

case "${1:-}" in
"" | --short)
	set +e
	(cd e2e && OXD_LOAD=short go test -count=1 -timeout 8m -v ./load/)
	rc=$?
	set -e
	;;
--long)
	set +e
	(cd e2e && OXD_LOAD=long go test -count=1 -timeout 45m -v ./load/)
	rc=$?
	bash scripts/fuzz.sh
	frc=$?
	set -e
	[[ $rc -ne 0 ]] || rc=$frc
	;;
--fuzz)
	set +e
	bash scripts/fuzz.sh
	rc=$?
	set -e
	;;
--peer)
	shift
	WORK=$(mktemp -d)
	trap 'rm -rf "$WORK"' EXIT
	O2P=${OAUTH2_PROXY:-}
	if [[ -z "$O2P" ]]; then
		echo "load.sh: building oauth2-proxy v7.15.6 (go install into $WORK/bin)" >&2
		(cd "$WORK" && GOBIN="$WORK/bin" GOWORK=off GOFLAGS=-mod=mod go install github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6)
		O2P="$WORK/bin/oauth2-proxy"
	fi
	(cd e2e && go build -o "$WORK/peer" ./bench/peer)
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n1), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	set +e
	"$WORK/peer" -oauth2-proxy "$O2P" "$@"
	rc=$?
	set -e
	;;
*)
	usage
	;;
esac
echo "load.sh: finished in $(($(date +%s) - T0)) s (exit $rc)" >&2
if [[ "${1:-}" != "--peer" && "${1:-}" != "--fuzz" ]]; then
	echo "figures (e2e/artifacts/load-{main,devop,cluster,refresh,flood}.json):" >&2
	{ cat e2e/artifacts/load-{main,devop,cluster,refresh,flood}.json 2>/dev/null || true; } >&2
fi
exit "$rc"
