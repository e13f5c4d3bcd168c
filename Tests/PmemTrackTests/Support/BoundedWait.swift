import Foundation
import Synchronization
import Testing

/// How long the tests wait for anything before they fail instead.
///
/// Every wait in the tests is for something that a correct run reaches at
/// once, or after a bounded amount of work. The bounds are far beyond what a
/// slow, loaded 2-core machine takes, so that only a hang reaches them. They
/// are never part of an assertion: they only turn a hang into a failure that
/// says what was awaited ("timed out waiting for …").
enum Bound {
    /// For a state another thread or process reaches at once in a correct
    /// run: a thread arriving at a pause point or sleeping on a lock, a
    /// semaphore signalled, a thread returning once it is let go, a child
    /// process that does a little work.
    static let wait: Duration = .seconds(60)

    /// For a thread held by the test (at a pause point, a gate) waiting to be
    /// let go. Longer than ``wait``, so that when a test is stuck its own
    /// wait fails first and names what it waited for; only a test that gave
    /// up leaves a thread held this long, which then goes on by itself
    /// instead of keeping the locks it holds (and the test process) forever.
    static let release: Duration = .seconds(120)

    /// For threads or processes that do a whole workload: stress loops,
    /// thousands of syncs.
    static let work: Duration = .seconds(600)
}

extension Duration {
    /// In seconds, for the APIs that take a `Double`.
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// This long from now, for `DispatchSemaphore.wait(timeout:)`.
    var fromNow: DispatchTime { .now() + seconds }
}

/// Calls `condition` until it holds or `timeout` has passed, sleeping a
/// little more each time, up to `longestPause`. Whether it holds.
func poll(for timeout: Duration, longestPause: Duration = .milliseconds(1), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    let longest = UInt32(longestPause.seconds * 1e6)
    var pause: UInt32 = 50
    while !condition() {
        if ContinuousClock.now >= deadline { return condition() }
        usleep(pause)
        pause = min(pause * 2, longest)
    }
    return true
}

/// Waits until `condition` holds, for a state another thread will reach.
/// After `timeout`, records "timed out waiting for `what`" and returns
/// false.
@discardableResult
func waitUntil(
    _ what: String, timeout: Duration = Bound.wait, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) -> Bool {
    if poll(for: timeout, condition) { return true }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
    return false
}

/// Waits for `semaphore`. After `timeout`, records "timed out waiting for
/// `what`" and returns false.
@discardableResult
func wait(
    for semaphore: DispatchSemaphore, _ what: String, timeout: Duration = Bound.wait,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    if semaphore.wait(timeout: timeout.fromNow) == .success { return true }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
    return false
}

/// The outcome of `task` once it finishes. After `timeout`, records "timed
/// out waiting for `what`" and returns nil; the task goes on (nothing here
/// cancels it).
func outcome<T: Sendable>(
    of task: Task<T, any Error>, _ what: String, timeout: Duration = Bound.wait,
    sourceLocation: SourceLocation = #_sourceLocation
) async -> Result<T, any Error>? {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, any Error>?, Never>) in
        let once = ResumeOnce(continuation)
        let watchdog = Watchdog(after: timeout) { once.resume(with: nil) }
        Task(priority: .high) {
            let result = await task.result
            watchdog.disarm()
            once.resume(with: result)
        }
    }
    if result == nil { Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation) }
    return result
}

/// Resumes a continuation once, from whichever side comes first.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, Never>?>

    init(_ continuation: CheckedContinuation<T, Never>) { self.continuation = Mutex(continuation) }

    func resume(with value: sending T) {
        let taken = continuation.withLock { stored in
            defer { stored = nil }
            return stored
        }
        taken?.resume(returning: value)
    }
}
