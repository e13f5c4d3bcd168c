import CPmemTrack
import Foundation
import Synchronization
import Testing
@testable import PmemTrack

/// The write-protect/clean protocol, driven step by step through the test
/// pause points of the fault path (C) and the sync path (Swift).
@Suite("Protocol interleavings")
struct ProtocolInterleavingTests {
    static let block = 4096

    static func setFaultHook(_ map: TrackedMapping, _ pause: PausePoint?) {
        map.tracker.setHook(pause.map(TrackerHook.pausing))
    }

    /// Starts `thread` and waits until it either sleeps on one of `map`'s
    /// block locks or finishes; expects the former.
    static func startExpectingToBlock(
        _ thread: Thread, on map: TrackedMapping, _ why: Comment, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        thread.start()
        waitUntil("a thread to block on a block lock or finish", sourceLocation: sourceLocation) {
            pmt_lock_sleepers(map.index.raw) > 0 || thread.isFinished
        }
        #expect(!thread.isFinished, why)
    }

    /// The race from the 2016 DAX fsync thread: the fault sets DIRTY; a sync
    /// then tags and tries to clean and write-protect the block before the
    /// fault makes it writable. In the kernel's first design this left the
    /// page writable and clean. Here the sync needs the block lock, which
    /// the fault holds from DIRTY to writable, so it waits.
    @Test("fault sets DIRTY, sync runs, fault makes writable: nothing is lost")
    func kernelRaceOrder() throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher)
        defer { try? map.close() }
        nonisolated(unsafe) let bytes = map.bytes
        let pause = PausePoint(PMT_FAULT_DIRTIED.rawValue)
        Self.setFaultHook(map, pause)

        let writer = Thread { bytes[2 * Self.block + 10] = 0xAB }
        writer.start()
        #expect(pause.waitForArrival("the writer's fault to set DIRTY") == PMT_FAULT_DIRTIED.rawValue)
        Self.setFaultHook(map, nil)   // later faults run through

        let syncer = Thread { try! map.sync() }
        Self.startExpectingToBlock(syncer, on: map, "the sync must wait for the faulting writer")
        pause.release()
        join(writer, syncer, what: "the writer and the sync to return")

        #expect(bytes[2 * Self.block + 10] == 0xAB)
        // The invariant the kernel's first design broke: writable ⇒ DIRTY.
        if ProcessMaps.isWritable(bytes, at: 2 * Self.block) {
            #expect(map.dirtyRanges() == [2 * Self.block..<3 * Self.block])
        }
        // The store is in a flush: the sync's, or the next one's.
        #expect(flusher.takeRuns() == [2 * Self.block..<3 * Self.block])
        try map.sync()
        _ = flusher.takeRuns()
        let contents = try #require(FileManager.default.contents(atPath: file.path))
        #expect(contents[2 * Self.block + 10] == 0xAB)
    }

    /// A sync holds block 4 between write-protect and clearing DIRTY. A
    /// writer faults on it, waits for the lock, and dirties it again after.
    @Test("a writer faulting while a sync holds its block waits, then dirties it again")
    func faultWaitsForSync() throws {
        let file = TemporaryFile()
        let pause = PausePoint(1)
        let hook = SyncHook.pausingFirst(pause, at: SyncHook.isProtected)
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, syncHook: hook)
        defer { try? map.close() }
        nonisolated(unsafe) let bytes = map.bytes
        bytes[4 * Self.block] = 1

        let syncer = Thread { try! map.sync() }
        syncer.start()
        pause.waitForArrival("the sync to write-protect block 4")      // block 4: locked, TOWRITE cleared, read-only

        let writer = Thread { bytes[4 * Self.block + 1] = 2 }
        Self.startExpectingToBlock(writer, on: map, "the store must wait for the sync")
        pause.release()
        join(syncer, writer, what: "the sync and the writer to return")

        #expect(bytes[4 * Self.block + 1] == 2)
        #expect(map.dirtyRanges() == [4 * Self.block..<5 * Self.block], "the later store re-dirtied the block")
        #expect(ProcessMaps.isWritable(bytes, at: 4 * Self.block))
        #expect(map.statistics.writeFaults == 2)
    }

    /// Sync B tags block 6 and stops. Sync A then takes block 6 (clearing
    /// TOWRITE) and stops before flushing. B walks on: it finds no TOWRITE
    /// on block 6 any more, but must still wait for A, and must not return
    /// until A has flushed it. This is why the walk follows DIRTY runs.
    @Test("a sync waits for a block that a concurrent sync has taken", arguments: Backends.all)
    func overlappingSyncsWait(tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile()
        let bPaused = PausePoint(1), aPaused = PausePoint(2)
        let firstTag = FirstOnly(), firstProtect = FirstOnly()
        let events = Mutex<[String]>([])
        // The walk's interleaving: on userfaultfd too, the sync publishes
        // what it collects instead of writing it back in the collect.
        let hook = SyncHook(walksEverything: true) { step in
            switch step {
            case .tagged where firstTag.claim(): bPaused.arrive(1)
            case .protected where firstProtect.claim(): aPaused.arrive(2)
            case .flushed(let run): events.withLock { $0.append("flushed \(run)") }
            default: break
            }
        }
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, syncHook: hook, tracking: tracking)
        defer { try? map.close() }
        map.bytes[6 * Self.block] = 1

        let b = Thread {
            try! map.sync(offset: 6 * Self.block, length: 100)
            events.withLock { $0.append("B returned") }
        }
        b.start()
        bPaused.waitForArrival("sync B to tag block 6")     // B: block 6 tagged TOWRITE
        let a = Thread { try! map.sync() }
        a.start()
        aPaused.waitForArrival("sync A to write-protect block 6")     // A: block 6 locked, TOWRITE cleared, not flushed
        bPaused.release()
        waitUntil("sync B to block on a block lock or return") { pmt_lock_sleepers(map.index.raw) > 0 || b.isFinished }
        #expect(!b.isFinished, "B returned while A still held block 6 unflushed")
        aPaused.release()
        join(a, b, what: "syncs A and B to return")
        #expect(events.withLock { $0 } == ["flushed 6..<7", "B returned"])
        #expect(map.dirtyRanges().isEmpty)
    }

    /// Livelock, by counting. Every other block of 64 is dirty when a sync
    /// begins. Each time the sync has locked a run, a writer dirties every
    /// block of the range it can reach (all but the run being flushed):
    /// blocks already cleaned, and blocks the sync has not reached yet. The
    /// sync must still return, having taken at most one lock step per block
    /// of the range and flushed exactly the 32 blocks tagged at its start.
    @Test("a writer that keeps dirtying the range cannot keep a sync from returning", arguments: Backends.all)
    func noLivelock(tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile()
        let blocks = 64
        let lockSteps = Mutex(0)
        let flushedBlocks = Mutex(0)
        let request = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        let locked = Mutex<Range<UInt64>?>(nil)
        let writerActive = Atomic(true)
        // The walk's interleaving: on userfaultfd too, the sync publishes
        // what it collects instead of writing it back in the collect.
        let hook = SyncHook(walksEverything: true) { step in
            switch step {
            case .locked(let run) where writerActive.load(ordering: .relaxed):
                // A livelocking sync would step forever; stop interfering
                // well past the bound so that it fails instead of hanging.
                if lockSteps.withLock({ $0 += 1; return $0 }) > 4 * blocks {
                    writerActive.store(false, ordering: .relaxed)
                    return
                }
                locked.withLock { $0 = run }
                request.signal()
                // Bounded: if the writer never answers, stop interfering.
                if !wait(for: done, "the writer to dirty the range while the sync holds \(run)") {
                    writerActive.store(false, ordering: .relaxed)
                }
            case .flushed(let run): flushedBlocks.withLock { $0 += run.count }
            default: break
            }
        }
        let map = try TrackedMapping.forTesting(
            path: file.path, length: blocks * Self.block, syncHook: hook, tracking: tracking)
        defer { try? map.close() }
        nonisolated(unsafe) let bytes = map.bytes
        for b in stride(from: 0, to: blocks, by: 2) { bytes[b * Self.block] = 1 }

        let writer = Thread {
            var round: UInt8 = 0
            while writerActive.load(ordering: .relaxed) {
                guard wait(for: request, "the sync to lock a run or return"),
                      writerActive.load(ordering: .relaxed) else { break }
                let run = locked.withLock { $0! }
                round &+= 1
                for b in 0..<blocks where !run.contains(UInt64(b)) { bytes[b * Self.block + 1] = round }
                done.signal()
            }
        }
        writer.start()
        try map.sync()
        writerActive.store(false, ordering: .relaxed)
        request.signal()
        join(writer, what: "the writer to stop")

        #expect(lockSteps.withLock { $0 } >= 2, "the writer interfered")
        #expect(lockSteps.withLock { $0 } <= blocks)
        #expect(flushedBlocks.withLock { $0 } == 32)
        #expect(map.statistics.blocksFlushed == 32)
        // Everything the writer dirtied after the tag is still dirty, for the next sync.
        #expect(map.statistics.dirtyBlocks > 0)
    }
}
