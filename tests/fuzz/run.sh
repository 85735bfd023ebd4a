#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build the libFuzzer harnesses with clang in BUILD_DIR (configured once) and
# run each for SECONDS on its seed corpus plus what earlier runs found.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]
#
# Runs under nice: the machines this runs on are small and shared.  Prints one
# line a harness (executions, edges covered, corpus size); exits 1 on a crash,
# leaving the input as BUILD_DIR/crashes/HARNESS/crash-*.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$1
SECONDS_EACH=${2:-15}
shift 2 || true
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(canonicalize modalias options state)

command -v clang >/dev/null || { echo "fuzz: clang is missing (tests/setup.sh installs it)"; exit 1; }
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
	CC=clang nice cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DVFIOD_FUZZ=ON \
		-DVFIOD_SANITIZE=ON -DVFIOD_VM_TESTS=OFF >/dev/null
fi
nice cmake --build "$BUILD" --target fuzz -j2 >"$BUILD/build.log" 2>&1 ||
	{ tail -30 "$BUILD/build.log"; exit 1; }

rc=0
for h in "${HARNESSES[@]}"; do
	corpus=$BUILD/corpus/$h
	crashes=$BUILD/crashes/$h
	mkdir -p "$corpus" "$crashes"
	log=$BUILD/fuzz-$h.log
	# Leaks count as findings too (ASan's leak checker runs after each input).
	if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 nice -n 10 \
		"$BUILD/tests/fuzz/fuzz-$h" -max_total_time="$SECONDS_EACH" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
		-dict="$SRC/tests/fuzz/fuzz.dict" "$corpus" "$SRC/tests/fuzz/seeds/$h" >"$log" 2>&1; then
		echo "fuzz-$h: FAILED"
		grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -20
		ls "$crashes"
		rc=1
		continue
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
	echo "fuzz-$h: $execs executions in ${SECONDS_EACH}s, $cov, no crash"
done
exit $rc
