import Foundation
import Synchronization
import Testing
@testable import PmemTrack

/// Stops a thread at chosen steps of a C code path (a hook called with a
/// step number) until the test lets it go. Steps not chosen pass through.
///
/// Both sides wait with a bound. A test that gives up on a pause point (its
/// wait for an arrival timed out) lets every later arrival through, and a
/// thread that the test never releases goes on by itself after
/// `Bound.release`, so that neither keeps the test process blocked.
final class PausePoint: Sendable {
    private let chosen: Set<UInt32>
    private let arrivals = DispatchSemaphore(value: 0)
    private let releases = DispatchSemaphore(value: 0)
    private let seen = Mutex<[UInt32]>([])
    private let abandoned = Atomic(false)

    init(_ steps: UInt32...) { chosen = Set(steps) }

    /// Called from the hook on the paused thread.
    func arrive(_ step: UInt32) {
        guard chosen.contains(step), !abandoned.load(ordering: .acquiring) else { return }
        seen.withLock { $0.append(step) }
        arrivals.signal()
        if releases.wait(timeout: Bound.release.fromNow) == .timedOut {
            abandon()
            Issue.record("timed out waiting for the test to release the thread paused at step \(step)")
        }
    }

    /// Waits until the other thread stops at a chosen step; returns it. After
    /// `Bound.wait`, records "timed out waiting for `what`", gives the pause
    /// point up (see ``abandon()``) and returns nil.
    @discardableResult
    func waitForArrival(_ what: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> UInt32? {
        // Given up already: that failure is recorded, and nobody will stop here.
        guard !abandoned.load(ordering: .acquiring) else { return nil }
        let steps = chosen.sorted().map(String.init).joined(separator: " or ")
        guard wait(for: arrivals, what ?? "a thread to stop at step \(steps)", sourceLocation: sourceLocation) else {
            abandon()
            return nil
        }
        return seen.withLock { $0.last }
    }

    func release() { releases.signal() }

    /// Gives the pause point up: lets a thread stopped here go, and every
    /// later arrival pass through.
    func abandon() {
        abandoned.store(true, ordering: .releasing)
        releases.signal()
    }

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
