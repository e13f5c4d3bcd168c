import Foundation
import Synchronization
import Testing

/// Runs an action on a thread of its own unless it is disarmed in time: for
/// a wait that cannot be bounded itself (a blocking read of a child's
/// output: the action kills the child), and for a process that a stuck
/// thread would otherwise keep from ever finishing.
final class Watchdog: Sendable {
    private enum State { case armed, disarmed, fired }

    private let state = Mutex(State.armed)
    private let disarmed = DispatchSemaphore(value: 0)

    /// Runs `action` after `timeout`, unless ``disarm()`` is called first.
    init(after timeout: Duration, _ action: @escaping @Sendable () -> Void) {
        Thread { [self] in
            if disarmed.wait(timeout: timeout.fromNow) == .success { return }
            let fire = state.withLock { state in
                guard state == .armed else { return false }
                state = .fired
                return true
            }
            if fire { action() }
        }.start()
    }

    /// Stops the watchdog. Returns whether it had already fired.
    @discardableResult
    func disarm() -> Bool {
        let fired = state.withLock { state in
            if state == .armed { state = .disarmed }
            return state == .fired
        }
        disarmed.signal()
        return fired
    }
}

extension Watchdog {
    /// For an exit test's body: if the child process has not finished
    /// `timeout` from now, records "timed out waiting for `what`" (the
    /// parent reports it with the exit test) and ends the child with exit
    /// status 99. The default bound is longer than the body's own bounded
    /// waits, so that those fail first and name what they waited for; this
    /// catches a thread stuck where no wait of the test can reach it.
    static func endingExitTest(
        _ what: String, after timeout: Duration = Bound.release, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        _ = Watchdog(after: timeout) {
            Issue.record("timed out waiting for \(what); ending the exit test's process", sourceLocation: sourceLocation)
            _exit(99)
        }
    }

    /// After a bounded wait has given up on threads that may hold what the
    /// rest of the test needs (a mapping's locks, which its close waits
    /// for): if they are still stuck `grace` later, the process could only
    /// hang, so this says so on the standard error and ends it. A test whose
    /// threads come unstuck, or that finishes without them, is not affected.
    static func endingProcessIfStillStuck(
        _ what: String, grace: Duration = Bound.release, _ stuck: @escaping @Sendable () -> Bool
    ) {
        Thread {
            if poll(for: grace, longestPause: .milliseconds(100), { !stuck() }) { return }
            let message = "PmemTrack tests: still waiting for \(what) \(grace) after the test timed out;"
                + " ending the process so that the run fails instead of hanging\n"
            FileHandle.standardError.write(Data(message.utf8))
            _exit(EXIT_FAILURE)
        }.start()
    }
}
