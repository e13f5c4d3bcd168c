import Foundation
import Synchronization
import CPmemTrack
import Testing
@testable import PmemTrack

@Suite("Dirty index under concurrency")
struct DirtyIndexConcurrencyTests {
    /// A block tagged by a thread must be found by that thread's next search,
    /// even while other threads empty and refill the same leaf words (and so
    /// clear and restore the summary bits above them).
    /// The interleaving behind the clear-window protocol, step by step:
    /// a clear empties a leaf word; a set refills it and, seeing the summary
    /// bit still set, stops; the clear then clears the summary bit. Until the
    /// clear re-reads the word and restores the bit, the tree says the word
    /// is empty. A search in that window must still find the block.
    @Test("a search inside a summary-clear window still finds a set block")
    func searchInsideClearWindow() throws {
        let index = try DirtyIndex(blockCount: 64 * 64 * 2)
        let target: UInt64 = 5 * 64          // block 0 of leaf word 5
        index.set(.dirty, (target + 1)..<(target + 2))
        let pause = PausePoint(PMT_CLEAR_EMPTIED.rawValue, PMT_CLEAR_SUMMARY_CLEARED.rawValue)
        pmt_index_set_clear_hook(index.raw, { context, step in PausePoint.from(context).arrive(step.rawValue) }, pause.context)
        let clearer = Thread { index.clear(.dirty, (target + 1)..<(target + 2)) }
        clearer.start()

        #expect(pause.waitForArrival("the clear to empty leaf word 5") == PMT_CLEAR_EMPTIED.rawValue)
        index.set(.dirty, target..<(target + 1))      // the summary bit is still set: the set stops there
        pause.release()
        #expect(pause.waitForArrival("the clear to clear word 5's summary bit") == PMT_CLEAR_SUMMARY_CLEARED.rawValue)
        // The summary bit for word 5 is clear now, though word 5 holds `target`.
        #expect(index.firstRun(with: [.dirty], in: 0..<index.blockCount) == target..<(target + 1))
        // The downward search (the fault path's coarsening) must find it too.
        #expect(index.lastBlock(with: .dirty, in: 0..<index.blockCount) == target)
        #expect(index.count(.dirty, in: 0..<index.blockCount) == 1)
        pause.release()
        join(clearer, what: "the clear to return")

        pmt_index_set_clear_hook(index.raw, nil, nil)
        #expect(index.summariesAreConsistent)
        #expect(index.firstRun(with: [.dirty], in: 0..<index.blockCount) == target..<(target + 1))
    }

    @Test("a set block is always found while other threads clear its word")
    func setIsVisibleDespiteConcurrentClears() throws {
        let words: UInt64 = 1 << 14
        let index = try DirtyIndex(blockCount: words * 64)
        let stop = Atomic(false)
        let churners = (0..<2).map { seed in
            Thread {
                var rng = SystemRandomNumberGenerator()
                while !stop.load(ordering: .relaxed) {
                    // Blocks 1..<64 of a word; block 0 belongs to the checker.
                    let w = UInt64.random(in: 0..<words, using: &rng) & ~UInt64(seed)
                    index.set(.dirty, (w * 64 + 1)..<(w * 64 + 64))
                    index.clear(.dirty, (w * 64 + 1)..<(w * 64 + 64))
                }
            }
        }
        churners.forEach { $0.start() }
        var misses = 0
        for round in 0..<4 {
            for w in 0..<words {
                let block = w * 64
                index.set(.dirty, block..<(block + 1))
                // Search from the start of the previous summary group, so the
                // search has to pass through the summary levels.
                let from = block & ~UInt64(4095)
                let found = index.firstRun(with: [.dirty], in: from..<index.blockCount)
                if found == nil || found!.lowerBound > block { misses += 1 }
                index.clear(.dirty, block..<(block + 1))
            }
            _ = round
        }
        stop.store(true, ordering: .relaxed)
        join(churners, what: "the churning threads to stop")
        #expect(misses == 0)
        index.clear(.dirty, 0..<index.blockCount)
        #expect(index.count(.dirty, in: 0..<index.blockCount) == 0)
        #expect(index.summariesAreConsistent)
    }

    /// Every range below contains block 2048, so no two may be held at once;
    /// they start at different places so that threads hold some of each
    /// other's blocks while they wait, which deadlocks without a lock order.
    @Test("overlapping range locks exclude each other without deadlock")
    func rangeLocks() throws {
        let index = try DirtyIndex(blockCount: 4096)
        let counter = Mutex(0)
        let inside = Atomic(0)
        let overlaps = Atomic(0)
        let threads = (0..<4).map { _ in
            Thread {
                for i in 0..<2000 {
                    let first = UInt64(2048 - (i * 37) % 96)
                    index.lock(first..<(first + 96))
                    if inside.add(1, ordering: .sequentiallyConsistent).newValue > 1 { overlaps.add(1, ordering: .relaxed) }
                    counter.withLock { $0 += 1 }
                    inside.subtract(1, ordering: .sequentiallyConsistent)
                    index.unlock(first..<(first + 96))
                }
            }
        }
        threads.forEach { $0.start() }
        join(threads, what: "the four threads to take and release their range locks")
        #expect(counter.withLock { $0 } == 8000)
        #expect((0..<4096).allSatisfy { !index.isLocked($0) })
        #expect(overlaps.load(ordering: .relaxed) == 0)
    }
}
