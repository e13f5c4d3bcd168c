import Foundation
import Testing
@testable import PmemTrack

@Suite("fork", .tags(.exitTest))
struct ForkTests {
    /// The contract: the child keeps the mapping and tracks its own writes on
    /// its own copy of the dirty state, as of the fork. Lock holders of the
    /// parent do not exist in the child and hold nothing there. The parent's
    /// index never changes because of the child.
    @Test("the child tracks its own writes; the parent's index is untouched")
    func childTracksIndependently() async {
        await #expect(processExitsWith: .success) {
            let file = TemporaryFile()
            let pause = PausePoint(1)
            let hook = SyncHook.pausingFirst(pause, at: SyncHook.isProtected)
            let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, syncHook: hook)
            map.bytes[1 * 4096] = 1
            map.bytes[2 * 4096] = 2
            // A parent thread holds the locks of blocks 1 and 2, mid-sync, at the fork.
            let syncer = startThread { try! map.sync() }
            pause.waitForArrival("the parent's sync to write-protect blocks 1 and 2")

            let pid = forkProcess()
            if pid == 0 {
                map.bytes[1 * 4096 + 1] = 11   // block 1: locked in the parent at the fork
                map.bytes[5 * 4096] = 55       // a clean block
                guard map.dirtyRanges() == [1 * 4096..<3 * 4096, 5 * 4096..<6 * 4096] else { _exit(3) }
                do { try map.sync() } catch { _exit(4) }
                guard map.dirtyRanges().isEmpty, map.index.summariesAreConsistent else { _exit(5) }
                _exit(0)
            }
            // Bounded: a child stuck on an inherited lock is killed, and the test fails.
            guard let status = waitForChild(pid, "the child to write, sync and exit") else { return }
            try #require(status == 0, "child failed with wait status \(status)")

            pause.release()
            join(syncer, what: "the parent's sync to return")
            // The parent flushed its own blocks 1 and 2; the child's store to
            // block 5 is in the shared file pages but was never the parent's.
            #expect(map.dirtyRanges().isEmpty)
            #expect(map.statistics.blocksFlushed == 2)
            #expect(map.bytes[5 * 4096] == 55 && map.bytes[1 * 4096 + 1] == 11)
            #expect(map.index.summariesAreConsistent)
            map.bytes[5 * 4096 + 1] = 1
            #expect(map.dirtyRanges() == [5 * 4096..<6 * 4096], "the parent still tracks its own writes")
        }
    }
}
