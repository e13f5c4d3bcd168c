import Foundation
import Synchronization
import SystemPackage
import Testing
@testable import PmemTrack

/// A clock that moves only when the test moves it.
final class ManualClock: WritebackClock, @unchecked Sendable {
    private let time = Mutex(Duration.zero)
    private let waiters = Mutex<[NSCondition]>([])

    var now: Duration { time.withLock { $0 } }

    func wait(_ condition: NSCondition, until deadline: Duration) {
        waiters.withLock { list in if !list.contains(where: { $0 === condition }) { list.append(condition) } }
        guard now < deadline else { return }
        // Until the clock moves or the writer is stopped, which each test
        // does within moments. Bounded, so that a lost wakeup fails instead
        // of keeping the writer, and the close that joins it, waiting
        // forever (the writer re-checks after any wakeup).
        if !condition.wait(until: Date(timeIntervalSinceNow: Bound.wait.seconds)) {
            Issue.record("timed out waiting for the manual clock to move or the background writer to be stopped")
        }
    }

    /// Moves the clock and wakes whoever waits on it.
    func advance(by step: Duration) {
        time.withLock { $0 += step }
        for condition in waiters.withLock({ $0 }) {
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
    }
}

/// Fails the flushes it is told to fail, else msync.
final class SwitchableFlusher: Flusher, @unchecked Sendable {
    let failing = Mutex<Errno?>(nil)
    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        if let errno = failing.withLock({ $0 }) { return .failure(errno) }
        return MsyncFlusher().flush(run)
    }
    func drain() -> Result<Void, Errno> { .success(()) }
}

@Suite("background writeback") struct WritebackTests {
    static func mapping(
        _ file: TemporaryFile, age: Duration, limit: Int? = nil, clock: ManualClock, flusher: any Flusher = MsyncFlusher()
    ) throws -> TrackedMapping {
        try TrackedMapping(
            path: file.path, length: 1 << 20, options: [.create],
            configuration: .init(flushMode: .msync, tracking: .mprotect, writeback: .maximumDirtyAge(age, dirtyByteLimit: limit)),
            writebackClock: clock
        ) { _, _ in flusher }
    }

    /// Advances the clock by `step` and waits (bounded) for the passes that
    /// become due.
    static func advance(_ clock: ManualClock, _ map: TrackedMapping, by step: Duration, expecting passes: Int) throws {
        clock.advance(by: step)
        let done = map.writer!.waitForPasses(passes, seconds: Bound.wait.seconds)
        try #require(done, "timed out waiting for background pass \(passes) after the clock moved by \(step)")
    }

    @Test("no block stays dirty past the maximum age, on the injected clock")
    func dirtyAgeStaysBounded() throws {
        let clock = ManualClock()
        let file = TemporaryFile()
        let map = try Self.mapping(file, age: .seconds(10), clock: clock)
        var writtenAt: [Int: Duration] = [:]   // block → when it was first dirtied
        var random = SystemRandomNumberGenerator()
        var passes = 0
        for step in 0..<12 {
            // Write a few blocks, then let 5 s (half the age) pass.
            for _ in 0..<4 {
                let block = Int.random(in: 0..<256, using: &random)
                map.bytes[block * 4096] = UInt8(step)
                if writtenAt[block] == nil { writtenAt[block] = clock.now }
            }
            passes += 1
            try Self.advance(clock, map, by: .seconds(5), expecting: passes)
            // Every block written before this pass is clean now.
            let dirty = Set(map.dirtyRanges().flatMap { ($0.lowerBound / 4096)..<($0.upperBound / 4096) })
            for (block, time) in writtenAt where dirty.contains(block) {
                #expect(clock.now - time < .seconds(10), "block \(block) dirty since \(time), now \(clock.now)")
            }
            #expect(dirty.isEmpty)
            writtenAt = writtenAt.filter { dirty.contains($0.key) }
        }
        #expect(map.statistics.syncs == UInt64(passes))
        try map.close()
    }

    @Test("nothing happens before the interval; a dirty-byte limit starts writeback early")
    func limitStartsEarly() throws {
        let clock = ManualClock()
        let file = TemporaryFile()
        let map = try Self.mapping(file, age: .seconds(16), limit: 8 * 4096, clock: clock)
        for block in 0..<4 { map.bytes[block * 4096] = 1 }
        // 1 s of 8 (the interval): a poll, under the limit: no pass.
        clock.advance(by: .seconds(1))
        #expect(map.statistics.syncs == 0)
        #expect(map.dirtyRanges() == [0..<4 * 4096])
        for block in 4..<12 { map.bytes[block * 4096] = 1 }
        // Over the limit: the next poll (1 s later) syncs.
        try Self.advance(clock, map, by: .seconds(1), expecting: 1)
        #expect(map.dirtyRanges().isEmpty)
        try map.close()
    }

    @Test("a background sync's error is thrown by the next foreground sync, once; its blocks stay dirty until a sync succeeds")
    func backgroundErrorsAreReported() throws {
        let clock = ManualClock()
        let file = TemporaryFile()
        let flusher = SwitchableFlusher()
        let map = try Self.mapping(file, age: .seconds(2), clock: clock, flusher: flusher)
        map.bytes[0] = 1
        flusher.failing.withLock { $0 = .ioError }
        try Self.advance(clock, map, by: .seconds(1), expecting: 1)
        #expect(map.dirtyRanges() == [0..<4096])
        flusher.failing.withLock { $0 = nil }
        #expect(throws: PmemTrackError.flushFailed(.ioError, range: 0..<4096)) { try map.sync() }
        #expect(map.dirtyRanges().isEmpty)   // that sync retried the block
        try map.sync()                       // reported once
        try map.close()
    }

    @Test("close stops the writer first; bad settings are refused")
    func closeAndBadInput() throws {
        let clock = ManualClock()
        let file = TemporaryFile()
        let map = try Self.mapping(file, age: .seconds(2), clock: clock)
        map.bytes[0] = 1
        #expect(map.writer!.isRunning)
        try map.close()
        #expect(!map.writer!.isRunning)
        clock.advance(by: .seconds(10))
        #expect(throws: PmemTrackError.closed) { try map.sync() }
        for writeback in [TrackedMapping.Writeback.maximumDirtyAge(.microseconds(10)), .maximumDirtyAge(.seconds(1), dirtyByteLimit: 0)] {
            let other = TemporaryFile()
            #expect(throws: PmemTrackError.self) {
                try TrackedMapping(path: other.path, length: 1 << 20, options: [.create], configuration: .init(writeback: writeback))
            }
            #expect(!FileManager.default.fileExists(atPath: other.path))
        }
    }
}
