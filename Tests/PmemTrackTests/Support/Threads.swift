import Foundation
import Synchronization
import Testing

/// Starts `body` on a thread of its own, for ``join(_:what:timeout:sourceLocation:)``.
@discardableResult
func startThread(_ body: @escaping @Sendable () -> Void) -> Thread {
    let thread = Thread(block: body)
    thread.start()
    return thread
}

/// Waits until every one of `threads` has returned. After `timeout`,
/// records "timed out waiting for `what`" and returns false; if they are
/// still running `Bound.release` after that, a watchdog ends the process
/// (see ``Watchdog/endingProcessIfStillStuck(_:grace:_:)``), since the
/// test's clean-up would wait for them forever.
@discardableResult
func join(
    _ threads: [Thread], what: String, timeout: Duration = Bound.wait,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    if poll(for: timeout, { threads.allSatisfy(\.isFinished) }) { return true }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
    nonisolated(unsafe) let stuck = threads
    Watchdog.endingProcessIfStillStuck(what) { !stuck.allSatisfy(\.isFinished) }
    return false
}

@discardableResult
func join(
    _ threads: Thread..., what: String, timeout: Duration = Bound.wait,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    join(threads, what: what, timeout: timeout, sourceLocation: sourceLocation)
}

/// Runs `body` on a thread of its own, not the cooperative pool's.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        startThread { continuation.resume(returning: body()) }
    }
}

/// True for the first caller only.
final class FirstOnly: Sendable {
    private let taken = Mutex(false)
    func claim() -> Bool {
        taken.withLock { taken in
            defer { taken = true }
            return !taken
        }
    }
}
