// Does sync time depend on the mapping's size? The same k dirty blocks,
// spread over a 1 GiB mapping and over a 64 GiB sparse one (only the k
// blocks are ever touched), synced alternately in each iteration.
// Target (reported, not enforced): the 64 GiB sync ≤ 1.10 × the 1 GiB one.

import Benchmark
import BenchmarkSupport
import PmemTrack

let benchmarks: @Sendable () -> Void = {
    let small = BenchRun.size(1 << 30, smoke: 64 << 20)
    let large = 64 << 30
    for k in BenchRun.isSmoke ? [1, 64] : [1, 64, 4_096] {
        Benchmark(
            "sync cacheflush k=\(k) \(sizeName(small)) vs \(sizeName(large)) sparse",
            configuration: BenchRun.configuration(
                [Metric.syncSmall, Metric.syncLarge, Metric.flushExcess, Metric.flushShortfall]),
            closure: { (benchmark, files: Files) in
                let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
                try rotating(benchmark.currentIteration, [
                    { try measure(benchmark, files.small, k, value, Metric.syncSmall) },
                    { try measure(benchmark, files.large, k, value, Metric.syncLarge) },
                ])
            },
            setup: {
                // Both sparse, so that the size is all that differs.
                let open = { (length: Int) in
                    try BenchmarkFile(
                        in: BenchRun.pmemDirectory, length: length, sparse: true, flushMode: .cacheFlush, shadow: .none)
                }
                return Files(small: try open(small), large: try open(large))
            }
        )
    }
}

private struct Files {
    let small: BenchmarkFile
    let large: BenchmarkFile
}

private func measure(_ benchmark: Benchmark, _ file: BenchmarkFile, _ k: Int, _ value: UInt8, _ metric: BenchmarkMetric) throws {
    let pattern = DirtyPattern.spread(k, over: file.blockCount, blockSize: file.blockSize)
    touch(file.map.bytes.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value)
    let sync = try file.measuredSync(written: k)
    benchmark.measurement(metric, sync.nanoseconds)
    benchmark.measurement(Metric.flushExcess, sync.excess)
    benchmark.measurement(Metric.flushShortfall, sync.shortfall)
}
