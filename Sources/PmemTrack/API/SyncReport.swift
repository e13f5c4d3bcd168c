/// What one sync did: returned by every `sync` call, and passed to the
/// mapping's sync handler (``TrackedMapping/setSyncHandler(_:)``).
///
/// The counts are exact. The times come from one monotonic clock read at
/// each phase boundary: once per sync for the collect, and once per batch of
/// runs for the others (a batch is the runs one drain covers, up to 64 on
/// persistent memory, one per msync). They add up to ``duration`` less the
/// file-size checks before and after the sync.
public struct SyncReport: Hashable, Sendable {
    /// Blocks this sync flushed and made durable.
    public var blocks: Int
    /// Their bytes (the mapping's last block may be short).
    public var bytes: Int
    /// Runs of adjacent blocks it flushed, one flush call each.
    public var runs: Int
    /// Drains it waited for: cache fences on persistent memory, `fdatasync`
    /// or `msync` calls on an ordinary file.
    public var drains: Int
    /// Blocks that were dirty in the range when this sync took its flush set
    /// but that a concurrent sync flushed first: this sync waited for that
    /// sync's locks instead of flushing them again. Counted as the flush
    /// set's size less the blocks this sync flushed or tried to; it misses
    /// blocks that a third sync tagged after this one took its set.
    public var flushedByConcurrentSyncs: Int
    /// Time spent asking the tracking backend for the blocks written since
    /// the last collect (userfaultfd: one `PAGEMAP_SCAN`), and tagging the
    /// flush set.
    public var collecting: Duration
    /// Time spent finding, locking and write-protecting the runs (mprotect:
    /// one `mprotect` per run), including waiting for locks that writers or
    /// other syncs hold.
    public var writeProtecting: Duration
    /// Time spent issuing flushes.
    public var flushing: Duration
    /// Time spent in drains, then marking the runs clean and unlocking them.
    public var draining: Duration
    /// The whole call.
    public var duration: Duration
    /// Blocks still dirty in the mapping when the sync ended: pinned blocks,
    /// blocks whose flush failed, blocks outside a ranged sync's range, and
    /// blocks written meanwhile (on userfaultfd, only those a collect has
    /// seen). Counted only for the sync handler
    /// (``TrackedMapping/setSyncHandler(_:)``), at a cost of one index walk
    /// over the dirty blocks; nil otherwise.
    public var dirtyBlocks: Int?

    /// An empty report: a sync of nothing.
    public init() {
        blocks = 0
        bytes = 0
        runs = 0
        drains = 0
        flushedByConcurrentSyncs = 0
        collecting = .zero
        writeProtecting = .zero
        flushing = .zero
        draining = .zero
        duration = .zero
        dirtyBlocks = nil
    }
}
