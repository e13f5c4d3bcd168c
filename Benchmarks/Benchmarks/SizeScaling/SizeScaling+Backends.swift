// Where each backend's sync cost comes from, for one dirty block (k=1):
// the mprotect backend's sync follows the dirty runs alone, while the
// userfaultfd backend's PAGEMAP_SCAN walks every page-table entry of the
// mapping, present or armed. Two tracked mappings of one file, one per
// backend, each store into block 0 and sync, alternately:
// - "populated": every page of the small mapping was written and synced in
//   setup, so every entry is present;
// - "sparse": the 64 GiB sparse mapping, of which only block 0 is ever
//   written; arming it installed a marker in every entry (about 128 MiB
//   of page tables) that each scan walks.
// No target: the ratio userfaultfd / mprotect says where mprotect is the
// better choice.

import Benchmark
import BenchmarkBaselines
import BenchmarkSupport
import PmemTrack

func backendBenchmarks(small: Int, large: Int) {
    for (name, length, populated) in [("populated \(sizeName(small))", small, true), ("sparse \(sizeName(large))", large, false)] {
        Benchmark(
            "sync cacheflush k=1 \(name) userfaultfd vs mprotect",
            configuration: BenchRun.configuration(
                [Metric.userfaultfd, Metric.mprotect, Metric.flushExcess, Metric.flushShortfall, Metric.coarsened]),
            closure: { (benchmark, file: BenchmarkFile) in
                let value = UInt8(truncatingIfNeeded: benchmark.currentIteration)
                try rotating(benchmark.currentIteration, [
                    { try measureSync(benchmark, file, second: false, value, Metric.userfaultfd) },
                    { try measureSync(benchmark, file, second: true, value, Metric.mprotect) },
                ])
            },
            setup: {
                let file = try BenchmarkFile(
                    in: BenchRun.pmemDirectory, length: length, sparse: !populated, flushMode: .cacheFlush,
                    tracking: .userfaultfd, shadow: .none, second: .mprotect)
                if populated {
                    for map in [file.map, file.second!] {
                        let all = DirtyPattern.contiguous(file.blockCount, blockSize: file.blockSize)
                        touch(map.bytes.baseAddress!, all.blocks, blockSize: file.blockSize, value: 1)
                        try map.sync()
                    }
                }
                return file
            }
        )
    }
}

private func measureSync(
    _ benchmark: Benchmark, _ file: BenchmarkFile, second: Bool, _ value: UInt8, _ metric: BenchmarkMetric
) throws {
    let map = second ? file.second! : file.map
    touch(map.bytes.baseAddress!, [0], blockSize: file.blockSize, value: value)
    let sync = try file.measuredSync(written: 1, second: second)
    benchmark.measurement(metric, sync.nanoseconds)
    benchmark.measurement(Metric.flushExcess, sync.excess)
    benchmark.measurement(Metric.flushShortfall, sync.shortfall)
    benchmark.measurement(Metric.coarsened, sync.coarsened)
}
