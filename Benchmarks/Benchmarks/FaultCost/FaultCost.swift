// First-write fault cost: PmemTrack's fault path against a minimal C
// SIGSEGV + mprotect handler, in the same process, on the same pages.
//
// Each iteration write-protects n blocks, then stores once into each, under
// PmemTrack (re-protected by a sync) and under the C handler (re-protected
// by mprotect on the shadow mapping of the same file). Only the stores are
// timed. Target (reported, not enforced): PmemTrack ≤ 1.10 × the C handler.
//
// The userfaultfd backend has its own two comparisons (FaultCost+Userfaultfd.swift),
// on both flush paths' file systems: against a minimal C asynchronous
// write-protect setup on the shadow, and against the mprotect backend.

import Benchmark
import BenchmarkBaselines
import BenchmarkSupport
import PmemTrack

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    let faults = BenchRun.size(1_024, smoke: 16)
    // Sequential: each fault extends the writable run before it. Spread:
    // each fault opens a new writable island in a read-only stretch.
    let patterns: [(name: String, span: Int)] = [("sequential", faults), ("spread 1 in 64", faults * 64)]

    for (name, span) in patterns {
        Benchmark(
            "faults n=\(faults) \(name)",
            configuration: BenchRun.configuration([Metric.pmemtrack, Metric.cHandler]),
            closure: { (benchmark, file: BenchmarkFile) in
                let pattern = DirtyPattern.spread(faults, over: span, blockSize: file.blockSize)
                try rotating(benchmark.currentIteration, [
                    { try measurePmemTrack(benchmark, file, pattern) },
                    { try measureCHandler(benchmark, file, pattern) },
                ])
            },
            setup: {
                let file = try BenchmarkFile(
                    in: BenchRun.pmemDirectory, length: span * TrackedMapping.pageSize, sparse: false,
                    flushMode: .automatic, tracking: .mprotect, shadow: .populated)
                try file.protectShadow()
                return file
            }
        )
    }
    userfaultfdBenchmarks(faults: faults, patterns: patterns)
}

private func measurePmemTrack(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern) throws {
    try file.map.sync()   // every block clean and write-protected again
    let before = file.map.statistics.writeFaults
    let time = nanoseconds {
        touch(file.map.bytes.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: UInt8(truncatingIfNeeded: benchmark.currentIteration))
    }
    let taken = Int(file.map.statistics.writeFaults - before)
    guard taken == pattern.blocks.count else {
        throw BenchmarkSetupError("PmemTrack took \(taken) faults for \(pattern.blocks.count) first writes")
    }
    benchmark.measurement(Metric.pmemtrack, time)
}

private func measureCHandler(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern) throws {
    let shadow = file.shadow!
    try file.protectShadow()
    // Installed only around its own window: while it is installed, it would
    // sit in front of PmemTrack's handler and add a hop to PmemTrack's faults.
    guard pmt_bench_handler_install(shadow.baseAddress!, shadow.count) == 0 else {
        throw BenchmarkSetupError("sigaction failed")
    }
    let before = pmt_bench_handler_faults()
    let time = nanoseconds {
        touch(shadow.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: UInt8(truncatingIfNeeded: benchmark.currentIteration))
    }
    pmt_bench_handler_uninstall()
    let taken = Int(pmt_bench_handler_faults() - before)
    guard taken == pattern.blocks.count else {
        throw BenchmarkSetupError("the C handler took \(taken) faults for \(pattern.blocks.count) first writes")
    }
    benchmark.measurement(Metric.cHandler, time)
}
