// End to end: dirtying a fraction of a 1 GiB mapping and making it durable.
// PmemTrack: the stores (each first store faults) plus sync. Baseline: the
// same stores into an untracked shared mapping of the same file, plus
// pmem_persist of the whole mapping. ratios.py reports the dirty fraction at
// which the two cost the same (the crossover), per tracking backend: on
// userfaultfd the first stores fault in the kernel alone, and the sync
// begins with a PAGEMAP_SCAN of the whole mapping.

import Benchmark
import BenchmarkBaselines
import BenchmarkSupport
import PmemTrack

let benchmarks: @Sendable () -> Void = {
    let length = BenchRun.size(1 << 30, smoke: 64 << 20)
    // Per mille, so that names carry the fraction ratios.py reads back.
    // The mprotect benchmarks keep their names from before there were two backends.
    let backends: [(TrackedMapping.TrackingMode, String)] = [(.mprotect, ""), (.userfaultfd, "userfaultfd ")]
    let fractions = [("0.1%", 1), ("1%", 10), ("10%", 100)]
    for (tracking, backend) in backends { for (label, perMille) in fractions {
        Benchmark(
            "end to end \(backend)\(sizeName(length)) dirty \(label) k=\(max(1, length / TrackedMapping.pageSize * perMille / 1_000))",
            // At 10% an iteration takes about half a second: more time for samples.
            configuration: BenchRun.configuration(
                [Metric.pmemtrack, Metric.persistWhole, Metric.flushExcess, Metric.flushShortfall, Metric.coarsened], maxSeconds: 10),
            closure: { (benchmark, file: BenchmarkFile) in
                let k = max(1, file.blockCount * perMille / 1_000)
                let pattern = DirtyPattern.spread(k, over: file.blockCount, blockSize: file.blockSize)
                let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
                try rotating(benchmark.currentIteration, [
                    { try measurePmemTrack(benchmark, file, pattern, value) },
                    { measureWhole(benchmark, file, pattern, value) },
                ])
            },
            setup: {
                // Allocated and populated: a real pmem file has every block,
                // and the whole-mapping flush must walk them all.
                try BenchmarkFile(
                    in: BenchRun.pmemDirectory, length: length, sparse: false, flushMode: .cacheFlush,
                    tracking: tracking, shadow: .populated)
            }
        )
    } }
}

private func measurePmemTrack(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8) throws {
    var report = SyncReport()
    let time = try nanoseconds {
        touch(file.map.bytes.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value)
        report = try file.map.sync()
    }
    let flushed = report.blocks
    benchmark.measurement(Metric.pmemtrack, time)
    benchmark.measurement(Metric.flushExcess, max(0, flushed - pattern.blocks.count))
    benchmark.measurement(Metric.flushShortfall, max(0, pattern.blocks.count - flushed))
    benchmark.measurement(Metric.coarsened, file.coarsenedSinceLastSync(file.map))
}

private func measureWhole(_ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8) {
    let shadow = file.shadow!
    let time = nanoseconds {
        touch(shadow.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value)
        pmt_bench_persist_whole(shadow.baseAddress!, shadow.count)
    }
    benchmark.measurement(Metric.persistWhole, time)
}
