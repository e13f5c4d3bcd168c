import CPmemTrack
import Foundation
import Synchronization
import Testing
@testable import PmemTrack

/// The userfaultfd backend's races, driven step by step through its collect
/// hook and the sync path's pause points.
@Suite("Protocol interleavings: userfaultfd", .enabled(if: Backends.userfaultfdAvailable))
struct UserfaultfdInterleavingTests {
    static let block = 4096

    static func tracker(_ map: TrackedMapping) -> UserfaultfdTracker { map.tracker as! UserfaultfdTracker }
}

extension TrackerHook {
    /// Stops the first collect after its scan, at `pause`; later collects
    /// run through.
    static func pausingFirstScan(_ pause: PausePoint) -> TrackerHook {
        let once = FirstOnly()
        return TrackerHook { step in
            if case .scanned = step, once.claim() { pause.arrive(scannedStep) }
        }
    }
}

extension UserfaultfdInterleavingTests {

    /// Sync A's scan has taken block 6 out of the kernel's written set and
    /// stops before marking it DIRTY. Sync B of the same range must not
    /// return before A has flushed block 6. Returns B's view of the order,
    /// and whether B was seen waiting (for the collect lock or a block lock).
    /// With `walksEverything`, A publishes block 6 and its walk flushes
    /// it; otherwise A writes it back in its collect.
    static func collectRace(
        mutant: ProtocolMutant?, walksEverything: Bool = false
    ) throws -> (events: [String], bWaited: Bool) {
        let file = TemporaryFile()
        let events = Mutex<[String]>([])
        let hook = SyncHook(walksEverything: walksEverything) { step in
            if case .flushed(let run) = step { events.withLock { $0.append("flushed \(run)") } }
        }
        let map = try TrackedMapping.forTesting(
            path: file.path, length: 1 << 20, syncHook: hook, tracking: .userfaultfd, mutant: mutant)
        defer { try? map.close() }
        map.bytes[6 * block] = 1
        let pause = PausePoint(TrackerHook.scannedStep)
        map.tracker.setHook(.pausingFirstScan(pause))
        let a = Thread { try! map.sync() }
        a.start()
        pause.waitForArrival("sync A's scan to take block 6")
        let b = Thread {
            try! map.sync(offset: 6 * block, length: 100)
            events.withLock { $0.append("B returned") }
        }
        b.start()
        waitUntil("sync B to wait (for the collect lock or a block lock) or return") {
            tracker(map).collectWaiters > 0 || pmt_lock_sleepers(map.index.raw) > 0 || b.isFinished
        }
        let bWaited = !b.isFinished
        pause.release()
        join(a, b, what: "syncs A and B to return")
        return (events.withLock { $0 }, bWaited)
    }

    @Test(
        "a sync whose scan finds a block another sync's scan took waits until that sync has flushed it",
        arguments: [false, true])
    func concurrentCollectWaits(walksEverything: Bool) throws {
        let (events, bWaited) = try Self.collectRace(mutant: nil, walksEverything: walksEverything)
        #expect(bWaited, "B's collect must wait for A's to publish")
        #expect(events == ["flushed 6..<7", "B returned"])
    }

    /// The same interleaving catches the mutant that publishes after
    /// releasing the collect lock: B returns before block 6 is flushed.
    @Test("the interleaving catches a collect that publishes after releasing its lock")
    func catchesPublishAfterRelease() throws {
        let (events, bWaited) = try Self.collectRace(mutant: .publishAfterRelease)
        #expect(!bWaited)
        #expect(events.first == "B returned", "the mutant is caught: B returned before the flush")
    }

    /// Sync A writes block 6 back in its collect, which the race above
    /// exercises; the mutant writes back after releasing the collect lock,
    /// and the same interleaving catches it.
    @Test("the interleaving catches a collect that writes back after releasing its lock")
    func catchesWriteBackAfterRelease() throws {
        let (events, bWaited) = try Self.collectRace(mutant: .writeBackAfterRelease)
        #expect(!bWaited)
        #expect(events.first == "B returned", "the mutant is caught: B returned before the flush")
    }

    /// A store to a clean page lands between the scan and the write-protect.
    /// With a scan that protects as it reports, the page stays written in
    /// the kernel and the next sync flushes it; with a separate protect (the
    /// soft-dirty race) it is protected unreported and never flushed.
    static func storeBetweenScanAndProtect(mutant: ProtocolMutant?) throws -> (flushedAfter: [Range<Int>], dirty: [Range<Int>]) {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(
            path: file.path, length: 1 << 20, flusher: flusher, tracking: .userfaultfd, mutant: mutant)
        defer { try? map.close() }
        nonisolated(unsafe) let bytes = map.bytes
        bytes[2 * block] = 1
        let pause = PausePoint(TrackerHook.scannedStep)
        map.tracker.setHook(.pausingFirstScan(pause))
        let syncer = Thread { try! map.sync() }
        syncer.start()
        pause.waitForArrival("the sync's scan to finish")
        bytes[9 * block] = 9          // block 9 was clean when the scan passed it
        pause.release()
        join(syncer, what: "the sync to return")
        _ = flusher.takeRuns()
        try map.sync()
        return (flusher.takeRuns(), map.dirtyRanges())
    }

    @Test("a store between the scan and the protect is in the next sync")
    func storeDuringScanIsKept() throws {
        let (flushed, dirty) = try Self.storeBetweenScanAndProtect(mutant: nil)
        #expect(flushed == [9 * Self.block..<10 * Self.block])
        #expect(dirty.isEmpty)
    }

    @Test("the interleaving catches a scan followed by a separate protect (the soft-dirty race)")
    func catchesScanThenProtect() throws {
        let (flushed, _) = try Self.storeBetweenScanAndProtect(mutant: .scanThenProtect)
        #expect(flushed.isEmpty, "the mutant is caught: the store to block 9 was never flushed")
    }

    /// Sync A holds block 4 after its flush and drain, before clearing
    /// DIRTY. A store to block 4 does not wait (the kernel resolves it), and
    /// sync B's collect takes it out of the kernel's written set. B must not
    /// mark block 4 DIRTY until A has cleared it, or A's clear erases the
    /// store from every record: B waits for the block lock, then flushes it.
    @Test("a collect publishing a block that a sync holds after its flush waits, and the store is flushed")
    func publishWaitsForClean() throws {
        let (flushes, bWaited, dirty, stored) = try Self.publishDuringClean(mutant: nil)
        #expect(bWaited, "B's collect must wait for A's clear of block 4")
        #expect(flushes == ["4..<5", "4..<5"], "B flushed the later store")
        #expect(dirty.isEmpty)
        #expect(stored == 2)
    }

    @Test("the interleaving catches a collect that publishes without the block lock")
    func catchesPublishWithoutBlockLock() throws {
        // B still waits, but in its walk, after A's clear already erased the
        // DIRTY bit its collect set.
        let (flushes, _, dirty, _) = try Self.publishDuringClean(mutant: .publishWithoutBlockLock)
        #expect(flushes == ["4..<5"] && dirty.isEmpty, "the mutant is caught: the later store is in no flush and not dirty")
    }

    static func publishDuringClean(
        mutant: ProtocolMutant?
    ) throws -> (flushes: [String], bWaited: Bool, dirty: [Range<Int>], stored: UInt8) {
        let file = TemporaryFile()
        let flushes = Mutex<[String]>([])
        let pause = PausePoint(1)
        let once = FirstOnly()
        // The race is in the walk's flush-to-clean window, so A publishes
        // what it collects instead of writing it back in the collect.
        let hook = SyncHook(walksEverything: true) { step in
            if case .flushed(let run) = step {
                flushes.withLock { $0.append("\(run)") }
                if once.claim() { pause.arrive(1) }
            }
        }
        let map = try TrackedMapping.forTesting(
            path: file.path, length: 1 << 20, syncHook: hook, tracking: .userfaultfd, mutant: mutant)
        defer { try? map.close() }
        nonisolated(unsafe) let bytes = map.bytes
        bytes[4 * Self.block] = 1
        let a = Thread { try! map.sync() }
        a.start()
        pause.waitForArrival("sync A to flush block 4")          // A: block 4 flushed and drained, still locked and DIRTY
        bytes[4 * Self.block + 1] = 2       // lands at once
        let b = Thread { try! map.sync() }
        b.start()
        waitUntil("sync B to wait for block 4 or return") { pmt_lock_sleepers(map.index.raw) > 0 || b.isFinished }
        let bWaited = !b.isFinished
        pause.release()
        join(a, b, what: "syncs A and B to return")
        let contents = try #require(FileManager.default.contents(atPath: file.path))
        return (flushes.withLock { $0 }, bWaited, map.dirtyRanges(), contents[4 * block + 1])
    }
}
