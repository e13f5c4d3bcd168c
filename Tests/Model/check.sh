#!/usr/bin/env bash
# Model-checks protocol.pml with spin, exhaustively.
#
#   bash Tests/Model/check.sh          the CI set (several minutes, up to about 5 GB)
#   bash Tests/Model/check.sh --quick  the small configurations only
#
# Fails if the correct protocol has any error in any configuration, if a
# mutant produces no counterexample, or if spin is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v spin >/dev/null || { echo "spin is not installed (apt-get install -y spin)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Runs pan on the model built with the given -D flags; prints its error count.
errors_for() {
    spin "$@" -a "$here/protocol.pml" > spin.log 2>&1 || { cat spin.log >&2; exit 1; }
    gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c
    ./pan -m1000000 > pan.log 2>&1 || true
    local errors states
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.log | tail -n 1)
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.log | tail -n 1)
    [ -n "$errors" ] || { echo "pan gave no result:" >&2; cat pan.log >&2; exit 1; }
    echo "$errors $states"
}

correct=("-DSYNCERS=1 -DSYNCS=2" "-DSYNCERS=2 -DSYNCS=1" "-DBATCHED -DSYNCERS=2 -DSYNCS=1")
if [ "${1:-}" != "--quick" ]; then
    correct+=("-DSYNCERS=2 -DSYNCS=1 -DFLUSH_FAILURES" "-DSYNCERS=2 -DSYNCS=2"
              "-DPINS -DSYNCERS=1 -DSYNCS=2" "-DPINS -DWRITES=1 -DSYNCERS=2 -DSYNCS=1"
              "-DBATCHED -DSYNCERS=2 -DSYNCS=1 -DFLUSH_FAILURES" "-DBATCHED -DSYNCERS=2 -DSYNCS=2"
              "-DBATCHED -DPINS -DSYNCERS=1 -DSYNCS=2")
fi
# The userfaultfd backend (COLLECT).
correct+=("-DCOLLECT -DSYNCERS=1 -DSYNCS=2" "-DCOLLECT -DSYNCERS=2 -DSYNCS=1")
if [ "${1:-}" != "--quick" ]; then
    correct+=("-DCOLLECT -DSYNCERS=2 -DSYNCS=1 -DFLUSH_FAILURES" "-DCOLLECT -DBATCHED -DSYNCERS=2 -DSYNCS=1"
              "-DCOLLECT -DPINS -DSYNCERS=1 -DSYNCS=2" "-DCOLLECT -DPINS -DWRITES=1 -DSYNCERS=2 -DSYNCS=1"
              "-DCOLLECT -DBATCHED -DSYNCERS=2 -DSYNCS=1 -DFLUSH_FAILURES")
fi
# ... with the sync's write-back in the collect (WRITEBACK).
correct+=("-DCOLLECT -DWRITEBACK -DSYNCERS=1 -DSYNCS=2" "-DCOLLECT -DWRITEBACK -DSYNCERS=2 -DSYNCS=1")
if [ "${1:-}" != "--quick" ]; then
    correct+=("-DCOLLECT -DWRITEBACK -DSYNCERS=2 -DSYNCS=1 -DFLUSH_FAILURES"
              "-DCOLLECT -DWRITEBACK -DSYNCERS=2 -DSYNCS=2"
              "-DCOLLECT -DWRITEBACK -DBATCHED -DSYNCERS=2 -DSYNCS=1 -DFLUSH_FAILURES"
              "-DCOLLECT -DWRITEBACK -DPINS -DWRITES=1 -DSYNCERS=2 -DSYNCS=1")
fi
failed=0
# Runs mutant $1 with flags $2; fails unless pan finds a counterexample.
expect_counterexample() {
    local mutant=$1 flags=$2 errors states
    read -r errors states < <(errors_for -DMUTANT_$mutant $flags)
    if [ "$errors" -gt 0 ]; then
        echo "ok    mutant $mutant [$flags]: counterexample: $(grep -E 'violated' pan.log | head -1 | sed 's/^pan:1: //')"
    else
        echo "FAIL  mutant $mutant [$flags]: no counterexample in $states states"
        failed=1
    fi
}
for flags in "${correct[@]}"; do
    read -r errors states < <(errors_for $flags)
    if [ "$errors" = 0 ]; then
        echo "ok    correct protocol [$flags]: no error in $states states"
    else
        echo "FAIL  correct protocol [$flags]: $errors error(s)"; grep -E "violated|invalid end" pan.log | head -3
        failed=1
    fi
done
for mutant in A B C D E; do
    for flags in "-DSYNCERS=1 -DSYNCS=2" "-DSYNCERS=2 -DSYNCS=1"; do
        # Mutant D breaks pins, so it needs the pinner; E breaks batched drains.
        [ "$mutant" = D ] && flags="-DPINS $flags"
        # E is only visible to a second syncer, which takes the early-cleaned
        # block as done and returns before the shared drain.
        if [ "$mutant" = E ]; then
            [ "$flags" = "-DSYNCERS=1 -DSYNCS=2" ] && continue
            flags="-DBATCHED $flags"
        fi
        expect_counterexample "$mutant" "$flags"
    done
done
# The userfaultfd backend's mutants. F and I race two syncs, so they need a
# second syncer; so does C here, since with one syncer every block the
# collect made DIRTY is tagged.
collect_mutants=("F -DSYNCERS=2 -DSYNCS=1" "G -DSYNCERS=1 -DSYNCS=2" "G -DSYNCERS=2 -DSYNCS=1"
                 "H -DSYNCERS=1 -DSYNCS=2" "H -DSYNCERS=2 -DSYNCS=1" "I -DSYNCERS=2 -DSYNCS=1"
                 "C -DSYNCERS=2 -DSYNCS=1")
for run in "${collect_mutants[@]}"; do
    expect_counterexample "${run%% *}" "-DCOLLECT ${run#* }"
done
# J breaks the write-back (two syncers); H, which only says it flushed,
# must be caught in the write-back too.
for run in "J -DSYNCERS=2 -DSYNCS=1" "H -DSYNCERS=1 -DSYNCS=2" "H -DSYNCERS=2 -DSYNCS=1"; do
    expect_counterexample "${run%% *}" "-DCOLLECT -DWRITEBACK ${run#* }"
done
exit "$failed"
