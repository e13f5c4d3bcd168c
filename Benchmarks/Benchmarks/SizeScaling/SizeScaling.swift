// Does sync time depend on the mapping's size? The same k dirty blocks,
// spread over a 1 GiB mapping and over a 64 GiB sparse one (only the k
// blocks are ever touched), synced alternately in each iteration.
// Target (reported, not enforced): the 64 GiB sync ≤ 1.10 × the 1 GiB one.
//
// The same comparison for the raw work (mprotect + flush per run, on shadow
// mappings of the same files) tells how much of any difference is the
// kernel's (page tables spread over 64 GiB) rather than PmemTrack's index.
//
// These use the mprotect backend. The userfaultfd backend's sync scans page
// tables, so its cost follows the mapping's size: SizeScaling+Backends.swift.

import Benchmark
import BenchmarkBaselines
import BenchmarkSupport
import PmemTrack

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    let small = BenchRun.size(1 << 30, smoke: 64 << 20)
    let large = 64 << 30
    let sizes = "\(sizeName(small)) vs \(sizeName(large)) sparse"
    for k in BenchRun.isSmoke ? [1, 64] : [1, 64, 4_096] {
        Benchmark(
            "sync cacheflush k=\(k) \(sizes)",
            configuration: BenchRun.configuration(
                [Metric.syncSmall, Metric.syncLarge, Metric.flushExcess, Metric.flushShortfall, Metric.coarsened]),
            closure: { (benchmark, files: Files) in
                let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
                try rotating(benchmark.currentIteration, [
                    { try measureSync(benchmark, files.small, k, value, Metric.syncSmall) },
                    { try measureSync(benchmark, files.large, k, value, Metric.syncLarge) },
                ])
            },
            setup: { try Files(small: small, large: large, shadow: .none) }
        )
        Benchmark(
            "raw cacheflush k=\(k) \(sizes)",
            configuration: BenchRun.configuration([Metric.rawSmall, Metric.rawLarge]),
            closure: { (benchmark, files: Files) in
                let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
                try rotating(benchmark.currentIteration, [
                    { try measureRaw(benchmark, files.small, k, value, Metric.rawSmall) },
                    { try measureRaw(benchmark, files.large, k, value, Metric.rawLarge) },
                ])
            },
            setup: {
                let files = try Files(small: small, large: large, shadow: .lazy)
                try files.small.protectShadow()
                try files.large.protectShadow()
                return files
            }
        )
    }
    backendBenchmarks(small: small, large: large)
}

/// Both sparse, so that the size is all that differs.
private struct Files {
    let small: BenchmarkFile
    let large: BenchmarkFile

    init(small: Int, large: Int, shadow: BenchmarkFile.Shadow) throws {
        let open = { (length: Int) in
            try BenchmarkFile(
                in: BenchRun.pmemDirectory, length: length, sparse: true, flushMode: .cacheFlush, tracking: .mprotect,
                shadow: shadow)
        }
        self.small = try open(small)
        self.large = try open(large)
    }
}

private func measureSync(_ benchmark: Benchmark, _ file: BenchmarkFile, _ k: Int, _ value: UInt8, _ metric: BenchmarkMetric) throws {
    let pattern = DirtyPattern.spread(k, over: file.blockCount, blockSize: file.blockSize)
    touch(file.map.bytes.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value)
    let sync = try file.measuredSync(written: k)
    benchmark.measurement(metric, sync.nanoseconds)
    benchmark.measurement(Metric.flushExcess, sync.excess)
    benchmark.measurement(Metric.flushShortfall, sync.shortfall)
    benchmark.measurement(Metric.coarsened, sync.coarsened)
}

private func measureRaw(_ benchmark: Benchmark, _ file: BenchmarkFile, _ k: Int, _ value: UInt8, _ metric: BenchmarkMetric) throws {
    let pattern = DirtyPattern.spread(k, over: file.blockCount, blockSize: file.blockSize)
    let shadow = file.shadow!.baseAddress!
    guard pmt_bench_unprotect_and_store(shadow, pattern.runs, pattern.runs.count, file.blockSize, value) == 0 else {
        throw BenchmarkSetupError("mprotect shadow: errno \(errno)")
    }
    var rc: Int32 = 0
    let time = nanoseconds { rc = pmt_bench_protect_and_flush(shadow, pattern.runs, pattern.runs.count) }
    guard rc == 0 else { throw BenchmarkSetupError("raw flush failed: errno \(errno)") }
    benchmark.measurement(metric, time)
}
