import CPmemTrack
import Foundation
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
    /// whose syncs report their steps to `syncHook`. The backend is mprotect
    /// unless a test asks for another one.
    static func forTesting(
        path: String, length: Int, blockSize: Int = TrackedMapping.pageSize,
        flusher: any Flusher = MsyncFlusher(), syncHook: SyncHook? = nil,
        tracking: TrackingMode = .mprotect, mutant: ProtocolMutant? = nil
    ) throws -> TrackedMapping {
        try TrackedMapping(
            path: path, length: length, options: [.create],
            configuration: .init(blockSize: blockSize, flushMode: .msync, tracking: tracking), syncHook: syncHook,
            mutant: mutant
        ) { _, _ in flusher }
    }
}

/// The tracking backends this machine offers: mprotect everywhere, and
/// userfaultfd where the kernel has it (the tests of ``Backends`` check which).
enum Backends {
    static let userfaultfdAvailable: Bool = {
        if case .success = UserfaultfdSupport.detected { return true }
        return false
    }()

    static let all: [TrackedMapping.TrackingMode] = userfaultfdAvailable ? [.mprotect, .userfaultfd] : [.mprotect]
}

extension TrackerHook {
    /// Stops the thread at `pause` at each step of the fault path or the
    /// collect that `pause` chose, by the step's number: the C fault steps'
    /// raw values, and ``scannedStep`` for a collect's scan.
    static func pausing(_ pause: PausePoint) -> TrackerHook {
        TrackerHook { step in
            switch step {
            case .faultLocked: pause.arrive(PMT_FAULT_LOCKED.rawValue)
            case .faultDirtied: pause.arrive(PMT_FAULT_DIRTIED.rawValue)
            case .scanned: pause.arrive(scannedStep)
            }
        }
    }

    static let scannedStep: UInt32 = 100

    /// Yields the CPU after a fault has set DIRTY and after a collect's
    /// scan, to make rare interleavings common.
    static let yielding = TrackerHook { step in
        if case .faultLocked = step { return }
        sched_yield()
    }
}
