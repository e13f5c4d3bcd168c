// Sync cost for k dirty blocks, spread over the mapping so that each is a
// run of its own, on both flush paths: cache flushes on (forced) persistent
// memory, and msync on an ordinary file. PmemTrack's sync is compared, on
// the same pages, with:
// - "vs raw": the raw work, per run the mprotect and the flush PmemTrack
//   does and its drains, without the tracking (target: PmemTrack ≤ 1.15 × raw);
// - "vs whole": flushing the whole mapping, as an app without tracking
//   would (no target; below 1 PmemTrack is faster).
// The two comparisons are separate benchmarks because a whole-mapping flush
// evicts caches and TLB: whatever runs after it runs cold, and with three
// contenders the order cannot give each the same predecessors.
//
// Each iteration first dirties the k blocks (PmemTrack: stores that fault;
// baselines: stores into the shadow mapping), outside the timed window.
//
// These use the mprotect backend; the userfaultfd backend's comparison with
// its own raw work is in SyncCost+Userfaultfd.swift.

import Benchmark
import BenchmarkBaselines
import BenchmarkSupport
import PmemTrack

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    let length = BenchRun.size(1 << 30, smoke: 64 << 20)
    // On an ordinary file a sync ends in one fdatasync, whose cost grows with
    // the pages written back; larger k would make one iteration long.
    let paths: [(path: FlushPath, ks: [Int])] = [
        (.cacheFlush, BenchRun.isSmoke ? [1, 64] : [1, 64, 4_096]),
        (.msync, BenchRun.isSmoke ? [1, 16] : [1, 16, 256]),
    ]
    for (path, ks) in paths {
        for k in ks {
            let name = "sync \(path.name) k=\(k) of \(sizeName(length))"
            syncComparison(
                "\(name) vs raw", k: k, baseline: Metric.raw,
                setup: {
                    // Read-only, as a tracked mapping starts: the raw work
                    // opens and closes the same writable islands PmemTrack does.
                    let file = try path.file(length: length)
                    try file.protectShadow()
                    return file
                },
                measureBaseline: { try measureRaw($0, $1, $2, $3, path) })
            syncComparison(
                "\(name) vs whole", k: k, baseline: path.wholeMetric,
                // The shadow stays writable, one VMA, as an untracked app's
                // mapping is (msync walks VMAs and syncs each separately).
                setup: { try path.file(length: length) },
                measureBaseline: { try measureWhole($0, $1, $2, $3, path) })
        }
    }
    userfaultfdBenchmarks(length: length)
}

/// One benchmark: PmemTrack's sync of `k` spread blocks against a baseline
/// on the same pages of the same file, the two alternating which goes first.
func syncComparison(
    _ name: String, k: Int, baseline: BenchmarkMetric,
    setup: @escaping () throws -> BenchmarkFile,
    measureBaseline: @escaping (Benchmark, BenchmarkFile, DirtyPattern, UInt8) throws -> Void
) {
    Benchmark(
        name,
        configuration: BenchRun.configuration([Metric.pmemtrack, baseline, Metric.flushExcess, Metric.flushShortfall, Metric.coarsened]),
        closure: { (benchmark, file: BenchmarkFile) in
            let pattern = DirtyPattern.spread(k, over: file.blockCount, blockSize: file.blockSize)
            let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
            try rotating(benchmark.currentIteration, [
                { try measurePmemTrack(benchmark, file, pattern, value) },
                { try measureBaseline(benchmark, file, pattern, value) },
            ])
        },
        setup: setup
    )
}

enum FlushPath {
    case cacheFlush, msync

    var name: String { self == .cacheFlush ? "cacheflush" : "msync" }
    var wholeMetric: BenchmarkMetric { self == .cacheFlush ? Metric.persistWhole : Metric.msyncWhole }

    /// A cache-flush file is tmpfs, allocated and populated like a pmem
    /// device, so the whole-mapping flush walks real pages. An msync file is
    /// sparse on disk: msync writes back dirty pages only, wherever they are.
    /// `shadow` overrides the path's own.
    func file(
        length: Int, tracking: TrackedMapping.TrackingMode = .mprotect, shadow: BenchmarkFile.Shadow? = nil
    ) throws -> BenchmarkFile {
        switch self {
        case .cacheFlush:
            try BenchmarkFile(
                in: BenchRun.pmemDirectory, length: length, sparse: false, flushMode: .cacheFlush, tracking: tracking,
                shadow: shadow ?? .populated)
        case .msync:
            try BenchmarkFile(
                in: BenchRun.fileDirectory, length: length, sparse: true, flushMode: .msync, tracking: tracking,
                shadow: shadow ?? .lazy)
        }
    }
}

func measurePmemTrack(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8) throws {
    touch(file.map.bytes.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value)
    let sync = try file.measuredSync(written: pattern.blocks.count)
    benchmark.measurement(Metric.pmemtrack, sync.nanoseconds)
    benchmark.measurement(Metric.flushExcess, sync.excess)
    benchmark.measurement(Metric.flushShortfall, sync.shortfall)
    benchmark.measurement(Metric.coarsened, sync.coarsened)
}

private func measureRaw(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8, _ path: FlushPath) throws {
    let shadow = file.shadow!.baseAddress!
    // What PmemTrack's faults and the stores leave: each run writable, written.
    guard pmt_bench_unprotect_and_store(shadow, pattern.runs, pattern.runs.count, file.blockSize, value) == 0 else {
        throw BenchmarkSetupError("mprotect shadow: errno \(errno)")
    }
    var rc: Int32 = 0
    let time = nanoseconds {
        rc = path == .cacheFlush
            ? pmt_bench_protect_and_flush(shadow, pattern.runs, pattern.runs.count)
            : pmt_bench_protect_and_fdatasync(shadow, pattern.runs, pattern.runs.count, file.descriptor)
    }
    guard rc == 0 else { throw BenchmarkSetupError("raw \(path.name) failed: errno \(errno)") }
    benchmark.measurement(Metric.raw, time)
}

private func measureWhole(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8, _ path: FlushPath) throws {
    let shadow = file.shadow!
    touch(shadow.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value)
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
}
