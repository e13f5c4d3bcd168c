/// The points of the sync protocol where a test can stop a syncing thread.
enum SyncStep: Sendable, Hashable {
    /// Step 1 done: the range's DIRTY blocks are tagged TOWRITE.
    case tagged
    /// Step 2.1 done: the locks of this DIRTY run are held.
    case locked(Range<UInt64>)
    /// Step 2.3 done: this run of ours is write-protected, not yet flushed.
    case protected(Range<UInt64>)
    /// Step 2.4 done: this run is flushed and drained; DIRTY not yet cleared.
    case flushed(Range<UInt64>)
}

/// A test-only observer of sync steps. Production mappings have none, and
/// each step then costs one branch on a nil optional.
struct SyncHook: Sendable {
    let pause: @Sendable (SyncStep) -> Void
    /// Whether syncs skip the userfaultfd collect's write-back, so that
    /// every block they collect is published DIRTY and goes through the
    /// walk: for tests of the walk's interleavings on that backend.
    let walksEverything: Bool

    init(walksEverything: Bool = false, pause: @escaping @Sendable (SyncStep) -> Void) {
        self.pause = pause
        self.walksEverything = walksEverything
    }
}
