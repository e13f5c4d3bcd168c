// Recording overhead: a log workload (appends of 100 bytes, each committed
// with a ranged sync) on a plain TrackedMapping, against the same workload
// inside CrashLab.record, alternating which goes first. Each window runs
// from creating and mapping the file to closing and unlinking it, which is
// what `record` does; the recorded one also keeps the workload's promises
// (begin and acknowledge per record), as a crash test would. Both flush
// paths, both backends (named explicitly: nothing here measures .automatic).

import Benchmark
import BenchmarkSupport
import PmemTrack
import PmemTrackCrashLab

#if canImport(Glibc)
import Glibc
#endif

func recordingOverhead(appends: Int) {
    // 120 bytes a record: 2,000 fill a quarter of the mapping.
    let length = 1 << 20
    let paths: [(name: String, directory: String, flushMode: TrackedMapping.FlushMode)] = [
        ("cacheflush", BenchRun.pmemDirectory, .cacheFlush),
        ("msync", BenchRun.fileDirectory, .msync),
    ]
    for path in paths {
        for tracking in [TrackedMapping.TrackingMode.mprotect, .userfaultfd] {
            let configuration = TrackedMapping.Configuration(flushMode: path.flushMode, tracking: tracking)
            Benchmark(
                "record \(appends) appends \(tracking) \(path.name) of \(sizeName(length))",
                // On the msync path every append waits for an fdatasync
                // (about 0.6 ms here): an iteration takes seconds.
                configuration: BenchRun.configuration(
                    [Metric.plainWorkload, Metric.recordedWorkload], warmup: 1, maxSeconds: 25, maxIterations: 100),
                closure: { (benchmark, lab: CrashLab<UInt64>) in
                    try rotating(benchmark.currentIteration, [
                        {
                            let time = try nanoseconds { try runPlain(length: length, configuration, in: path.directory, appends) }
                            benchmark.measurement(Metric.plainWorkload, time)
                        },
                        {
                            let time = try nanoseconds {
                                try lab.record { mapping, promises in try appendRecords(appends, to: mapping, promises) }
                            }
                            benchmark.measurement(Metric.recordedWorkload, time)
                        },
                    ])
                },
                setup: { try CrashLab<UInt64>(length: length, configuration: configuration, directory: path.directory) }
            )
        }
    }
}

/// What `CrashLab.record` does around the workload, without the recorder.
private func runPlain(length: Int, _ configuration: TrackedMapping.Configuration, in directory: String, _ appends: Int) throws {
    let path = "\(directory)/pmemtrack-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { unlink(path) }
    let mapping = try TrackedMapping(path: path, length: length, options: [.create, .exclusive], configuration: configuration)
    guard mapping.trackingMode == configuration.tracking else {
        throw BenchmarkSetupError("asked for \(configuration.tracking) tracking, got \(mapping.trackingMode)")
    }
    try appendRecords(appends, to: mapping, nil)
    try mapping.close()
}

private func appendRecords(_ count: Int, to mapping: TrackedMapping, _ promises: Promises<UInt64>?) throws {
    let payload = [UInt8](repeating: 0x5A, count: 100)
    var log = try MiniLog(mapping: mapping)
    for _ in 0..<count {
        let lsn = try log.append(payload)
        promises?.begin(lsn)
        try log.commit()
        promises?.acknowledge(lsn)
    }
}
