// First-write cost on the userfaultfd backend, on both file systems the
// flush paths use (tmpfs for cache flushes, a disk file system for msync):
// - "userfaultfd": PmemTrack's first stores against the same stores into
//   the shadow mapping registered with a userfaultfd of its own and armed
//   by a PAGEMAP_SCAN (C, Sources/BenchmarkBaselines/uffd_shadow.c). The
//   kernel resolves both; target ≤ 1.10.
// - "userfaultfd vs mprotect": the same stores into two tracked mappings of
//   one file, one per backend (no target; the ratio is what it is).
//
// Each contender first makes its pages clean and protected (a sync; the
// C setup writes back with fdatasync on the msync path, as that sync does,
// and re-arms), then stores once into each of the n blocks; only the
// stores are timed. The counts are checked afterwards, outside the window.

import Benchmark
import BenchmarkBaselines
import BenchmarkSupport
import PmemTrack

#if canImport(Glibc)
import Glibc
#endif

/// Where a file lives and how its mapping is flushed.
private struct FileSystemPath {
    var name: String
    var directory: String
    var flushMode: TrackedMapping.FlushMode
}

func userfaultfdBenchmarks(faults: Int, patterns: [(name: String, span: Int)]) {
    let paths = [
        FileSystemPath(name: "cacheflush", directory: BenchRun.pmemDirectory, flushMode: .cacheFlush),
        FileSystemPath(name: "msync", directory: BenchRun.fileDirectory, flushMode: .msync),
    ]
    for path in paths {
        for (name, span) in patterns {
            func file(second: TrackedMapping.TrackingMode?) throws -> BenchmarkFile {
                try BenchmarkFile(
                    in: path.directory, length: span * TrackedMapping.pageSize, sparse: false,
                    flushMode: path.flushMode, tracking: .userfaultfd, shadow: second == nil ? .populated : .none,
                    second: second)
            }
            Benchmark(
                "faults n=\(faults) \(name) userfaultfd \(path.name)",
                configuration: BenchRun.configuration([Metric.pmemtrack, Metric.cUffd]),
                closure: { (benchmark, file: BenchmarkFile) in
                    let pattern = DirtyPattern.spread(faults, over: span, blockSize: file.blockSize)
                    let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
                    try rotating(benchmark.currentIteration, [
                        { benchmark.measurement(Metric.pmemtrack, try firstStores(file.map, pattern, value)) },
                        { try measureCUffd(benchmark, file, pattern, value, writeBack: path.flushMode == .msync) },
                    ])
                },
                setup: {
                    let file = try file(second: nil)
                    try file.registerShadowWithUserfaultfd()
                    return file
                }
            )
            Benchmark(
                "faults n=\(faults) \(name) userfaultfd vs mprotect \(path.name)",
                configuration: BenchRun.configuration([Metric.userfaultfd, Metric.mprotect]),
                closure: { (benchmark, file: BenchmarkFile) in
                    let pattern = DirtyPattern.spread(faults, over: span, blockSize: file.blockSize)
                    let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
                    try rotating(benchmark.currentIteration, [
                        { benchmark.measurement(Metric.userfaultfd, try firstStores(file.map, pattern, value)) },
                        { benchmark.measurement(Metric.mprotect, try firstStores(file.second!, pattern, value)) },
                    ])
                },
                setup: { try file(second: .mprotect) }
            )
        }
    }
}

/// Syncs `map` (every block clean and protected again), then times one
/// store into each block of `pattern`, and checks that the backend counted
/// each as a first write.
private func firstStores(_ map: TrackedMapping, _ pattern: DirtyPattern, _ value: UInt8) throws -> Int {
    try map.sync()
    // On userfaultfd, reading statistics collects (without protecting):
    // here nothing, afterwards exactly the stores.
    let before = map.statistics.writeFaults
    let time = nanoseconds { touch(map.bytes.baseAddress!, pattern.blocks, blockSize: map.blockSize, value: value) }
    let taken = Int(map.statistics.writeFaults - before)
    guard taken == pattern.blocks.count else {
        throw BenchmarkSetupError("\(map.trackingMode) took \(taken) first writes for \(pattern.blocks.count) stores")
    }
    return time
}

private func measureCUffd(
    _ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8, writeBack: Bool
) throws {
    let shadow = file.shadow!
    // PmemTrack's msync sync leaves the file's pages clean in the page
    // cache, and a store to a clean page of a disk file costs more.
    if writeBack, fdatasync(file.descriptor) != 0 { throw BenchmarkSetupError("fdatasync: errno \(errno)") }
    try file.armShadow()
    let time = nanoseconds { touch(shadow.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value) }
    let taken = try file.shadowWrittenPages()
    guard taken == pattern.blocks.count else {
        throw BenchmarkSetupError("the shadow reported \(taken) written pages for \(pattern.blocks.count) stores")
    }
    benchmark.measurement(Metric.cUffd, time)
}
