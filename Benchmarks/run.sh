#!/usr/bin/env bash
# Runs PmemTrack's benchmarks and prints the table of ratios.
#
#   ./run.sh                 full run (a few minutes after the build)
#   ./run.sh --smoke         every benchmark for two iterations on small
#                            mappings (CI)
# Either fails unless every benchmark produced a result.
#   ./run.sh -- ARGS...      ARGS go to `swift package benchmark run`, e.g.
#                            -- --target SyncCost --filter '.*k=64.*'
#                            (filters are regexes matching the whole name)
#
# Environment:
#   PMEMTRACK_BENCH_PMEM_DIR  cache-flush files (default /dev/shm; libpmem takes
#                             it for pmem because this script sets PMEM_IS_PMEM_FORCE=1)
#   PMEMTRACK_BENCH_FILE_DIR  msync files (default /var/tmp; must not be tmpfs)
#   PMEMTRACK_BENCH_RESULTS   where samples, logs and the table go
#                             (default Benchmarks/.results)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

smoke=0
passthrough=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --) shift; passthrough=("$@"); break ;;
        *) echo "usage: $0 [--smoke] [-- benchmark-run-args...]" >&2; exit 2 ;;
    esac
    shift
done

# libpmem reads this once, when it loads: it must be in the environment the
# benchmark processes start with.
export PMEM_IS_PMEM_FORCE=1
export PMEMTRACK_BENCH_PMEM_DIR="${PMEMTRACK_BENCH_PMEM_DIR:-/dev/shm}"
export PMEMTRACK_BENCH_FILE_DIR="${PMEMTRACK_BENCH_FILE_DIR:-/var/tmp}"
if [ "$smoke" = 1 ]; then export PMEMTRACK_BENCH_SMOKE=1; else unset PMEMTRACK_BENCH_SMOKE; fi

for dir in "$PMEMTRACK_BENCH_PMEM_DIR" "$PMEMTRACK_BENCH_FILE_DIR"; do
    [ -d "$dir" ] && [ -w "$dir" ] || { echo "run.sh: $dir is not a writable directory" >&2; exit 1; }
done
# msync on tmpfs writes nothing back, which would flatter every msync number.
if [ "$(stat -f -c %T "$PMEMTRACK_BENCH_FILE_DIR")" = tmpfs ]; then
    echo "run.sh: PMEMTRACK_BENCH_FILE_DIR=$PMEMTRACK_BENCH_FILE_DIR is tmpfs; use a disk file system" >&2
    exit 1
fi

results="${PMEMTRACK_BENCH_RESULTS:-$here/.results}"
mkdir -p "$results"
results="$(cd "$results" && pwd)"   # the plugin may run elsewhere
samples="$results/samples"
rm -rf "$samples"
mkdir -p "$samples"

benchmark() {
    swift package --package-path "$here" --allow-writing-to-package-directory benchmark "$@"
}

started=$SECONDS
mode=$([ "$smoke" = 1 ] && echo smoke || echo full)
echo "==> $mode run; log in $results/run.log"
# The list first: it builds the suites, and the completeness check below reads it.
if ! benchmark list >"$results/list.txt" 2>"$results/run.log"; then
    tail -n 50 "$results/run.log" >&2
    exit 1
fi
built=$SECONDS
if ! benchmark run --no-progress --format histogramSamples --path "$samples" ${passthrough[@]+"${passthrough[@]}"} \
        >>"$results/run.log" 2>&1; then
    tail -n 50 "$results/run.log" >&2
    echo "run.sh: a benchmark failed (see $results/run.log)" >&2
    exit 1
fi
echo "==> build and list $((built - started)) s, benchmarks $((SECONDS - built)) s"

# package-benchmark exits 0 when a benchmark's setup fails, so ratios.py
# checks that every listed benchmark left samples (unless a filter was given).
expect=()
if [ ${#passthrough[@]} -eq 0 ]; then expect=(--expect "$results/list.txt"); fi
{
    [ "$smoke" = 1 ] && printf '%s\n\n' "**Smoke run: two iterations on small mappings; these numbers mean nothing.**"
    python3 "$here/ratios.py" "$samples" ${expect[@]+"${expect[@]}"}
} | tee "$results/ratios.md"
exit "${PIPESTATUS[0]}"
