#!/usr/bin/env bash
# Fuzzing with a fixed budget: every fuzz target of the repository (every
# `func FuzzXxx(f *testing.F)` in a _test.go file of any module), one at a
# time, for the same -fuzztime each.
#
#   bash scripts/fuzz.sh                 30 s per target
#   FUZZTIME=2m bash scripts/fuzz.sh     another budget (any -fuzztime value,
#                                        e.g. 10000x for a count of executions)
#   FUZZ_PARALLEL=2                      fuzzing workers per target (default 2)
#   FUZZ_ONLY=<regexp>                   only the targets whose "<dir> <target>"
#                                        matches (grep -E)
#
# A crasher fails the run: `go test -fuzz` writes the failing input to the
# package's testdata/fuzz/<Target>/ (where it becomes a seed that plain
# `go test` runs every time); this script names it so that it is committed
# with the fix. A run that ends only with Go 1.26's own "context deadline
# exceeded" at the -fuzztime boundary (go.dev/issue/75804: no input
# failed, none written) is counted and reported, not failed. Executions
# per target are printed and written to
# e2e/artifacts/fuzz.txt. `bash scripts/load.sh --long` runs this script.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FUZZTIME=${FUZZTIME:-30s}
PARALLEL=${FUZZ_PARALLEL:-2}
OUT=e2e/artifacts/fuzz.txt
mkdir -p e2e/artifacts
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

# module_of prints the directory of the go.mod that owns directory $1.
module_of() {
	local d=$1
	while [[ "$d" != "." && ! -f "$d/go.mod" ]]; do
		d=$(dirname "$d")
	done
	echo "$d"
}

# Every target: "<package dir> <target>", in a stable order.
mapfile -t TARGETS < <(
	grep -rE --include='*_test.go' -l '^func Fuzz[A-Z0-9_][A-Za-z0-9_]*\(f \*testing\.F\)' . |
		grep -v -e '/node_modules/' -e '/\.git/' |
		while read -r f; do
			sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(f \*testing\.F\).*/\1/p' "$f" |
				while read -r t; do echo "$(dirname "${f#./}") $t"; done
		done | sort -u | grep -E -- "${FUZZ_ONLY:-.}"
)
if [[ ${#TARGETS[@]} -eq 0 ]]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

echo "fuzz.sh: ${#TARGETS[@]} targets, -fuzztime $FUZZTIME each, $PARALLEL workers" >&2
printf '%-34s %-22s %12s %s\n' package target execs result >"$OUT"
failed=0
races=0

# deadline_race reports whether the go test log $1 failed only with the
# fuzzing coordinator's own deadline: the target's one failure line is
# "context deadline exceeded", and no input was reported as failing.
deadline_race() {
	local log=$1
	grep -q -- '--- FAIL: Fuzz' "$log" &&
		[[ $(grep -A1 -- '--- FAIL: Fuzz' "$log" | tail -n1 | tr -d '[:space:]') == contextdeadlineexceeded ]] &&
		! grep -q -e 'Failing input written to' -e 'panic:' -e '_test.go:[0-9]' "$log"
}

for entry in "${TARGETS[@]}"; do
	dir=${entry% *}
	target=${entry#* }
	mod=$(module_of "$dir")
	rel=${dir#"$mod"}
	rel=${rel#/}
	log="$LOGS/${dir//\//_}.$target.log"
	before=$(find "$dir/testdata/fuzz/$target" -type f 2>/dev/null | sort || true)
	set +e
	(cd "$mod" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel "$PARALLEL" "./${rel:-.}") >"$log" 2>&1
	rc=$?
	set -e
	execs=$( (grep -oE 'execs: [0-9]+' "$log" || true) | tail -n1 | awk '{print $2}')
	result=ok
	if [[ $rc -ne 0 ]]; then
		after=$(find "$dir/testdata/fuzz/$target" -type f 2>/dev/null | sort || true)
		new=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
		if [[ -n "$new" ]]; then
			failed=$((failed + 1))
			result="CRASHER: $(echo "$new" | tr '\n' ' ')(commit it with the fix)"
		elif deadline_race "$log"; then
			# Go 1.26's fuzzing coordinator can report its own -fuzztime
			# deadline as a failure when a worker is mid-input at that
			# instant (go.dev/issue/75804, fixed in Go 1.27): no input
			# failed and none was written. Counted, not failed.
			races=$((races + 1))
			result="ok (no input failed; the run ended on the toolchain's fuzztime deadline race, go.dev/issue/75804)"
		else
			failed=$((failed + 1))
			result="FAILED (exit $rc)"
		fi
		if [[ $result != ok* ]]; then
			echo "fuzz.sh: $dir $target failed; last lines:" >&2
			tail -n 30 "$log" >&2
		fi
	fi
	printf '%-34s %-22s %12s %s\n' "$dir" "$target" "${execs:-0}" "$result" | tee -a "$OUT" >&2
done
if [[ $failed -gt 0 ]]; then
	echo "fuzz.sh: $failed of ${#TARGETS[@]} targets failed" >&2
	exit 1
fi
echo "fuzz.sh: all ${#TARGETS[@]} targets ran $FUZZTIME without a failure ($races ended on the toolchain's deadline race)" >&2
