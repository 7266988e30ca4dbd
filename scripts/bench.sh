#!/usr/bin/env bash
# Performance benchmarks of oxd for Go that need more than one
# `go test -bench` (design §5; results in BENCHMARKS.md).
#
#   bash scripts/bench.sh p2 [flags]   socket throughput, oxdclient vs oxd-node@3.1.4
#                                     flags of e2e/bench/p2, e.g. -rounds 3 -duration 5s
#                                     -callers 8 -single=false -only a|b
#   bash scripts/bench.sh p5 [rounds]  login through the engine vs straight to the OP
#                                     (BenchmarkLogin in oxdserver, default 3 rounds)
#
# p2 needs node and oxd-node in e2e/oxdnode (installed here with `npm ci`
# when missing). It prints a Markdown report on stdout, progress on stderr.
# p5 compiles the oxdserver test binary once and runs BenchmarkLogin's two
# sub-benchmarks in alternating order in every round, then prints the
# medians and the engine/direct ratio. BENCH_TIME (default 2s) is the
# -benchtime of each sub-benchmark run.
#
# The machine may be shared: look at `uptime` first, and compare numbers of
# one run only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

usage() {
	sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

p2() {
	if ! command -v node >/dev/null; then
		echo "bench.sh: node is required (Debian: apt-get install nodejs npm)" >&2
		exit 1
	fi
	if [[ ! -f e2e/oxdnode/node_modules/oxd-node/package.json ]]; then
		echo "bench.sh: installing oxd-node in e2e/oxdnode (npm ci)" >&2
		(cd e2e/oxdnode && npm ci --no-audit --no-fund >&2)
	fi
	(cd e2e && go build -o "$WORK/p2" ./bench/p2)
	"$WORK/p2" -oxdnode-dir "$ROOT/e2e/oxdnode" -script "$ROOT/e2e/bench/p2/oxdnode-load.js" "$@"
}

p5() {
	local rounds=${1:-3}
	if ! [[ $rounds =~ ^[1-9][0-9]*$ ]]; then
		usage
	fi
	local benchtime=${BENCH_TIME:-2s}
	go test -c -o "$WORK/oxdserver.test" ./oxdserver
	echo "uptime before: $(uptime)" >&2
	local r side order head=1
	for ((r = 1; r <= rounds; r++)); do
		order="engine direct"
		if ((r % 2 == 0)); then
			order="direct engine"
		fi
		for side in $order; do
			(cd oxdserver && "$WORK/oxdserver.test" -test.run '^$' -test.bench "^BenchmarkLogin\$/^${side}\$" \
				-test.benchmem -test.benchtime "$benchtime") |
				awk -v r="$r" -v head="$head" '/^(goos|goarch|cpu):/ && head { print > "/dev/stderr" } /^BenchmarkLogin\// { print "round " r ": " $0 }' |
				tee -a "$WORK/p5.txt"
			head=0
		done
	done
	echo "uptime after: $(uptime)" >&2
	awk '
		{ side = ($3 ~ /engine/) ? "engine" : "direct"; ns[side, $2 + 0] = $5; n[side]++; if ($2 + 0 > rounds) rounds = $2 + 0 }
		function median(a, k,   i, j, t) {
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
		}
		END {
			k = 0
			for (i = 1; i <= rounds; i++) {
				if (!((("engine", i) in ns) && (("direct", i) in ns))) continue
				k++; e[k] = ns["engine", i]; d[k] = ns["direct", i]; q[k] = ns["engine", i] / ns["direct", i]
				if (k == 1 || q[k] < lo) lo = q[k]
				if (k == 1 || q[k] > hi) hi = q[k]
			}
			if (k == 0) { print "bench.sh: no complete round" > "/dev/stderr"; exit 1 }
			me = median(e, k); md = median(d, k); mq = median(q, k)
			printf "P5 over %d rounds: engine %.0f ns/op (median), direct %.0f ns/op (median)\n", k, me, md
			printf "engine/direct: %.3f (median of per-round ratios; min %.3f, max %.3f); target <= 1.3: %s\n", mq, lo, hi, (mq <= 1.3) ? "met" : "MISSED"
		}' "$WORK/p5.txt"
}

case "${1:-}" in
p2)
	shift
	p2 "$@"
	;;
p5)
	shift
	p5 "$@"
	;;
*)
	usage
	;;
esac
