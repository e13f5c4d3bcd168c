extension TrackedMapping {
    /// How a mapping is made durable.
    public enum FlushMode: Hashable, Sendable {
        /// libpmem's verdict: cache flushes on persistent memory, msync otherwise.
        case automatic
        /// CPU cache-line flushes and a fence (`pmem_flush`, `pmem_drain`).
        /// Only valid where libpmem reports persistent memory.
        case cacheFlush
        /// The kernel's write-back, valid on any mapping: the sync
        /// write-protects its runs, then one `fdatasync` of the file makes
        /// them durable (`msync(MS_SYNC)` per run for ``Options/tmpfile``
        /// mappings, which have no descriptor of PmemTrack's own).
        case msync
    }

    /// How a mapping learns which blocks were written.
    ///
    /// Both backends give the same guarantee: a sync flushes every block
    /// written since its last successful flush. They differ in cost and in
    /// which writers they see; see the README's "Tracking backends".
    public enum TrackingMode: Hashable, Sendable {
        /// ``userfaultfd`` where it works, else ``mprotect``. On a DAX file
        /// system, ``userfaultfd`` only after a self-test of that file system
        /// in a child process has passed; for a mapping larger than
        /// ``automaticUserfaultfdLimit``, ``mprotect``. Never fails because a
        /// kernel feature is missing.
        case automatic
        /// Asynchronous userfaultfd write-protect (Linux 6.7+): the kernel
        /// resolves a write fault itself and remembers the page as written;
        /// a sync collects the written pages with one `PAGEMAP_SCAN` ioctl
        /// that also write-protects them again. No signal, no VMA split, and
        /// the kernel's own writes into the mapping (`read(2)`, O_DIRECT)
        /// are tracked. Throws ``PmemTrackError/trackingUnavailable(_:)``
        /// where it cannot work.
        case userfaultfd
        /// Clean blocks are read-only; the first store to one raises SIGSEGV,
        /// and PmemTrack's handler marks the block dirty and makes it
        /// writable. Works on every Linux kernel.
        case mprotect
    }

    /// Tracking granularity and flush mode.
    public struct Configuration: Hashable, Sendable {
        /// The largest block size: one x86-64 huge page, like a DAX PMD entry.
        public static let maximumBlockSize = 2 << 20

        /// Bytes per tracked block: a power of two, a multiple of the page
        /// size, at most ``maximumBlockSize``. A store anywhere in a block
        /// makes the whole block dirty and the next sync flushes all of it.
        public var blockSize: Int
        /// How syncs make blocks durable.
        public var flushMode: FlushMode
        /// How writes are detected.
        public var tracking: TrackingMode
        /// Whether background syncs bound how long a block stays dirty.
        public var writeback: Writeback

        /// - Parameters:
        ///   - blockSize: Defaults to the page size.
        ///   - flushMode: Defaults to ``FlushMode/automatic``.
        ///   - tracking: Defaults to ``TrackingMode/automatic``.
        ///   - writeback: Defaults to ``Writeback/off``.
        public init(
            blockSize: Int = TrackedMapping.pageSize, flushMode: FlushMode = .automatic,
            tracking: TrackingMode = .automatic, writeback: Writeback = .off
        ) {
            self.blockSize = blockSize
            self.flushMode = flushMode
            self.tracking = tracking
            self.writeback = writeback
        }

        func validated() throws(PmemTrackError) -> Configuration {
            let size = blockSize
            guard size > 0, size & (size - 1) == 0, size % TrackedMapping.pageSize == 0,
                  size <= Self.maximumBlockSize
            else { throw .invalidBlockSize(size) }
            try writeback.validate()
            return self
        }
    }

    /// Background writeback: PmemTrack syncs the mapping by itself often
    /// enough that no block stays dirty much longer than a bound, as the page
    /// cache's flusher threads do for ordinary files (`dirty_expire_centisecs`,
    /// 30 s by default, with `dirty_writeback_centisecs`, 5 s, between passes).
    /// Persistent memory mapped with DAX has nothing of the kind: a dirty cache
    /// line stays in the CPU cache, lost in a power failure, until the
    /// application flushes it.
    ///
    /// With a maximum dirty age, a background thread of the mapping runs a
    /// whole-mapping sync every half of that age, so a block written at time t
    /// is durable by t + age / 2 + the length of one sync. With a dirty-byte
    /// limit it also looks eight times per interval at how many bytes are
    /// dirty, and syncs at once when they exceed the limit.
    ///
    /// Background syncs are ordinary syncs: they take the same block locks for
    /// the same time as ``TrackedMapping/sync(file:line:)-8lk1h``. A background
    /// sync's error is kept and thrown by the next foreground sync, even if
    /// that sync's own flushes succeeded (the failed blocks stayed dirty and
    /// it retried them): never lost, as the kernel's errseq does for fsync.
    /// ``TrackedMapping/close()`` stops the background thread first.
    public struct Writeback: Hashable, Sendable {
        /// No background syncs: blocks stay dirty until the application syncs.
        public static let off = Writeback(maximumDirtyAge: nil, dirtyByteLimit: nil)

        /// The bound on a block's dirty age, if any.
        public let maximumDirtyAge: Duration?
        /// Dirty bytes beyond which writeback starts early, if any.
        public let dirtyByteLimit: Int?

        /// Background syncs that keep every block's dirty age under `age`
        /// (plus one sync's length), and, with `dirtyByteLimit`, start early
        /// when more bytes than that are dirty.
        public static func maximumDirtyAge(_ age: Duration, dirtyByteLimit: Int? = nil) -> Writeback {
            Writeback(maximumDirtyAge: age, dirtyByteLimit: dirtyByteLimit)
        }

        /// Background syncs every half of `maximumDirtyAge`.
        var interval: Duration? { maximumDirtyAge.map { $0 / 2 } }

        func validate() throws(PmemTrackError) {
            if let age = maximumDirtyAge, age < .milliseconds(1) {
                throw .invalidWriteback("maximum dirty age \(age) is below 1 ms")
            }
            if let limit = dirtyByteLimit, limit <= 0 {
                throw .invalidWriteback("dirty-byte limit \(limit) is not positive")
            }
            if dirtyByteLimit != nil && maximumDirtyAge == nil {
                throw .invalidWriteback("a dirty-byte limit needs a maximum dirty age")
            }
        }
    }

    /// How to open and map the file. All but ``randomAccess`` mirror
    /// `pmem_map_file`'s flags.
    public struct Options: OptionSet, Hashable, Sendable {
        /// The options as bits of PmemTrack's own (not `pmem_map_file`'s
        /// values, which the mapping derives from them).
        public let rawValue: Int32
        /// Options from their raw bits (see ``rawValue``).
        /// - Parameter rawValue: The bits.
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// Create the file if missing, and set its length to `length`.
        public static let create = Options(rawValue: 1 << 0)
        /// With `.create`: fail if the file exists.
        public static let exclusive = Options(rawValue: 1 << 1)
        /// With `.create`: extend the file without allocating blocks.
        public static let sparse = Options(rawValue: 1 << 2)
        /// `path` names a directory; map a new unnamed file in it that is
        /// removed when unmapped.
        public static let tmpfile = Options(rawValue: 1 << 3)
        /// Tell the kernel that access is random (`madvise(MADV_RANDOM)`),
        /// so that a fault reads in only its own page, without readahead.
        ///
        /// It matters on ordinary files, where a sync's writeback goes
        /// through the page cache. The kernel writes back whole folios, and
        /// readahead builds large ones on file systems that support them
        /// (ext4 since Linux 6.16, XFS since 5.18). Then one store dirties a
        /// whole folio and the sync writes all of it, however few blocks
        /// PmemTrack flushed. With this option the page cache holds single
        /// pages read in by faults, and a sync writes about the pages stored to.
        ///
        /// Measured on ext4 and Linux 6.18 by `Benchmarks/experiments/folio-writeback.c`.
        /// After a scan of a 256 MiB file, a sync of 256 scattered one-byte
        /// stores dirtied 206 MB of folios and took 206 ms. With the advice it
        /// dirtied 1.06 MB and took 6.2 ms. The cost is on reads: a cold
        /// sequential scan of 256 MiB took 1.74 s instead of 62 ms. Pages
        /// already in the page cache keep their folio size. Use the option
        /// for random-access data such as hash tables, and leave it off for
        /// data read in order.
        public static let randomAccess = Options(rawValue: 1 << 4)
    }
}
