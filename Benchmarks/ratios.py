#!/usr/bin/env python3
"""Turns one run's exported samples into a Markdown table of ratios.

Input: the directory that `swift package benchmark run --format
histogramSamples --path DIR` wrote, one file per benchmark and metric:
    <baseline>.<Target>.<benchmark name>.<metric>.histogram.samples.tsv
(the benchmark name with spaces and slashes turned into underscores), a
header line, then one sample per line.

Every benchmark records its own windows as custom metrics (see
Sources/BenchmarkSupport/Metrics.swift): PmemTrack's and its baselines',
measured alternately in the same process. A ratio is PmemTrack's p50 over
the baseline's p50 within one benchmark. The crash lab's explore benchmarks
have no baseline: they record ns per image, shown as images per second.

    ratios.py DIR                 print the table
    ratios.py DIR --expect LIST   also fail (exit 1) unless every benchmark
                                  named in LIST (the output of `swift package
                                  benchmark list`) has samples of every metric
                                  its suite records
Either way it fails (exit 1) when a deterministic count is wrong: a
benchmark that flushed fewer blocks than were written, or more without the
VMA budget's coarsening. Times are only reported.
Standard library only.
"""

import argparse
import math
import os
import re
import statistics
import sys
from collections import defaultdict

SUFFIX = ".histogram.samples.tsv"

# Metrics each suite records; --expect checks them.
PRECISION = {"flush_excess_blocks", "flush_shortfall_blocks"}
BACKENDS = {"userfaultfd_ns", "mprotect_ns"}
REQUIRED = {
    "FaultCost": [{"pmemtrack_ns", "c_handler_ns"}, {"pmemtrack_ns", "c_uffd_ns"}, BACKENDS],
    "SyncCost": [
        {"pmemtrack_ns", "raw_ns"} | PRECISION,
        {"pmemtrack_ns", "raw_uffd_ns"} | PRECISION,
        {"pmemtrack_ns", "persist_whole_ns"} | PRECISION,
        {"pmemtrack_ns", "msync_whole_ns"} | PRECISION,
    ],
    "SizeScaling": [
        {"sync_small_ns", "sync_large_ns"} | PRECISION,
        {"raw_small_ns", "raw_large_ns"},
        BACKENDS | PRECISION,
    ],
    "EndToEnd": [{"pmemtrack_ns", "persist_whole_ns"} | PRECISION],
    "IndexOps": [{"index_set_ns", "index_enumerate_ns", "index_clear_ns",
                  "bitmap_set_ns", "bitmap_enumerate_ns", "bitmap_clear_ns"}],
    "CrashLab": [{"crash_image_ns"}, {"crash_check_ns"}, {"plain_ns", "recorded_ns"}],
}

TARGET_FAULT = 1.10
TARGET_SYNC = 1.15
TARGET_SIZE = 1.10
TARGET_END_TO_END_UFFD = 0.35   # userfaultfd backend at 1 % dirty
# The crash lab, on 1 MiB mappings (larger ones are reported without a target).
TARGET_IMAGES_PER_S = 50_000     # check reads one word
TARGET_CHECKS_PER_S = 5_000      # check runs a log's recovery
TARGET_RECORDING = 2.00          # recorded / plain workload


def load(directory):
    """{(target, name): {metric: [samples]}}"""
    results = defaultdict(dict)
    for file in sorted(os.listdir(directory)):
        if not file.endswith(SUFFIX):
            continue
        stem = file[: -len(SUFFIX)]
        _baseline, target, rest = stem.split(".", 2)
        name, metric = rest.rsplit(".", 1)
        with open(os.path.join(directory, file)) as handle:
            lines = handle.read().split("\n")[1:]
        results[(target, name)][metric] = [float(line) for line in lines if line.strip()]
    return results


def has(metrics, *names):
    return all(metrics.get(name) for name in names)


def p50(samples):
    return statistics.median(samples)


def duration(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def pretty(name):
    return name.replace("_", " ")


def number(pattern, name):
    match = re.search(pattern, name)
    return float(match.group(1)) if match else None


def verdict(ratio, target):
    return "yes" if ratio <= target else "**no**"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return out


def by_target(results, target):
    return sorted(
        ((name, metrics) for (t, name), metrics in results.items() if t == target),
        key=lambda item: (re.sub(r"k=\d+", "", item[0]), number(r"k=(\d+)", item[0]) or 0, item[0]),
    )


def report(results):
    lines = []
    met = total = 0

    def count(ok):
        nonlocal met, total
        total += 1
        met += ok

    def fault_table(title, baseline, columns):
        """First-write cost per fault against `baseline`, with the fault target."""
        rows = []
        for name, m in by_target(results, "FaultCost"):
            if not has(m, "pmemtrack_ns", baseline):
                continue
            n = number(r"n=(\d+)", name) or 1
            ratio = p50(m["pmemtrack_ns"]) / p50(m[baseline])
            count(ratio <= TARGET_FAULT)
            rows.append([pretty(name), duration(p50(m["pmemtrack_ns"]) / n), duration(p50(m[baseline]) / n),
                         f"{ratio:.2f}", f"≤ {TARGET_FAULT:.2f}", verdict(ratio, TARGET_FAULT)])
        return [title, ""] + table(["benchmark", *columns, "ratio", "target", "met"], rows)

    lines += fault_table("## First-write fault cost, mprotect backend (PmemTrack / minimal C handler, same pages)",
                         "c_handler_ns", ["PmemTrack / fault", "C handler / fault"])
    lines += [""] + fault_table(
        "## First-write cost, userfaultfd backend (PmemTrack / minimal C async write-protect on the shadow, same pages)",
        "c_uffd_ns", ["PmemTrack / first write", "C async WP / first write"])

    lines += ["", "## First-write cost, userfaultfd / mprotect backend (two tracked mappings of one file; no target)", ""]
    rows = []
    for name, m in by_target(results, "FaultCost"):
        if not has(m, *BACKENDS):
            continue
        n = number(r"n=(\d+)", name) or 1
        rows.append([pretty(name), duration(p50(m["userfaultfd_ns"]) / n), duration(p50(m["mprotect_ns"]) / n),
                     f"{p50(m['userfaultfd_ns']) / p50(m['mprotect_ns']):.2f}"])
    lines += table(["benchmark", "userfaultfd / first write", "mprotect / first write", "ratio"], rows)

    lines += ["", "## Sync vs the raw work, mprotect backend (mprotect of each run + the flushes PmemTrack makes, untracked)", ""]
    rows = []
    for name, m in by_target(results, "SyncCost"):
        if not has(m, "pmemtrack_ns", "raw_ns"):
            continue
        ratio = p50(m["pmemtrack_ns"]) / p50(m["raw_ns"])
        count(ratio <= TARGET_SYNC)
        rows.append([pretty(name), duration(p50(m["pmemtrack_ns"])), duration(p50(m["raw_ns"])),
                     f"{ratio:.2f}", f"≤ {TARGET_SYNC:.2f}", verdict(ratio, TARGET_SYNC)])
    lines += table(["benchmark", "PmemTrack sync", "raw work", "ratio", "target", "met"], rows)

    lines += ["", "## Sync vs the raw work, userfaultfd backend (one PAGEMAP_SCAN that re-protects + the same flushes, on the shadow)", ""]
    rows = []
    for name, m in by_target(results, "SyncCost"):
        if not has(m, "pmemtrack_ns", "raw_uffd_ns"):
            continue
        ratio = p50(m["pmemtrack_ns"]) / p50(m["raw_uffd_ns"])
        count(ratio <= TARGET_SYNC)
        rows.append([pretty(name), duration(p50(m["pmemtrack_ns"])), duration(p50(m["raw_uffd_ns"])),
                     f"{ratio:.2f}", f"≤ {TARGET_SYNC:.2f}", verdict(ratio, TARGET_SYNC)])
    lines += table(["benchmark", "PmemTrack sync", "raw work", "ratio", "target", "met"], rows)

    lines += ["", "## Sync vs flushing the whole mapping, mprotect backend (no target; < 1: PmemTrack is faster)", ""]
    rows = []
    for name, m in by_target(results, "SyncCost"):
        whole = m.get("persist_whole_ns") or m.get("msync_whole_ns")
        if not whole or not has(m, "pmemtrack_ns"):
            continue
        kind = "pmem_persist" if "persist_whole_ns" in m else "msync"
        ratio = p50(m["pmemtrack_ns"]) / p50(whole)
        rows.append([pretty(name), duration(p50(m["pmemtrack_ns"])), f"{duration(p50(whole))} ({kind})", f"{ratio:.3g}"])
    lines += table(["benchmark", "PmemTrack sync", "whole mapping", "ratio"], rows)

    lines += ["", "## Sync time against mapping size, mprotect backend (64 GiB sparse / 1 GiB, same k)", ""]
    rows = []
    for name, m in by_target(results, "SizeScaling"):
        if has(m, "sync_small_ns", "sync_large_ns"):
            ratio = p50(m["sync_large_ns"]) / p50(m["sync_small_ns"])
            count(ratio <= TARGET_SIZE)
            rows.append([pretty(name), duration(p50(m["sync_small_ns"])), duration(p50(m["sync_large_ns"])),
                         f"{ratio:.2f}", f"≤ {TARGET_SIZE:.2f}", verdict(ratio, TARGET_SIZE)])
        elif has(m, "raw_small_ns", "raw_large_ns"):
            # The untracked work on the same files: the kernel's share of any size effect.
            ratio = p50(m["raw_large_ns"]) / p50(m["raw_small_ns"])
            rows.append([pretty(name) + " (reference)", duration(p50(m["raw_small_ns"])),
                         duration(p50(m["raw_large_ns"])), f"{ratio:.2f}", "—", "—"])
    lines += table(["benchmark", "small mapping", "large mapping", "ratio", "target", "met"], rows)

    lines += ["", "## Sync of one block, userfaultfd / mprotect backend, by what the scan walks (no target; > 1: mprotect is faster)", ""]
    rows = []
    for name, m in by_target(results, "SizeScaling"):
        if not has(m, *BACKENDS):
            continue
        rows.append([pretty(name), duration(p50(m["userfaultfd_ns"])), duration(p50(m["mprotect_ns"])),
                     f"{p50(m['userfaultfd_ns']) / p50(m['mprotect_ns']):.3g}"])
    lines += table(["benchmark", "userfaultfd sync", "mprotect sync", "ratio"], rows)

    for backend, title in (("mprotect", "mprotect backend: faults + sync"), ("userfaultfd", "userfaultfd backend: stores + sync")):
        lines += ["", f"## End to end, {title} vs stores + whole-mapping pmem_persist", ""]
        rows, points = [], []
        for name, m in sorted(by_target(results, "EndToEnd"), key=lambda item: number(r"dirty_([\d.]+)%", item[0]) or 0):
            if not has(m, "pmemtrack_ns", "persist_whole_ns") or (("userfaultfd" in name) != (backend == "userfaultfd")):
                continue
            ratio = p50(m["pmemtrack_ns"]) / p50(m["persist_whole_ns"])
            fraction = number(r"dirty_([\d.]+)%", name)
            if fraction is not None:
                points.append((fraction, ratio))
            target, met_cell = "—", "—"
            if backend == "userfaultfd" and fraction == 1:
                target, met_cell = f"≤ {TARGET_END_TO_END_UFFD:.2f}", verdict(ratio, TARGET_END_TO_END_UFFD)
                count(ratio <= TARGET_END_TO_END_UFFD)
            rows.append([pretty(name), duration(p50(m["pmemtrack_ns"])), duration(p50(m["persist_whole_ns"])),
                         f"{ratio:.3g}", target, met_cell])
        lines += table(["benchmark", "PmemTrack", "whole persist", "ratio", "target", "met"], rows)
        lines += ["", f"Crossover: {crossover(points)}"]

    lines += ["", "## Flush-set precision (blocks written / blocks flushed, every sample)", ""]
    rows = []
    for target in ("SyncCost", "SizeScaling", "EndToEnd"):
        for name, m in by_target(results, target):
            if not has(m, *PRECISION):
                continue
            k = number(r"k=(\d+)", name)
            excess, shortfall = max(m["flush_excess_blocks"]), max(m["flush_shortfall_blocks"])
            exact = excess == 0 and shortfall == 0
            count(exact)
            precision = f"{k / (k + excess):.2f}" if k and shortfall == 0 else "—"
            rows.append([f"{target}: {pretty(name)}", f"{excess:.0f}", f"{shortfall:.0f}", precision, "1.00",
                         "yes" if exact else "**no**"])
    lines += table(["benchmark", "max excess blocks", "max missing blocks", "worst precision", "target", "met"], rows)

    lines += ["", "## Index operations per block vs a flat bitmap (p50; no target; < 1: PmemTrack is faster)", ""]
    rows = []
    for name, m in by_target(results, "IndexOps"):
        k = number(r"k=(\d+)", name) or 1
        for operation in ("set", "enumerate", "clear"):
            ours, flat = m.get(f"index_{operation}_ns"), m.get(f"bitmap_{operation}_ns")
            if not ours or not flat:
                continue
            rows.append([pretty(name), operation, f"{p50(ours) / k:.3g} ns", f"{p50(flat) / k:.3g} ns",
                         f"{p50(ours) / p50(flat):.3g}"])
    lines += table(["benchmark", "operation", "PmemTrack / block", "flat bitmap / block", "ratio"], rows)

    lines += ["", "## Crash lab: images per second (one explore call's wall time / images it checked)", ""]
    rows = []
    for name, m in by_target(results, "CrashLab"):
        for metric, goal in (("crash_image_ns", TARGET_IMAGES_PER_S), ("crash_check_ns", TARGET_CHECKS_PER_S)):
            if not has(m, metric):
                continue
            rate = 1e9 / p50(m[metric])
            target, met_cell = "—", "—"
            if pretty(name).endswith(" of 1MiB"):
                target, met_cell = f"≥ {goal:,}/s", "yes" if rate >= goal else "**no**"
                count(rate >= goal)
            rows.append([pretty(name), duration(p50(m[metric])), f"{rate:,.0f}/s", target, met_cell])
    lines += table(["benchmark", "per image", "images / s", "target", "met"], rows)

    lines += ["", "## Crash lab: recording overhead (workload inside CrashLab.record / on a plain mapping)", ""]
    rows = []
    for name, m in by_target(results, "CrashLab"):
        if not has(m, "plain_ns", "recorded_ns"):
            continue
        ratio = p50(m["recorded_ns"]) / p50(m["plain_ns"])
        count(ratio <= TARGET_RECORDING)
        rows.append([pretty(name), duration(p50(m["plain_ns"])), duration(p50(m["recorded_ns"])),
                     f"{ratio:.2f}", f"≤ {TARGET_RECORDING:.2f}", verdict(ratio, TARGET_RECORDING)])
    lines += table(["benchmark", "plain", "recorded", "ratio", "target", "met"], rows)

    lines += ["", f"**Targets met: {met} of {total}.** Ratios use p50 of samples measured alternately in one process."]
    return lines


def crossover(points):
    """The dirty fraction where PmemTrack's end-to-end time equals the
    whole-mapping persist's, interpolated linearly in log(fraction) and
    log(ratio) between the measured fractions."""
    if len(points) < 2:
        return "not enough fractions measured"
    points.sort()
    for (f0, r0), (f1, r1) in zip(points, points[1:]):
        if r0 == 1:
            return f"at {f0:g}% dirty"
        if (r0 - 1) * (r1 - 1) < 0:
            t = -math.log(r0) / (math.log(r1) - math.log(r0))
            fraction = 10 ** (math.log10(f0) + t * (math.log10(f1) - math.log10(f0)))
            faster = "below" if r0 < 1 else "above"
            return f"≈ {fraction:.2g}% dirty (PmemTrack is faster {faster} it)"
    low, high = points[0], points[-1]
    if high[1] < 1:
        return f"above {high[0]:g}% dirty: PmemTrack is faster at every measured fraction"
    if low[1] > 1:
        return f"below {low[0]:g}% dirty: whole-mapping persist is faster at every measured fraction"
    return "none found between the measured fractions"


def expected(list_file):
    """(target, name) pairs from `swift package benchmark list` output."""
    pairs, target = [], None
    with open(list_file) as handle:
        for line in handle:
            line = line.rstrip("\n")
            header = re.match(r"Target '(.+)' available benchmarks:", line)
            if header:
                target = header.group(1)
            elif target and line.strip():
                pairs.append((target, line.strip().replace(" ", "_").replace("/", "_")))
            elif not line.strip():
                target = None
    return pairs


def check(results, pairs):
    problems = []
    if not pairs:
        problems.append("the benchmark list is empty")
    for target, name in pairs:
        metrics = {metric for metric, samples in results.get((target, name), {}).items() if samples}
        if not any(required <= metrics for required in REQUIRED.get(target, [set()])):
            problems.append(f"{target}: {name}: no complete result (has {sorted(metrics) or 'nothing'})")
    return problems


def count_problems(results):
    """The deterministic counts every run must get right (times are only
    reported): no benchmark may flush fewer blocks than were written, and
    none may flush more unless the mprotect backend's VMA budget coarsened
    its flush set."""
    problems = []
    for target in ("SyncCost", "SizeScaling", "EndToEnd"):
        for name, m in by_target(results, target):
            if not has(m, *PRECISION):
                continue
            excess, shortfall = max(m["flush_excess_blocks"]), max(m["flush_shortfall_blocks"])
            coarsened = max(m.get("coarsened_blocks") or [0])
            if shortfall > 0:
                problems.append(f"{target}: {name}: {shortfall:.0f} written blocks not flushed")
            if excess > 0 and coarsened == 0:
                problems.append(f"{target}: {name}: {excess:.0f} blocks flushed that were not written, below the VMA budget")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--expect", metavar="LIST")
    args = parser.parse_args()
    results = load(args.directory)
    problems = []
    if args.expect:
        pairs = expected(args.expect)
        problems = check(results, pairs)
        if not problems:
            print(f"All {len(pairs)} benchmarks produced results.\n")
    print("\n".join(report(results)))
    if problems:
        # package-benchmark exits 0 when a benchmark's setup fails: this is the check.
        print("\nBenchmarks without results:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    wrong = count_problems(results)
    if wrong:
        print("\nWrong flush counts:", *wrong, sep="\n  ", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
