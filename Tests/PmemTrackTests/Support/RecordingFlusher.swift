import Synchronization
import SystemPackage
@testable import PmemTrack

/// A flusher that records every run it is asked to flush, and can be told to
/// fail. It performs the real msync so that data reaches the file.
final class RecordingFlusher: Flusher {
    struct State {
        var runs: [Range<Int>] = []
        var drains = 0
        /// Errors to return from the next flush calls, in order.
        var failures: [Errno] = []
    }

    let state = Mutex(State())

    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        let failure = state.withLock { state -> Errno? in
            state.runs.append(run.range)
            return state.failures.isEmpty ? nil : state.failures.removeFirst()
        }
        if let failure { return .failure(failure) }
        return MsyncFlusher().flush(run)
    }

    func drain() -> Result<Void, Errno> {
        state.withLock { $0.drains += 1 }
        return .success(())
    }

    /// The runs flushed since the last call, and forgets them.
    func takeRuns() -> [Range<Int>] {
        state.withLock { state in
            defer { state.runs = [] }
            return state.runs
        }
    }

    func failNext(_ errors: Errno...) {
        state.withLock { $0.failures += errors }
    }
}

extension TrackedMapping {
    /// Creates an msync-mode mapping whose flushes go through `flusher`, and
    /// whose syncs report their steps to `syncHook`.
    static func forTesting(
        path: String, length: Int, blockSize: Int = TrackedMapping.pageSize,
        flusher: any Flusher = MsyncFlusher(), syncHook: SyncHook? = nil
    ) throws -> TrackedMapping {
        try TrackedMapping(
            path: path, length: length, options: [.create],
            configuration: .init(blockSize: blockSize, flushMode: .msync), syncHook: syncHook
        ) { _, _ in flusher }
    }
}
