// The crash lab (library product PmemTrackCrashLab): how fast it explores,
// and what recording a workload costs.
//
// - "explore": images generated, checked and reverted per second, with a
//   check that reads one word, so that the lab's own work is measured. The
//   workload stores to 16 lines spread over the mapping (one per 16th, so
//   each in its own block), marks a crash point and syncs, a few times:
//   model ADR, exhaustive up to 16 units, so 2^16 images per round.
// - "log recovery": the same with a real recovery as the check, a log that
//   scans and checksums every record (MiniLog.swift), default strategy.
// - "record" (CrashLab+Recording.swift): a log workload on a plain mapping
//   and the same workload inside CrashLab.record, side by side.
//
// An image is too short to time alone: each explore sample is one whole
// `explore` call's wall time divided by the images it checked. The time
// includes what makes those images possible: making the scratch mapping,
// preparing each crash point, and hashing the images of later crash points
// that repeat earlier ones, which are skipped, not checked. Here those are
// the sync's own crash points (before it, and after each run's flush: one
// drain per run on this path), which show the marker's stores again: about
// three skipped per image checked.
//
// The lab builds each image in a scratch mapping it makes itself, with
// tracking .automatic (userfaultfd on Linux 6.7+): not a choice a
// benchmark can make. After each image it asks that mapping for its dirty
// ranges, which on userfaultfd scans the whole mapping's page tables: the
// cost per image grows with the mapping, hence 1 MiB and 64 MiB.

import Benchmark
import BenchmarkSupport
import PmemTrack
import PmemTrackCrashLab

let benchmarks: @Sendable () -> Void = {
    let lines = BenchRun.size(16, smoke: 10)
    let rounds = BenchRun.size(4, smoke: 2)
    for length in [1 << 20, BenchRun.size(64 << 20, smoke: 4 << 20)] {
        exploreThroughput(length: length, lines: lines, rounds: rounds)
    }
    logRecoveryChecks(length: 1 << 20, records: BenchRun.size(100, smoke: 20))
    recordingOverhead(appends: BenchRun.size(2_000, smoke: 200))
}

/// Recorded on the cache-flush path, whose crash model is ADR. The recorded
/// mapping's backend matters only to the recording, which is setup here.
private let labConfiguration = TrackedMapping.Configuration(flushMode: .cacheFlush, tracking: .mprotect)

private func exploreThroughput(length: Int, lines: Int, rounds: Int) {
    // Each round's marker allows every subset of its lines; the first image
    // of a later round (nothing of it present) is the last round's durable
    // image, already checked.
    let expected = rounds * ((1 << lines) - 1) + 1
    Benchmark(
        "explore adr exhaustive \(lines) spread lines x\(rounds) of \(sizeName(length))",
        // At 64 MiB one explore call takes about 15 s: more time for samples.
        configuration: BenchRun.configuration(
            [Metric.crashImage], warmup: 1, maxSeconds: length > 1 << 20 ? 60 : 20, maxIterations: 50),
        closure: { (benchmark, lab: CrashLab<UInt64>) in
            var words: UInt64 = 0
            var report: CrashReport<UInt64>?
            let time = try nanoseconds {
                report = try lab.explore(model: .adr, strategy: .exhaustive(limit: 16)) { image in
                    words &+= image.bytes.load(fromByteOffset: 0, as: UInt64.self)
                }
            }
            blackHole(words)
            guard let report, report.verdict == .passed, report.imagesChecked == expected else {
                throw BenchmarkSetupError("expected \(expected) images, all passing: \(report.map { "\($0)" } ?? "none")")
            }
            benchmark.measurement(Metric.crashImage, time / report.imagesChecked)
        },
        setup: {
            let lab = try CrashLab<UInt64>(length: length, configuration: labConfiguration, directory: BenchRun.pmemDirectory)
            try lab.record { mapping, _ in
                let stride = length / lines
                for round in 1...rounds {
                    for line in 0..<lines {
                        mapping.bytes.storeBytes(of: UInt64(round << 8 | line), toByteOffset: line * stride, as: UInt64.self)
                    }
                    mapping.crashPoint("\(lines) lines")
                    try mapping.sync()
                }
            }
            return lab
        }
    )
}

/// The log's recovery as the check: every acknowledged record survives,
/// and every record recovered was appended, with the bytes appended.
private func logRecoveryChecks(length: Int, records: Int) {
    Benchmark(
        "log recovery check adr default strategy \(records) commits of \(sizeName(length))",
        configuration: BenchRun.configuration([Metric.crashCheck], warmup: 1, maxSeconds: 10),
        closure: { (benchmark, lab: CrashLab<UInt64>) in
            var report: CrashReport<UInt64>?
            let time = try nanoseconds { report = try lab.explore(model: .adr, check: checkLog) }
            guard let report, report.verdict == .passed else {
                throw BenchmarkSetupError("the log failed its crash test: \(report.map { "\($0)" } ?? "no report")")
            }
            benchmark.measurement(Metric.crashCheck, time / report.imagesChecked)
        },
        setup: {
            let lab = try CrashLab<UInt64>(length: length, configuration: labConfiguration, directory: BenchRun.pmemDirectory)
            try lab.record { mapping, promises in
                var log = try MiniLog(mapping: mapping)
                for _ in 0..<records {
                    let lsn = try log.append(logPayload(log.nextLSN))
                    promises.begin(lsn)
                    try log.commit()
                    promises.acknowledge(lsn)
                }
            }
            return lab
        }
    )
}

/// Records of 10 to 100 bytes, as the write-ahead log example's crash test appends.
private func logPayload(_ lsn: UInt64) -> [UInt8] {
    Array("record \(lsn) ".utf8) + Array(repeating: UInt8(truncatingIfNeeded: lsn), count: Int(lsn % 90))
}

private func checkLog(_ image: CrashImage<UInt64>) throws {
    let promised = Set(image.acknowledged).union(image.inFlight)
    let log = try MiniLog(mapping: image.mapping) { lsn, payload in
        try image.require(promised.contains(lsn), "record \(lsn) that nobody appended")
        try image.require(payload.elementsEqual(logPayload(lsn)), "record \(lsn) holds other bytes")
    }
    for lsn in image.acknowledged {
        try image.require(lsn < log.nextLSN, "acknowledged record \(lsn) lost")
    }
}
