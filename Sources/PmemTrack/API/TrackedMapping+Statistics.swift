import Synchronization

extension TrackedMapping {
    /// A snapshot of a mapping's counters. Counts are since the mapping was
    /// opened; ``dirtyBlocks`` is the state now.
    public struct Statistics: Hashable, Sendable {
        /// First writes to clean blocks: blocks that became dirty because
        /// something stored to them. The mprotect backend counts its faults;
        /// the userfaultfd backend counts the clean blocks each collect finds
        /// written, so several stores to one clean block between two syncs
        /// count once on both.
        public var writeFaults: UInt64
        /// Calls to `sync()` and `sync(offset:length:)`, including failed ones.
        public var syncs: UInt64
        /// Blocks written back successfully.
        public var blocksFlushed: UInt64
        /// Bytes written back successfully.
        public var bytesFlushed: UInt64
        /// Flush calls made: one per run of adjacent dirty blocks.
        public var flushCalls: UInt64
        /// Flush calls that failed; their blocks stayed dirty.
        public var flushFailures: UInt64
        /// Blocks dirty now.
        public var dirtyBlocks: Int
        /// Blocks pinned now (see ``TrackedMapping/pin(offset:length:)``).
        public var pinnedBlocks: Int
        /// Bytes of memory the dirty index has committed now.
        public var indexResidentBytes: Int
        /// The mprotect backend's own counters; nil on another backend.
        public var mprotect: Mprotect?
        /// The userfaultfd backend's own counters; nil on another backend.
        public var userfaultfd: Userfaultfd?

        /// Counters of the ``TrackingMode/mprotect`` backend.
        public struct Mprotect: Hashable, Sendable {
            /// Runs that could not be write-protected again after a flush
            /// (mprotect failed, typically at the VMA limit). They were
            /// flushed and stay dirty and writable.
            public var protectFailures: UInt64
            /// Times the VMA limit forced the whole mapping writable and dirty.
            public var degradedEvents: UInt64
            /// Blocks that coarsening made dirty beyond those written: under
            /// VMA pressure a fault extends a neighbouring dirty stretch
            /// instead of opening a new writable island.
            public var coarsenedBlocks: UInt64
        }

        /// Counters of the ``TrackingMode/userfaultfd`` backend.
        public struct Userfaultfd: Hashable, Sendable {
            /// PAGEMAP_SCAN walks: one per sync, and one per read of
            /// ``TrackedMapping/dirtyRanges()`` or ``TrackedMapping/statistics``.
            public var scans: UInt64
            /// Walks that failed; their whole range was taken as dirty.
            public var scanFailures: UInt64
            /// Times the mapping was registered and armed again in the child
            /// of a fork, with every block taken as dirty.
            public var rearms: UInt64
        }
    }
}

/// The sync engine's counters, shared by all threads syncing one mapping.
final class SyncCounters: Sendable {
    let syncs = Atomic<UInt64>(0)
    let blocksFlushed = Atomic<UInt64>(0)
    let bytesFlushed = Atomic<UInt64>(0)
    let flushCalls = Atomic<UInt64>(0)
    let flushFailures = Atomic<UInt64>(0)
}

extension Atomic where Value == UInt64 {
    func add(_ amount: UInt64) { wrappingAdd(amount, ordering: .relaxed) }
    var value: UInt64 { load(ordering: .relaxed) }
}
