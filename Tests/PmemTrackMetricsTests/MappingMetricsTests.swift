#if Metrics
import Foundation
import MetricsTestKit
@testable import PmemTrack
import PmemTrackMetrics
import SystemPackage
import Testing

@Suite("Metrics")
struct MappingMetricsTests {
    static let block = 4096

    /// A mapping on a temporary ordinary file, removed afterwards.
    static func withMapping(_ body: (TrackedMapping) throws -> Void) throws {
        let path = NSTemporaryDirectory() + "pmemtrack-metrics-\(UUID().uuidString)"
        defer { unlink(path) }
        // mprotect: every store is in the index at once, so the dirty gauge
        // counts blocks outside a ranged sync too (userfaultfd counts them
        // once a collect has seen them).
        let map = try TrackedMapping(
            path: path, length: 1 << 20, options: [.create], configuration: .init(flushMode: .msync, tracking: .mprotect))
        defer { try? map.close() }
        try body(map)
    }

    @Test("each sync is counted, timed and its flushes added up under the documented labels")
    func syncsAreRecorded() throws {
        let metrics = TestMetrics()
        try Self.withMapping { map in
            let reporter = MappingMetrics(map, dimensions: [("file", "test")], factory: metrics)
            let dimensions = [("file", "test")]
            for block in [1, 2, 7] { map.bytes[block * Self.block] = 1 }
            let first = try map.sync()
            map.bytes[40 * Self.block] = 1
            let second = try map.sync(offset: 40 * Self.block, length: 1)
            try map.sync()   // nothing dirty

            #expect(try metrics.expectCounter("pmemtrack.syncs", dimensions + [("result", "success")]).totalValue == 3)
            #expect(try metrics.expectCounter("pmemtrack.flushed.blocks", dimensions).totalValue == 4)
            #expect(try metrics.expectCounter("pmemtrack.flushed.bytes", dimensions).totalValue == Int64(4 * Self.block))
            #expect(try metrics.expectCounter("pmemtrack.flushed.runs", dimensions).totalValue == Int64(first.runs + second.runs))
            #expect(try metrics.expectCounter("pmemtrack.drains", dimensions).totalValue == Int64(first.drains + second.drains))
            let timer = try metrics.expectTimer("pmemtrack.sync.duration", dimensions)
            #expect(timer.values.count == 3)
            #expect(timer.values.first == Int64(first.duration.components.attoseconds / 1_000_000_000 + first.duration.components.seconds * 1_000_000_000))
            #expect(try metrics.expectGauge("pmemtrack.dirty.blocks", dimensions).lastValue == 0)

            // Left dirty: outside a ranged sync's range.
            map.bytes[50 * Self.block] = 1
            map.bytes[51 * Self.block] = 1
            map.bytes[60 * Self.block] = 1
            try map.sync(offset: 60 * Self.block, length: 1)
            #expect(try metrics.expectGauge("pmemtrack.dirty.blocks", dimensions).lastValue == 2)

            reporter.detach()
            try map.sync()
            #expect(try metrics.expectCounter("pmemtrack.syncs", dimensions + [("result", "success")]).totalValue == 4)
        }
    }

    /// Fails every flush with EIO.
    struct FailingFlusher: Flusher {
        func flush(_ run: FlushRun) -> Result<Void, Errno> { .failure(.ioError) }
        func drain() -> Result<Void, Errno> { .success(()) }
    }

    @Test("a failed sync is counted as a failure, and nothing it did not flush is added")
    func failuresAreCounted() throws {
        let metrics = TestMetrics()
        let path = NSTemporaryDirectory() + "pmemtrack-metrics-\(UUID().uuidString)"
        defer { unlink(path) }
        let map = try TrackedMapping(
            path: path, length: 1 << 20, options: [.create], configuration: .init(flushMode: .msync)
        ) { _, _ in FailingFlusher() }
        defer { try? map.close() }
        let reporter = MappingMetrics(map, label: "journal", factory: metrics)
        defer { reporter.detach() }
        map.bytes[3 * Self.block] = 1
        #expect(throws: PmemTrackError.self) { try map.sync() }
        #expect(try metrics.expectCounter("journal.syncs", [("result", "failure")]).totalValue == 1)
        #expect(try metrics.expectCounter("journal.flushed.blocks").totalValue == 0)
        // A sync refused before it began (closed) is not a sync outcome.
        try map.close()
        #expect(throws: PmemTrackError.closed) { try map.sync() }
        #expect(try metrics.expectCounter("journal.syncs", [("result", "failure")]).totalValue == 1)
    }
}
#endif
