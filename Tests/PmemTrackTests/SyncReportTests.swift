import Foundation
import Synchronization
import Testing
@testable import PmemTrack

/// What a sync returns and tells its handler: ``SyncReport``.
@Suite("Sync reports")
struct SyncReportTests {
    static let block = 4096

    @Test("a sync reports the blocks, bytes, runs and drains it flushed", arguments: Backends.all)
    func counts(tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile()
        // Cache-line flushes and fences, as on persistent memory: up to 64
        // runs share a fence. (On an ordinary file they only flush caches.)
        let map = try TrackedMapping.forTesting(
            path: file.path, length: 1 << 20, flusher: CacheLineFlusher(), tracking: tracking)
        defer { try? map.close() }
        for block in stride(from: 0, to: 200, by: 2) { map.bytes[block * Self.block] = 1 }   // 100 runs
        let report = try map.sync()
        #expect(report.blocks == 100)
        #expect(report.bytes == 100 * Self.block)
        #expect(report.runs == 100)
        #expect(report.drains == 3, "the first run has a fence of its own, 64 runs share the next, 35 the last")
        #expect(report.flushedByConcurrentSyncs == 0)
        let phases = report.collecting + report.writeProtecting + report.flushing + report.draining
        #expect(phases <= report.duration)
        #expect(report.duration > .zero)

        #expect(report.dirtyBlocks == nil, "counted only for a sync handler")
        let idle = try map.sync()
        #expect(idle.blocks == 0 && idle.runs == 0 && idle.drains == 0)

        map.bytes[210 * Self.block] = 2
        map.bytes[211 * Self.block + 7] = 2
        map.bytes[230 * Self.block] = 2   // outside the range below: not flushed
        let ranged = try map.sync(offset: 210 * Self.block, length: 2 * Self.block)
        #expect(ranged.blocks == 2 && ranged.runs == 1 && ranged.drains == 1)
        #expect(map.dirtyRanges() == [230 * Self.block..<231 * Self.block])
    }

    @Test("with a drain per run, as msync has, each run is drained", arguments: Backends.all)
    func drainPerRun(tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher, tracking: tracking)
        defer { try? map.close() }
        for block in [3, 9, 10, 40] { map.bytes[block * Self.block] = 1 }
        let report = try map.sync()
        #expect(report.blocks == 4 && report.runs == 3 && report.drains == 3)
        #expect(flusher.state.withLock { $0.drains } == 3)
    }

    /// Sync B tags block 6 and stops. Sync A flushes block 6 and returns.
    /// B then finds block 6 clean: a concurrent sync flushed it, and B's
    /// report says so instead of counting it as its own.
    @Test("blocks a concurrent sync flushed first are reported as such", arguments: Backends.all)
    func concurrentlyFlushed(tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile()
        let tagged = DispatchSemaphore(value: 0), resume = DispatchSemaphore(value: 0)
        let first = Mutex(true)
        // The walk's interleaving: on userfaultfd too, the sync publishes
        // what it collects instead of writing it back in the collect.
        let hook = SyncHook(walksEverything: true) { step in
            guard case .tagged = step, first.withLock({ isFirst in defer { isFirst = false }; return isFirst }) else { return }
            tagged.signal()
            // Bounded: if the test fails before releasing, B goes on.
            _ = resume.wait(timeout: Bound.release.fromNow)
        }
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, syncHook: hook, tracking: tracking)
        defer { try? map.close() }
        map.bytes[6 * Self.block] = 1
        map.bytes[8 * Self.block] = 1

        let reportOfB = Mutex<Result<SyncReport, PmemTrackError>?>(nil)
        let b = startThread {
            reportOfB.withLock { $0 = Result { () throws(PmemTrackError) in try map.sync(offset: 6 * Self.block, length: 1) } }
        }
        guard wait(for: tagged, "sync B to tag block 6") else { return }
        let a = try map.sync()   // flushes blocks 6 and 8
        #expect(a.blocks == 2 && a.flushedByConcurrentSyncs == 0)
        resume.signal()
        guard join(b, what: "sync B to return") else { return }
        let reportB = try #require(try reportOfB.withLock { $0 }?.get())
        #expect(reportB.blocks == 0)
        #expect(reportB.flushedByConcurrentSyncs == 1)
    }

    @Test("the sync handler sees every sync's outcome, until it is removed", arguments: Backends.all)
    func handler(tracking: TrackedMapping.TrackingMode) async throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher, tracking: tracking)
        defer { try? map.close() }
        let seen = Mutex<[Result<SyncReport, PmemTrackError>]>([])
        map.setSyncHandler { outcome in seen.withLock { $0.append(outcome) } }
        // The blocking overloads; in an async function `sync()` is the async one.
        let blockingSync: () throws -> SyncReport = { try map.sync() }
        let blockingRangedSync: (Int, Int) throws -> SyncReport = { try map.sync(offset: $0, length: $1) }

        map.bytes[0] = 1
        let returned = try blockingSync()
        map.bytes[5 * Self.block] = 1
        let ranged = try blockingRangedSync(5 * Self.block, 10)
        map.bytes[9 * Self.block] = 1
        let asynchronous = try await map.sync()
        map.bytes[12 * Self.block] = 1
        flusher.failNext(.ioError)
        #expect(throws: PmemTrackError.self) { _ = try blockingSync() }

        let outcomes = seen.withLock { $0 }
        #expect(outcomes.count == 4)
        guard outcomes.count == 4 else { return }
        #expect(returned.dirtyBlocks == 0, "counted for the handler, and returned too")
        #expect(try outcomes[0].get() == returned)
        #expect(try outcomes[1].get() == ranged)
        #expect(try outcomes[2].get() == asynchronous)
        #expect(asynchronous.blocks == 1)
        guard case .failure(.flushFailed(let errno, _)) = outcomes[3] else {
            Issue.record("expected a flush failure, got \(outcomes[3])")
            return
        }
        #expect(errno == .ioError)

        map.setSyncHandler(nil)
        _ = try blockingSync()   // retries block 12
        #expect(seen.withLock { $0.count } == 4)
        #expect(map.dirtyRanges().isEmpty)
    }
}
