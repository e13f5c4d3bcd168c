// The dirty index alone, per block: tagging k blocks DIRTY one at a time
// (the fault path's index work), enumerating the DIRTY runs (the sync
// walk), and clearing them (after the flush). The index covers 64 GiB of
// 4 KiB blocks; the k blocks are spread over it or adjacent.

import Benchmark
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
            configuration: BenchRun.configuration([Metric.indexSet, Metric.indexEnumerate, Metric.indexClear]),
            closure: { (benchmark, index: IndexBox) in
                measure(benchmark, index.handle, pattern)
            },
            setup: { try IndexBox(blockCount: blockCount) }
        )
    }
}

/// A class around the noncopyable handle, so that the closures can share it.
private final class IndexBox {
    let handle: DirtyIndexBenchmarkHandle
    init(blockCount: Int) throws { handle = try DirtyIndexBenchmarkHandle(blockCount: blockCount) }
}

private func measure(_ benchmark: Benchmark, _ index: borrowing DirtyIndexBenchmarkHandle, _ pattern: DirtyPattern) {
    let set = nanoseconds {
        for block in pattern.blocks { index.setDirty(block) }
    }
    var runs: [Range<Int>] = []
    runs.reserveCapacity(pattern.runs.count)
    let enumerate = nanoseconds {
        index.forEachDirtyRun { runs.append($0) }
    }
    let clear = nanoseconds {
        for run in runs { index.clearDirty(run) }
    }
    benchmark.measurement(Metric.indexSet, set)
    benchmark.measurement(Metric.indexEnumerate, enumerate)
    benchmark.measurement(Metric.indexClear, clear)
}
