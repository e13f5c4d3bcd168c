/// Deliberately broken variants of the write-protect/clean protocol.
///
/// They exist so that tests can show the persistence oracle and the model
/// check catch each way the protocol can be broken. Only the internal
/// initializer used by tests selects one; every public mapping runs the
/// correct protocol.
enum ProtocolMutant: Sendable, CaseIterable {
    /// (a) Under the lock, the sync clears DIRTY and flushes first, and
    /// write-protects last. A store between the flush and the write-protect
    /// lands in a block that is already clean: no sync flushes it again.
    case cleanBeforeProtect
    /// (b) The fault path sets DIRTY and makes the block writable without
    /// taking the block lock. A sync can clean and write-protect the block
    /// between the two, and the fault then makes a clean block writable:
    /// the 2016 DAX race.
    case unlockedFault
    /// (c) The sync ignores TOWRITE: it also write-protects and clears DIRTY
    /// on blocks dirtied after it began, without flushing them.
    case cleanUntagged
    /// (f) userfaultfd: the collect releases the collect lock after its scan
    /// and before it marks the reported blocks DIRTY. A concurrent sync's
    /// scan finds them clean and returns before they are flushed.
    case publishAfterRelease
    /// (g) userfaultfd: the collect scans without write-protecting, then
    /// write-protects the range in a separate call (as a soft-dirty tracker
    /// must). A store between the two is protected without being reported.
    case scanThenProtect
    /// (h) userfaultfd: the sync clears DIRTY on its runs without flushing
    /// them.
    case cleanWithoutFlush
    /// (i) userfaultfd: the collect marks blocks DIRTY without their block
    /// locks. A sync holding a block between its flush and its clear then
    /// erases the DIRTY bit of a store it never flushed, which the collect
    /// has already taken out of the kernel's written set.
    case publishWithoutBlockLock
    /// (j) userfaultfd: the sync's write-back of the blocks its scan
    /// reported runs after the collect lock is released. A concurrent
    /// sync's scan finds them clean and returns before they are durable.
    case writeBackAfterRelease

    /// Mutants of the publish, which a sync reaches only when it publishes
    /// what it collected instead of writing it back under the collect lock:
    /// with one of them the sync engine never writes back in the collect.
    var breaksThePublish: Bool { self == .publishAfterRelease || self == .publishWithoutBlockLock }

    /// The backends whose code the mutant changes.
    var backends: [TrackedMapping.TrackingMode] {
        switch self {
        case .cleanBeforeProtect, .unlockedFault, .cleanUntagged: [.mprotect]
        case .publishAfterRelease, .scanThenProtect, .cleanWithoutFlush, .publishWithoutBlockLock, .writeBackAfterRelease:
            [.userfaultfd]
        }
    }
}
