// Sync cost on the userfaultfd backend against its raw work, on both flush
// paths: one PAGEMAP_SCAN over the mapping that reports the written pages
// and write-protects them again, on the shadow mapping registered with a
// userfaultfd of its own, then the flushes PmemTrack's sync makes (per run
// pmem_flush, one pmem_drain per 64 runs or 1 MiB; on an ordinary file msync
// of a lone run, else one fdatasync). Target: PmemTrack ≤ 1.15 × raw.
//
// The shadow is lazy, like PmemTrack's mapping: both scans walk page
// tables populated by the same stores.

import Benchmark
import BenchmarkBaselines
import BenchmarkSupport
import PmemTrack

#if canImport(Glibc)
import Glibc
#endif

func userfaultfdBenchmarks(length: Int) {
    for path in [FlushPath.cacheFlush, .msync] {
        for k in BenchRun.isSmoke ? [1, 64] : [1, 64, 4_096] {
            syncComparison(
                "sync userfaultfd \(path.name) k=\(k) of \(sizeName(length)) vs raw", k: k, baseline: Metric.rawUffd,
                setup: {
                    let file = try path.file(length: length, tracking: .userfaultfd, shadow: .lazy)
                    try file.registerShadowWithUserfaultfd()
                    return file
                },
                measureBaseline: { try measureRawUffd($0, $1, $2, $3, path) })
        }
    }
}

private func measureRawUffd(
    _ benchmark: Benchmark, _ file: BenchmarkFile, _ pattern: DirtyPattern, _ value: UInt8, _ path: FlushPath
) throws {
    let shadow = file.shadow!
    // First stores: the kernel resolves them and remembers the pages.
    touch(shadow.baseAddress!, pattern.blocks, blockSize: file.blockSize, value: value)
    var uffd = file.shadowUffd
    var pages = 0
    let time = nanoseconds {
        pages = path == .cacheFlush
            ? pmt_bench_uffd_scan_and_flush(
                &uffd, shadow.baseAddress!, shadow.count, file.regions.baseAddress,
                file.regions.count)
            : pmt_bench_uffd_scan_and_fdatasync(
                &uffd, shadow.baseAddress!, shadow.count, file.regions.baseAddress,
                file.regions.count, file.descriptor)
    }
    guard pages == pattern.blocks.count else {
        throw BenchmarkSetupError("raw \(path.name) reported \(pages) pages for \(pattern.blocks.count) stores: errno \(errno)")
    }
    benchmark.measurement(Metric.rawUffd, time)
}
