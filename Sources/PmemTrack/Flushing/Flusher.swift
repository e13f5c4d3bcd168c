import SystemPackage

/// A run of whole blocks to write back: where it is in the mapping, and its
/// bytes. The last block of a mapping may be cut short at the mapping's end.
struct FlushRun: Sendable {
    /// Byte offset of the run in the mapping.
    var offset: Int
    /// The run's bytes in the mapping.
    nonisolated(unsafe) var bytes: UnsafeRawBufferPointer

    var range: Range<Int> { offset..<(offset + bytes.count) }
}

/// The flush step of a sync. The sync engine calls `flush` for each run it
/// has write-protected, then `drain`, and treats the run as durable only if
/// both succeeded.
///
/// Tests substitute a recording flusher here to observe exactly what a sync
/// flushed, and to build an image of what has been persisted.
protocol Flusher: Sendable {
    /// Starts writing `run` back to the persistence domain.
    func flush(_ run: FlushRun) -> Result<Void, Errno>
    /// Returns once every run flushed on this thread is durable.
    func drain() -> Result<Void, Errno>
    /// The drain the sync engine calls, with the runs flushed since the
    /// last one; a flusher may use them to drain less than everything.
    func drain<Runs: Collection<FlushRun>>(after runs: Runs) -> Result<Void, Errno>
    /// How many runs the sync engine may flush, holding their locks, before
    /// one drain. 1 where a drain is cheap (a fence); more where a drain is
    /// a system call that makes the whole file durable.
    var runsPerDrain: Int { get }
    /// How many bytes the sync engine may flush, holding their locks,
    /// before one drain; a run is never split for it.
    var bytesPerDrain: Int { get }
    /// Whether the sync engine completes a sync's first run with a drain of
    /// its own before it starts batching: true where a drain alone is cheap.
    var drainsFirstRunAlone: Bool { get }
}

extension Flusher {
    var runsPerDrain: Int { 1 }
    var bytesPerDrain: Int { .max }
    var drainsFirstRunAlone: Bool { false }
    func drain<Runs: Collection<FlushRun>>(after runs: Runs) -> Result<Void, Errno> { drain() }
}

/// Persistent memory: CPU cache-line writeback of each run, then one fence.
struct CacheLineFlusher: Flusher {
    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        System.pmemFlush(run.bytes.baseAddress!, run.bytes.count)
        return .success(())
    }

    func drain() -> Result<Void, Errno> {
        System.pmemDrain()
        return .success(())
    }

    /// A fence waits for every flush issued before it, so flushes issued
    /// back to back overlap and one fence covers them: measured on this
    /// machine (/dev/shm, PMEM_IS_PMEM_FORCE=1), 4096 spread 4 KiB blocks
    /// took 1.9 ms with a fence per block, 0.75 ms with one per 64 and
    /// 0.73 ms with one in all. 64 runs, or 1 MiB, bound how long a sync
    /// holds the locks of runs that wait for their fence.
    var runsPerDrain: Int { 64 }
    var bytesPerDrain: Int { 1 << 20 }
    var drainsFirstRunAlone: Bool { true }
}

/// Ordinary files (and DAX files mapped without MAP_SYNC): msync(MS_SYNC) of
/// each run. msync waits for the write-back, so each flush is its own drain.
struct MsyncFlusher: Flusher {
    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        System.pmemMsync(run.bytes.baseAddress!, run.bytes.count)
    }

    func drain() -> Result<Void, Errno> { .success(()) }
}

/// Ordinary files with a descriptor: one `fdatasync` makes every flushed run
/// durable. msync(MS_SYNC) is an fsync of its range (mm/msync.c calls
/// vfs_fsync_range once per VMA), and on a journaling file system each one
/// commits the journal and flushes the device cache; a sync of k scattered
/// runs paid that k times. The kernel already knows which page-cache pages
/// are dirty, so one fdatasync writes them back in a single pass and pays
/// the commit once. It may also write pages that other threads dirtied
/// since; they stay DIRTY in the index, so this only makes data durable
/// early, never late.
struct FileSyncFlusher: Flusher {
    let descriptor: Int32

    /// Nothing to do per run: the drain writes the runs back.
    func flush(_ run: FlushRun) -> Result<Void, Errno> { .success(()) }

    func drain() -> Result<Void, Errno> { System.fdatasync(descriptor) }

    /// One run, as a small ranged sync or a log commit has: msync of just
    /// that run, which writes back nothing else of the file. More: one
    /// fdatasync, one journal commit for all of them.
    func drain<Runs: Collection<FlushRun>>(after runs: Runs) -> Result<Void, Errno> {
        if runs.count == 1, let run = runs.first { return System.pmemMsync(run.bytes.baseAddress!, run.bytes.count) }
        return drain()
    }

    /// Bounds how long one sync holds block locks before its drain.
    var runsPerDrain: Int { 4096 }
}
