import Foundation
import PmemTrack

/// Runs a workload's operations with a sync every `syncEvery`, timing each
/// sync, and collects the mapping's counters over the run.
struct WorkloadRunner {
    let kind: WorkloadKind
    let operations: Int
    let syncEvery: Int
    let seed: UInt64

    struct Result {
        var operations: Int
        var elapsed: Double
        /// Each sync's duration in seconds, ascending.
        var syncLatencies: [Double]
        /// Counters over the run alone (opening the log or table excluded).
        var faults: UInt64
        var blocksFlushed: UInt64
        var bytesFlushed: UInt64

        var table: String {
            let syncs = max(syncLatencies.count, 1)
            return Report.table([
                ("operations", "\(Report.grouped(operations)) in \(Report.duration(elapsed))"),
                ("operations/s", Report.grouped(Int(Double(operations) / elapsed))),
                ("syncs", Report.grouped(syncLatencies.count)),
                ("write faults", Report.grouped(faults)),
                ("blocks flushed/sync", String(format: "%.1f", Double(blocksFlushed) / Double(syncs))),
                ("bytes flushed/sync", ByteCount.format(bytesFlushed / UInt64(syncs))),
                ("sync latency p50", Report.duration(percentile(syncLatencies, 50))),
                ("sync latency p99", Report.duration(percentile(syncLatencies, 99))),
            ])
        }
    }

    func run(on map: TrackedMapping) throws -> Result {
        var driver = try kind.driver(on: map, seed: seed)
        let before = map.statistics
        var latencies: [Double] = []
        latencies.reserveCapacity(operations / syncEvery + 1)
        var progress = ProgressLine(label: "workload \(kind.rawValue)", total: operations)
        let clock = ContinuousClock()
        let start = clock.now
        for done in 1...operations {
            try driver.operate()
            if done % syncEvery == 0 || done == operations {
                let syncStart = clock.now
                try driver.sync()
                latencies.append((clock.now - syncStart).seconds)
            }
            progress.update(done: done)
        }
        let elapsed = (clock.now - start).seconds
        progress.finish()
        let after = map.statistics
        return Result(
            operations: operations, elapsed: elapsed, syncLatencies: latencies.sorted(),
            faults: after.writeFaults - before.writeFaults,
            blocksFlushed: after.blocksFlushed - before.blocksFlushed,
            bytesFlushed: after.bytesFlushed - before.bytesFlushed)
    }
}
