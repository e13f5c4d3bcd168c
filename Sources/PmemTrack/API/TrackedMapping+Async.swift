import Synchronization

extension TrackedMapping {
    /// ``sync(file:line:)-8lk1h`` for async code: the blocking work (fdatasync,
    /// cache flushes, waiting for block locks) runs on PmemTrack's own
    /// threads, never on a thread of Swift's cooperative pool, and the
    /// calling task is suspended meanwhile.
    ///
    /// ## Cancellation
    /// A sync that has not started when its task is cancelled does not start
    /// and throws `CancellationError`: nothing is reported durable. Once
    /// started, it runs to completion, and its result (success or a
    /// ``PmemTrackError``) is returned even if the task was cancelled
    /// meanwhile: a half-done sync would report nothing more than a
    /// cancelled one, and the finished one has made its data durable.
    ///
    /// - Parameters:
    ///   - file: The caller's file, for the crash lab's reports; leave the default.
    ///   - line: The caller's line, for the crash lab's reports; leave the default.
    /// - Throws: `CancellationError`, or ``PmemTrackError`` as ``sync(file:line:)-8lk1h``.
    @discardableResult
    public func sync(file: StaticString = #fileID, line: UInt = #line) async throws -> SyncReport {
        try await onPoolThread { () throws(PmemTrackError) in try self.sync(file: file, line: line) }
    }

    /// ``sync(offset:length:file:line:)-5y0hz`` for async code, with the threads and
    /// the cancellation of ``sync(file:line:)-1rv26``.
    ///
    /// - Parameters:
    ///   - offset: The range's first byte in the mapping.
    ///   - length: The range's length in bytes; 0 syncs nothing.
    ///   - file: The caller's file, for the crash lab's reports; leave the default.
    ///   - line: The caller's line, for the crash lab's reports; leave the default.
    /// - Throws: `CancellationError`, or ``PmemTrackError`` as
    ///   ``sync(offset:length:file:line:)-5y0hz``.
    @discardableResult
    public func sync(
        offset: Int, length: Int, file: StaticString = #fileID, line: UInt = #line
    ) async throws -> SyncReport {
        try await onPoolThread { () throws(PmemTrackError) in
            try self.sync(offset: offset, length: length, file: file, line: line)
        }
    }

    /// Runs `work` on a ``BlockingPool`` thread unless the task is cancelled
    /// before it starts.
    private func onPoolThread(
        _ work: @escaping @Sendable () throws(PmemTrackError) -> SyncReport
    ) async throws -> SyncReport {
        let job = PoolJob()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SyncReport, any Error>) in
                BlockingPool.shared.run {
                    // Started or cancelled: whichever comes first decides.
                    guard job.start() else { return continuation.resume(throwing: CancellationError()) }
                    do {
                        continuation.resume(returning: try work())
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        } onCancel: {
            job.cancel()
        }
    }
}

/// Whether a pool job started before its task was cancelled.
private final class PoolJob: Sendable {
    private enum State { case waiting, started, cancelled }
    private let state = Mutex(State.waiting)

    /// True if the job may run: it was not cancelled first.
    func start() -> Bool {
        state.withLock { state in
            guard state == .waiting else { return false }
            state = .started
            return true
        }
    }

    func cancel() {
        state.withLock { state in if state == .waiting { state = .cancelled } }
    }
}
