import SystemPackage

/// How a mapping learns which blocks were written: the contract every
/// tracking backend keeps with the sync engine (Sync/SyncEngine.swift).
///
/// ## Invariant
/// Every store to the mapping is, at every moment, in one of two places:
/// in a block tagged DIRTY in the index, or in the backend's own record of
/// writes not yet collected (the kernel's written bits for userfaultfd;
/// nothing for mprotect, whose fault handler sets DIRTY before the store
/// can land). ``collect(_:reprotect:)`` moves the second into the first.
///
/// ## Lock order and signal context
/// - The mprotect backend's fault path runs in a SIGSEGV handler (C) and
///   takes one block lock, or one ascending range. The sync engine takes
///   block locks in ascending order with asynchronous signals blocked.
/// - The userfaultfd backend's collect takes the mapping's collect lock,
///   then, while holding it, the block locks of the runs it publishes, in
///   ascending order; a sync never waits for the collect lock while it holds
///   a block lock. It never runs in signal context.
///
/// ## Backends
/// - ``ProtectionTracker``: mprotect + SIGSEGV.
/// - ``UserfaultfdTracker``: userfaultfd asynchronous write-protect +
///   PAGEMAP_SCAN.
protocol WriteTracker: AnyObject, Sendable {
    /// The backend: never ``TrackedMapping/TrackingMode/automatic``.
    var mode: TrackedMapping.TrackingMode { get }

    /// Starts watching: afterwards every store to the mapping is detected.
    func start() throws(PmemTrackError)

    /// The collect step: marks DIRTY every block in `blocks` that the kernel
    /// saw written since the last collect. With `reprotect`, the pages are
    /// write-protected again in the same step, atomically per page, so a
    /// store after it is seen by the next collect; without it the kernel
    /// keeps them as written (a read-only view). Publishing DIRTY completes
    /// before the call returns, and before a concurrent collect of the same
    /// blocks can return. On failure every block the step may have
    /// re-protected is DIRTY: nothing written is forgotten.
    /// A no-op for the mprotect backend, whose faults set DIRTY themselves.
    func collect(_ blocks: Range<UInt64>, reprotect: Bool) -> Result<Void, PmemTrackError>

    /// The collect step of a sync, with write-back: as
    /// `collect(blocks, reprotect: true)`, except that, while the backend
    /// still holds what excludes concurrent collects (the userfaultfd
    /// backend's collect lock), `writeBack` receives the runs the scan
    /// reported, ascending and coalesced, and returns those it did not make
    /// durable. Only those are then published DIRTY. A concurrent collect
    /// of the same blocks therefore returns only after they are durable or
    /// DIRTY. `writeBack` is not called when the scan failed (everything it
    /// may have re-protected is published) or reported nothing.
    /// A no-op for the mprotect backend.
    func collect(
        _ blocks: Range<UInt64>, writingBack writeBack: (_ reported: [Range<UInt64>]) -> [Range<UInt64>]
    ) -> Result<Void, PmemTrackError>

    /// Makes `blocks` read-only, so that the next store to them is seen.
    /// Called with their locks held, after a collect over them.
    func writeProtect(_ blocks: Range<UInt64>) -> Result<Void, Errno>

    /// Makes `blocks` writable without waiting for a store, for writers that
    /// cannot fault (the kernel, devices). Called with their locks held,
    /// after they were marked DIRTY.
    func makeWritable(_ blocks: Range<UInt64>) -> Result<Void, Errno>

    /// Stops watching, and returns once no fault is using the mapping's
    /// state. Stores to the mapping after this are no longer tracked.
    func stop()

    /// Runs a sync of `blocks`. The mprotect backend keeps its estimate of
    /// writable islands (VMAs) around it; others just run it.
    func aroundSync<E: Error>(of blocks: Range<UInt64>, _ sync: () throws(E) -> Void) throws(E)

    /// First writes to clean blocks: stores that dirtied a block.
    var writeFaults: UInt64 { get }

    /// The backend's own counters, for ``TrackedMapping/Statistics``.
    var statistics: TrackerStatistics { get }

    /// Installs or removes (nil) a test-only observer of the backend's steps.
    func setHook(_ hook: TrackerHook?)
}

/// The counters that only one backend has.
enum TrackerStatistics {
    case mprotect(TrackedMapping.Statistics.Mprotect)
    case userfaultfd(TrackedMapping.Statistics.Userfaultfd)

    var mprotect: TrackedMapping.Statistics.Mprotect? {
        if case .mprotect(let counters) = self { counters } else { nil }
    }

    var userfaultfd: TrackedMapping.Statistics.Userfaultfd? {
        if case .userfaultfd(let counters) = self { counters } else { nil }
    }
}

/// Points of a backend's write-detection path where a test can stop the
/// thread that runs it.
enum TrackerStep: Sendable, Hashable {
    /// mprotect fault path: the block's lock is held, DIRTY not yet set.
    case faultLocked(UInt64)
    /// mprotect fault path: DIRTY is set, the block is still read-only.
    case faultDirtied(UInt64)
    /// userfaultfd collect: these blocks were reported written and
    /// write-protected again by the scan, and are not yet DIRTY.
    case scanned(Range<UInt64>)
}

/// A test-only observer of ``TrackerStep``s. Production mappings have none.
struct TrackerHook: Sendable {
    let pause: @Sendable (TrackerStep) -> Void
}
