import Foundation
import Synchronization
import SystemPackage
import Testing
@testable import PmemTrack

/// A flusher whose flushes wait at a gate until the test opens it, counting
/// the flushes that arrived. If the test never gets to open it (because the
/// syncs hold every thread it could run on), the gate opens by itself after
/// `failsafe` and says so, so that the test fails instead of hanging.
final class FlushGate: Flusher, @unchecked Sendable {
    private let condition = NSCondition()
    private var open = false
    private let failsafe: Date
    private(set) var arrived = 0
    private(set) var openedByFailsafe = false

    init(failsafe: Duration = Bound.release) { self.failsafe = Date(timeIntervalSinceNow: failsafe.seconds) }

    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        condition.lock()
        arrived += 1
        condition.broadcast()
        while !open {
            if !condition.wait(until: failsafe) {
                openedByFailsafe = true
                open = true
            }
        }
        condition.unlock()
        return .success(())
    }

    func drain() -> Result<Void, Errno> { .success(()) }

    func openGate() {
        condition.lock()
        open = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until `count` flushes are at the gate; false after `timeout`.
    func waitForArrivals(_ count: Int, timeout: Duration = Bound.wait) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while arrived < count { if !condition.wait(until: deadline) { return arrived >= count } }
        return true
    }
}

@Suite("async syncs") struct AsyncSyncTests {
    static func mapping(_ file: TemporaryFile, flusher: any Flusher) throws -> TrackedMapping {
        try TrackedMapping.forTesting(path: file.path, length: 64 << 10, flusher: flusher)
    }

    // The two tests that hold syncs at a flush gate run in a process of
    // their own: in the shared test process, other suites' blocking tests
    // occupy the cooperative pool for seconds at a time, and the tasks these
    // tests start would wait for it (the very stall async syncs avoid).

    @Test("many async syncs waiting in a slow flush leave the cooperative pool free; each completes once the flush does",
          .tags(.exitTest))
    func syncsDoNotBlockTheCooperativePool() async {
        await #expect(processExitsWith: .success) {
            guard try await Self.poolStaysFree() else { exit(1) }
        }
    }

    static func poolStaysFree() async throws -> Bool {
        let flusher = FlushGate()
        let files = (0..<16).map { _ in TemporaryFile() }
        let maps = try files.map { try Self.mapping($0, flusher: flusher) }
        for map in maps { map.bytes[100] = 1 }
        let syncs = maps.map { map in Task(priority: .high) { try await map.sync() } }
        // Every sync is now blocked in its flush, on PmemTrack's threads.
        let arrived = await onOwnThread { flusher.waitForArrivals(16) }
        try #require(arrived, "timed out waiting for 16 syncs to reach the flush gate")
        // Tasks still run: far more than the cooperative pool has threads.
        let done = await withTaskGroup(of: Int.self) { group in
            for i in 0..<200 { group.addTask { i } }
            return await group.reduce(0) { $0 + $1 }
        }
        #expect(done == (0..<200).reduce(0, +))
        flusher.openGate()
        // Had the syncs blocked the pool, nothing above could have run until
        // the gate's failsafe opened it.
        #expect(!flusher.openedByFailsafe)
        for (i, sync) in syncs.enumerated() {
            guard let result = await outcome(of: sync, "async sync \(i) to complete once the gate opened") else { return false }
            _ = try result.get()
        }
        var flushedEach = true
        for map in maps {
            flushedEach = flushedEach && map.statistics.blocksFlushed == 1 && map.dirtyRanges().isEmpty
            try map.close()
        }
        #expect(flushedEach)
        return done == (0..<200).reduce(0, +) && !flusher.openedByFailsafe && flushedEach
    }

    @Test("a sync cancelled before it starts throws CancellationError and flushes nothing")
    func cancelledBeforeStart() async throws {
        let file = TemporaryFile()
        let map = try Self.mapping(file, flusher: MsyncFlusher())
        map.bytes[5] = 1
        let task = Task(priority: .high) {
            withUnsafeCurrentTask { $0?.cancel() }
            try await map.sync()
        }
        guard let cancelled = await outcome(of: task, "the cancelled sync to throw") else { return }
        #expect(throws: CancellationError.self) { try cancelled.get() }
        #expect(map.statistics.syncs == 0)
        #expect(map.dirtyRanges() == [0..<4096])
        try await map.sync()
        #expect(map.dirtyRanges().isEmpty)
        try map.close()
    }

    @Test("a sync cancelled while it flushes completes, and its data is durable", .tags(.exitTest))
    func cancelledWhileRunning() async {
        await #expect(processExitsWith: .success) {
            guard try await Self.cancelledSyncCompletes() else { exit(1) }
        }
    }

    static func cancelledSyncCompletes() async throws -> Bool {
        let flusher = FlushGate()
        let file = TemporaryFile()
        let map = try Self.mapping(file, flusher: flusher)
        map.bytes[5] = 1
        let task = Task(priority: .high) { try await map.sync(offset: 0, length: 1) }
        let arrived = await onOwnThread { flusher.waitForArrivals(1) }
        try #require(arrived, "timed out waiting for the sync to reach the flush gate")
        task.cancel()
        flusher.openGate()
        guard let result = await outcome(of: task, "the cancelled sync to complete once the gate opened") else { return false }
        _ = try result.get()
        let durable = map.statistics.blocksFlushed == 1 && map.dirtyRanges().isEmpty
        #expect(durable)
        try map.close()
        return durable
    }

    @Test("async syncs throw the same typed errors")
    func errors() async throws {
        let file = TemporaryFile()
        let map = try Self.mapping(file, flusher: MsyncFlusher())
        await #expect(throws: PmemTrackError.rangeOutOfBounds(offset: -1, length: 1, mappingLength: 64 << 10)) {
            try await map.sync(offset: -1, length: 1)
        }
        try map.close()
        await #expect(throws: PmemTrackError.closed) { try await map.sync() }
    }
}
