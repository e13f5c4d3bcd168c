import CPmemTrack
import Foundation
import Synchronization
import SystemPackage
import Testing
@testable import PmemTrack

@Suite("Flush failures")
struct SyncFailureTests {
    @Test("a failed flush reports errno and range, keeps the blocks dirty, and the next sync retries", arguments: [Errno.ioError, .noSpace])
    func failureKeepsDirty(errno: Errno) throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher)
        defer { try? map.close() }
        map.bytes[1 * 4096] = 1
        map.bytes[2 * 4096] = 2
        map.bytes[9 * 4096] = 9

        flusher.failNext(errno)
        #expect(throws: PmemTrackError.flushFailed(errno, range: 4096..<3 * 4096)) { try map.sync() }
        // The walk went on: block 9 was flushed; blocks 1 and 2 stay dirty.
        #expect(flusher.takeRuns() == [4096..<3 * 4096, 9 * 4096..<10 * 4096])
        #expect(map.dirtyRanges() == [4096..<3 * 4096])
        let stats = map.statistics
        #expect(stats.flushFailures == 1 && stats.blocksFlushed == 1 && stats.dirtyBlocks == 2)

        // A store to a block whose flush failed still works (it was
        // write-protected and stays dirty).
        map.bytes[1 * 4096 + 1] = 3
        #expect(map.dirtyRanges() == [4096..<3 * 4096])

        // The next sync retries exactly the failed blocks, and succeeds.
        try map.sync()
        #expect(flusher.takeRuns() == [4096..<3 * 4096])
        #expect(map.dirtyRanges().isEmpty)
    }

    /// Ordinary files: one fdatasync drains many runs. When it fails, every
    /// run it covered stays dirty and the error names one of them; a single
    /// run is drained by an msync of just that run.
    @Test("a failed fdatasync keeps every run of its batch dirty; one run drains by msync")
    func sharedDrainFailure() throws {
        let file = TemporaryFile()
        #expect(FileManager.default.createFile(atPath: file.path, contents: Data(count: 64 * 4096)))
        let descriptor = open(file.path, O_RDONLY | O_CLOEXEC)
        defer { close(descriptor) }
        let map = try TrackedMapping.forTesting(
            path: file.path, length: 64 * 4096, flusher: FileSyncFlusher(descriptor: descriptor))
        defer { try? map.close() }
        for block in [3, 10, 40] { map.bytes[block * 4096] = 1 }
        let dirty = map.dirtyRanges()
        #expect(dirty.count == 3)
        #expect(throws: PmemTrackError.flushFailed(.ioError, range: dirty[0])) {
            try System.withInjectedFailures([InjectedFailure(syscall: .fdatasync, errno: .ioError)]) {
                () throws(PmemTrackError) in try map.sync()
            }
        }
        #expect(map.dirtyRanges() == dirty, "nothing cleaned")
        #expect(map.statistics.flushFailures == 3)
        // One run: msync of that run alone, which needs no descriptor.
        try map.sync(offset: 10 * 4096, length: 1)
        #expect(map.dirtyRanges() == [dirty[0], dirty[2]])
    }

    @Test("a failed ranged sync keeps its blocks dirty for the next full sync")
    func rangedFailure() throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher)
        defer { try? map.close() }
        map.bytes[5 * 4096] = 1
        flusher.failNext(.ioError)
        #expect(throws: PmemTrackError.flushFailed(.ioError, range: 5 * 4096..<6 * 4096)) {
            try map.sync(offset: 5 * 4096, length: 10)
        }
        #expect(map.dirtyRanges() == [5 * 4096..<6 * 4096])
        try map.sync()
        #expect(flusher.takeRuns() == [5 * 4096..<6 * 4096, 5 * 4096..<6 * 4096])
        #expect(map.dirtyRanges().isEmpty)
    }

    /// Sync A fails on block 3 while sync B, which also needs block 3, runs
    /// concurrently. B must get the error too, never a success.
    @Test("a concurrent sync gets the error of a failed flush of its range, never a success")
    func concurrentSyncSeesFailure() throws {
        let file = TemporaryFile()
        let flusher = GatedFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher)
        defer { try? map.close() }
        map.bytes[3 * 4096] = 1

        // A enters the flush of block 3 (holding its lock) and waits there.
        let aResult = ResultBox()
        let a = Thread { aResult.set { try map.sync() } }
        a.start()
        flusher.waitUntilEntered("sync A to enter its flush of block 3")

        // B starts while A holds block 3: B must wait for it.
        let bResult = ResultBox()
        let b = Thread { bResult.set { try map.sync(offset: 3 * 4096, length: 1) } }
        ProtocolInterleavingTests.startExpectingToBlock(b, on: map, "B must wait for A's lock on block 3")
        flusher.release(failing: .ioError)

        join(a, b, what: "syncs A and B to return")
        #expect(aResult.error == .flushFailed(.ioError, range: 3 * 4096..<4 * 4096))
        // B hears of A's failure, as with errseq_t, although B then flushed
        // block 3 itself, successfully.
        #expect(bResult.error == .flushFailed(.ioError, range: 3 * 4096..<4 * 4096))
        #expect(flusher.successfulFlushes == [3 * 4096..<4 * 4096])
        #expect(map.dirtyRanges().isEmpty)
        // A sync that begins after the failure does not report it.
        try map.sync(offset: 3 * 4096, length: 1)
    }

    /// The order that needs the hand-back: B tags block 3, then A takes it
    /// (clearing TOWRITE) and fails. When B walks on, only the TOWRITE that
    /// A handed back tells B the block is still its to flush.
    @Test("a sync that tagged a block before another sync failed on it flushes it itself")
    func taggedBeforeFailure() throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let pause = PausePoint(1)
        let hook = SyncHook.pausingFirst(pause) { $0 == .tagged }
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher, syncHook: hook)
        defer { try? map.close() }
        map.bytes[3 * 4096] = 1

        let bResult = ResultBox()
        let b = Thread { bResult.set { try map.sync(offset: 3 * 4096, length: 1) } }
        b.start()
        pause.waitForArrival("sync B to tag block 3")          // B has tagged block 3 and stopped

        flusher.failNext(.ioError)
        #expect(throws: PmemTrackError.flushFailed(.ioError, range: 3 * 4096..<4 * 4096)) { try map.sync() }
        #expect(flusher.takeRuns() == [3 * 4096..<4 * 4096])

        pause.release()
        join(b, what: "sync B to return")
        #expect(bResult.error == .flushFailed(.ioError, range: 3 * 4096..<4 * 4096), "B hears of A's failure")
        #expect(flusher.takeRuns() == [3 * 4096..<4 * 4096], "B flushed block 3 itself")
        #expect(map.dirtyRanges().isEmpty)
    }
}

/// Holds a sync's outcome across threads.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: PmemTrackError?

    func set(_ body: () throws -> Void) {
        var caught: PmemTrackError?
        do { try body() } catch { caught = error as? PmemTrackError }
        lock.withLock { stored = caught }
    }

    var error: PmemTrackError? { lock.withLock { stored } }
}

/// The first flush blocks until released, then fails or succeeds as told.
/// Later flushes go straight through. Both waits are bounded: a flush the
/// test never releases goes on (as a success) after `Bound.release`.
final class GatedFlusher: Flusher, @unchecked Sendable {
    private let entered = DispatchSemaphore(value: 0)
    private let gate = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var first = true
    private var failure: Errno?
    private var succeeded: [Range<Int>] = []

    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        let isFirst = lock.withLock { defer { first = false }; return first }
        if isFirst {
            entered.signal()
            if gate.wait(timeout: Bound.release.fromNow) == .timedOut {
                Issue.record("timed out waiting for the test to release the gated flush of \(run.range)")
            }
            if let failure = lock.withLock({ failure }) { return .failure(failure) }
        }
        lock.withLock { succeeded.append(run.range) }
        return MsyncFlusher().flush(run)
    }

    func drain() -> Result<Void, Errno> { .success(()) }

    @discardableResult
    func waitUntilEntered(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        wait(for: entered, what, sourceLocation: sourceLocation)
    }

    func release(failing errno: Errno?) {
        lock.withLock { failure = errno }
        gate.signal()
    }

    var successfulFlushes: [Range<Int>] { lock.withLock { succeeded } }
}
