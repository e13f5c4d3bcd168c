// The dirty index alone, per block, against a flat bitmap (one bit per
// block, in C) doing the same work on the same blocks: tagging k blocks
// DIRTY one at a time (the fault path's index work: one call and one atomic
// OR per block on both), enumerating the DIRTY runs (the sync walk: the
// bitmap reads every word, O(N/64) whatever k, where the radix tree skips
// clean subtrees), and clearing them run by run (after the flush). Both
// cover 64 GiB of 4 KiB blocks; the k blocks are spread over it or adjacent.
//
// Each iteration runs both, first one then the other (the order
// alternates); each window times one operation over the k blocks. Both
// check, outside the windows, that they enumerated exactly the pattern's runs.

import Benchmark
import BenchmarkBaselines
@_spi(Benchmarking) import PmemTrack
import BenchmarkSupport

let benchmarks: @Sendable () -> Void = {
    let blockCount = 16 << 20   // 64 GiB of 4 KiB blocks
    let k = BenchRun.size(65_536, smoke: 1_024)
    for (name, pattern) in [
        ("spread", DirtyPattern.spread(k, over: blockCount, blockSize: 1)),
        ("contiguous", DirtyPattern.contiguous(k, blockSize: 1)),
    ] {
        Benchmark(
            "index k=\(k) \(name) of \(blockCount) blocks",
            configuration: BenchRun.configuration([
                Metric.indexSet, Metric.indexEnumerate, Metric.indexClear,
                Metric.bitmapSet, Metric.bitmapEnumerate, Metric.bitmapClear,
            ]),
            closure: { (benchmark, indexes: Indexes) in
                try rotating(benchmark.currentIteration, [
                    { try measurePmemTrack(benchmark, indexes.handle, pattern) },
                    { try measureBitmap(benchmark, indexes.bitmap, blockCount: blockCount, pattern) },
                ])
            },
            setup: { try Indexes(blockCount: blockCount, warmingWith: pattern) }
        )
    }
}

/// PmemTrack's index and the flat bitmap, both clean, in a class so that the
/// closures can share the noncopyable handle.
private final class Indexes {
    let handle: DirtyIndexBenchmarkHandle
    /// One bit per block.
    let bitmap: UnsafeMutableBufferPointer<UInt64>

    /// Commits the memory both will touch, so that no window takes a page
    /// fault: the bitmap is written whole, and the index gets the pattern
    /// set and cleared once (it commits its pages on the first store to them).
    init(blockCount: Int, warmingWith pattern: DirtyPattern) throws {
        handle = try DirtyIndexBenchmarkHandle(blockCount: blockCount)
        bitmap = .allocate(capacity: (blockCount + 63) / 64)
        bitmap.initialize(repeating: 0)
        for block in pattern.blocks { handle.setDirty(block) }
        for run in pattern.runs { handle.clearDirty(run.offset..<run.offset + run.length) }
    }

    deinit { bitmap.deallocate() }
}

private func measurePmemTrack(
    _ benchmark: Benchmark, _ index: borrowing DirtyIndexBenchmarkHandle, _ pattern: DirtyPattern
) throws {
    let set = nanoseconds {
        for block in pattern.blocks { index.setDirty(block) }
    }
    var runs: [Range<Int>] = []
    runs.reserveCapacity(pattern.runs.count)
    let enumerate = nanoseconds {
        index.forEachDirtyRun { runs.append($0) }
    }
    guard runs.count == pattern.runs.count,
          zip(runs, pattern.runs).allSatisfy({ $0.lowerBound == $1.offset && $0.count == $1.length })
    else { throw BenchmarkSetupError("PmemTrack's index enumerated \(runs.count) runs, not the pattern's \(pattern.runs.count)") }
    let clear = nanoseconds {
        for run in runs { index.clearDirty(run) }
    }
    benchmark.measurement(Metric.indexSet, set)
    benchmark.measurement(Metric.indexEnumerate, enumerate)
    benchmark.measurement(Metric.indexClear, clear)
}

private func measureBitmap(
    _ benchmark: Benchmark, _ bitmap: UnsafeMutableBufferPointer<UInt64>, blockCount: Int, _ pattern: DirtyPattern
) throws {
    let words = bitmap.baseAddress!
    let set = nanoseconds {
        for block in pattern.blocks { pmt_bench_bitmap_set(words, block) }
    }
    // Runs in blocks, into capacity reserved outside the window, as above.
    var enumerate = 0, found = 0
    let runs = [pmt_bench_run](unsafeUninitializedCapacity: pattern.runs.count) { buffer, initialized in
        enumerate = nanoseconds {
            found = pmt_bench_bitmap_runs(words, blockCount, buffer.baseAddress, buffer.count)
        }
        initialized = min(found, buffer.count)
    }
    guard found == pattern.runs.count,
          zip(runs, pattern.runs).allSatisfy({ $0.offset == $1.offset && $0.length == $1.length })
    else { throw BenchmarkSetupError("the flat bitmap enumerated \(found) runs, not the pattern's \(pattern.runs.count)") }
    let clear = nanoseconds {
        for run in runs { pmt_bench_bitmap_clear(words, run.offset, run.length) }
    }
    benchmark.measurement(Metric.bitmapSet, set)
    benchmark.measurement(Metric.bitmapEnumerate, enumerate)
    benchmark.measurement(Metric.bitmapClear, clear)
}
