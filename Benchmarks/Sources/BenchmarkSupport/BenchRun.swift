import Benchmark
import Foundation

/// How this run is configured, from the environment that run.sh sets.
public enum BenchRun {
    /// `PMEMTRACK_BENCH_SMOKE=1`: CI's smoke run. Every benchmark does two
    /// iterations on small mappings; its numbers prove only that it runs.
    public static let isSmoke = ProcessInfo.processInfo.environment["PMEMTRACK_BENCH_SMOKE"] == "1"

    /// Where cache-flush files go: tmpfs, which libpmem takes for persistent
    /// memory when the process starts with `PMEM_IS_PMEM_FORCE=1`.
    public static let pmemDirectory = ProcessInfo.processInfo.environment["PMEMTRACK_BENCH_PMEM_DIR"] ?? "/dev/shm"

    /// Where msync files go: an ordinary disk file system, not tmpfs, whose
    /// msync would write nothing back.
    public static let fileDirectory = ProcessInfo.processInfo.environment["PMEMTRACK_BENCH_FILE_DIR"] ?? "/var/tmp"

    /// `full` normally, `smoke` in a smoke run.
    public static func size(_ full: Int, smoke: Int) -> Int { isSmoke ? smoke : full }

    /// A configuration that reports exactly `metrics`: the custom metrics a
    /// benchmark records from its own measured windows. Their units are fixed
    /// to plain counts (nanoseconds, blocks) so that exports are not rescaled.
    public static func configuration(
        _ metrics: [BenchmarkMetric], warmup: Int = 2, maxSeconds: Int = 5, maxIterations: Int = 1_000
    ) -> Benchmark.Configuration {
        Benchmark.Configuration(
            metrics: metrics,
            units: Dictionary(uniqueKeysWithValues: metrics.map { ($0, BenchmarkUnits.count) }),
            warmupIterations: isSmoke ? 0 : warmup,
            maxDuration: .seconds(isSmoke ? 10 : maxSeconds),
            maxIterations: isSmoke ? 2 : maxIterations
        )
    }
}

/// A human-readable byte size for benchmark names: "1GiB", "64MiB".
public func sizeName(_ bytes: Int) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
        return "\(bytes >> shift)\(unit)"
    }
    return "\(bytes)B"
}
