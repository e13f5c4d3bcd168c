// Sync cost for k dirty blocks, spread over the mapping so that each is a
// run of its own. PmemTrack's sync against, on the same pages:
// - the raw work: per run, the mprotect and the flush PmemTrack does,
//   without the tracking (target: PmemTrack ≤ 1.15 × raw);
// - flushing the whole mapping, as an app without tracking would.
// Both flush paths: cache flushes on (forced) persistent memory, and msync
// on an ordinary file.
//
// Each iteration first dirties the k blocks (PmemTrack: stores that fault;
// baselines: mprotect + store on the shadow mapping), outside the window.

import Benchmark
import BenchmarkBaselines
import BenchmarkSupport
import PmemTrack

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    let length = BenchRun.size(1 << 30, smoke: 64 << 20)
    // msync writes each run back with its own fdatasync-like commit; larger
    // k would make one iteration last seconds.
    let paths: [(path: FlushPath, ks: [Int])] = [
        (.cacheFlush, BenchRun.isSmoke ? [1, 64] : [1, 64, 4_096]),
        (.msync, BenchRun.isSmoke ? [1, 16] : [1, 16, 256]),
    ]
    for (path, ks) in paths {
        for k in ks {
            Benchmark(
                "sync \(path.name) k=\(k) of \(sizeName(length))",
                configuration: BenchRun.configuration(
                    [Metric.pmemtrack, Metric.raw, path.wholeMetric, Metric.flushExcess, Metric.flushShortfall]),
                closure: { (benchmark, file: BenchmarkFile) in
                    let pattern = DirtyPattern.spread(k, over: file.blockCount, blockSize: file.blockSize)
                    let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
                    try rotating(benchmark.currentIteration, [
                        { try measurePmemTrack(benchmark, file, pattern, value) },
                        { try measureRaw(benchmark, file, pattern, value, path) },
                        { try measureWhole(benchmark, file, pattern, value, path) },
                    ])
                },
                setup: {
                    let file = try BenchmarkFile(
                        in: path.directory, length: length, sparse: path == .msync, flushMode: path.mode,
                        shadow: path == .cacheFlush ? .populated : .lazy)
                    try file.protectShadow()
                    return file
                }
            )
        }
    }
}

enum FlushPath {
    case cacheFlush, msync

    var name: String { self == .cacheFlush ? "cacheflush" : "msync" }
    var mode: TrackedMapping.FlushMode { self == .cacheFlush ? .cacheFlush : .msync }
    var directory: String { self == .cacheFlush ? BenchRun.pmemDirectory : BenchRun.fileDirectory }
    var wholeMetric: BenchmarkMetric { self == .cacheFlush ? Metric.persistWhole : Metric.msyncWhole }
}

private func measurePmemTrack(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8) throws {
    touch(file.map.bytes.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value)
    let sync = try file.measuredSync(written: pattern.blocks.count)
    benchmark.measurement(Metric.pmemtrack, sync.nanoseconds)
    benchmark.measurement(Metric.flushExcess, sync.excess)
    benchmark.measurement(Metric.flushShortfall, sync.shortfall)
}

private func measureRaw(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8, _ path: FlushPath) throws {
    let shadow = file.shadow!.baseAddress!
    try dirtyShadow(file, pattern, value)
    var rc: Int32 = 0
    let time = nanoseconds {
        rc = path == .cacheFlush
            ? pmt_bench_protect_and_flush(shadow, pattern.runs, pattern.runs.count)
            : pmt_bench_protect_and_msync(shadow, pattern.runs, pattern.runs.count)
    }
    guard rc == 0 else { throw BenchmarkSetupError("raw \(path.name) failed: errno \(errno)") }
    benchmark.measurement(Metric.raw, time)
}

private func measureWhole(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8, _ path: FlushPath) throws {
    let shadow = file.shadow!
    try dirtyShadow(file, pattern, value)
    var rc: Int32 = 0
    let time = nanoseconds {
        if path == .cacheFlush {
            pmt_bench_persist_whole(shadow.baseAddress!, shadow.count)
        } else {
            rc = pmt_bench_msync_whole(shadow.baseAddress!, shadow.count)
        }
    }
    guard rc == 0 else { throw BenchmarkSetupError("whole \(path.name) failed: errno \(errno)") }
    benchmark.measurement(path.wholeMetric, time)
    try file.protectShadow()   // back to the state the raw work starts from
}

/// The baselines' setup: the k blocks writable and written, as PmemTrack's
/// faults and the stores leave them.
private func dirtyShadow(_ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8) throws {
    let shadow = file.shadow!.baseAddress!
    guard pmt_bench_unprotect_and_store(shadow, pattern.runs, pattern.runs.count, file.blockSize, value) == 0 else {
        throw BenchmarkSetupError("mprotect shadow: errno \(errno)")
    }
}
