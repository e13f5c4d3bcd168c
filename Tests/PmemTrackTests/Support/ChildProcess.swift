import Foundation
import Testing

/// libc's fork(), which Swift marks unavailable. Called through the symbol so
/// that the pthread_atfork handlers run, as they do for any C caller.
func forkProcess() -> pid_t {
    typealias Fork = @convention(c) () -> pid_t
    return unsafeBitCast(dlsym(nil, "fork")!, to: Fork.self)()
}

/// Waits for the child process `pid` to exit and returns its wait status.
/// After `timeout`, kills it, records "timed out waiting for `what`" and
/// returns nil.
func waitForChild(
    _ pid: pid_t, _ what: String, timeout: Duration = Bound.wait, sourceLocation: SourceLocation = #_sourceLocation
) -> Int32? {
    var status: Int32 = 0
    var reaped: pid_t = 0
    let exited = poll(for: timeout) {
        repeat { reaped = waitpid(pid, &status, WNOHANG) } while reaped == -1 && errno == EINTR
        return reaped != 0
    }
    if exited {
        if reaped == pid { return status }
        Issue.record("waitpid for \(what) failed: errno \(errno)", sourceLocation: sourceLocation)
        return nil
    }
    kill(pid, SIGKILL)
    waitpid(pid, &status, 0)   // killed: reaped at once
    Issue.record("timed out waiting for \(what); killed it", sourceLocation: sourceLocation)
    return nil
}

/// Waits for `process` to exit. After `timeout`, kills it, records "timed
/// out waiting for `what`" and returns false.
@discardableResult
func waitForExit(
    _ process: Process, _ what: String, timeout: Duration = Bound.wait,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    let exited = poll(for: timeout, longestPause: .milliseconds(10)) { !process.isRunning }
    if !exited { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()   // at once: it exited, or SIGKILL ends it
    if !exited { Issue.record("timed out waiting for \(what); killed it", sourceLocation: sourceLocation) }
    return exited
}
