import Foundation
import Synchronization
@testable import PmemTrack

/// Stops a thread at chosen steps of a C code path (a hook called with a
/// step number) until the test lets it go. Steps not chosen pass through.
final class PausePoint: Sendable {
    private let chosen: Set<UInt32>
    private let arrivals = DispatchSemaphore(value: 0)
    private let releases = DispatchSemaphore(value: 0)
    private let seen = Mutex<[UInt32]>([])

    init(_ steps: UInt32...) { chosen = Set(steps) }

    /// Called from the hook on the paused thread.
    func arrive(_ step: UInt32) {
        guard chosen.contains(step) else { return }
        seen.withLock { $0.append(step) }
        arrivals.signal()
        releases.wait()
    }

    /// Waits until the other thread stops at a chosen step; returns it.
    func waitForArrival() -> UInt32 {
        arrivals.wait()
        return seen.withLock { $0.last! }
    }

    func release() { releases.signal() }

    var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ context: UnsafeMutableRawPointer?) -> PausePoint {
        Unmanaged<PausePoint>.fromOpaque(context!).takeUnretainedValue()
    }
}

extension SyncHook {
    /// Stops the first sync that reaches a step matching `step` at `pause`
    /// (as its step 1); every other step and sync runs through.
    static func pausingFirst(_ pause: PausePoint, at step: @escaping @Sendable (SyncStep) -> Bool) -> SyncHook {
        let once = FirstOnly()
        return SyncHook { reached in
            if step(reached), once.claim() { pause.arrive(1) }
        }
    }

    static let isProtected: @Sendable (SyncStep) -> Bool = { if case .protected = $0 { true } else { false } }
}
