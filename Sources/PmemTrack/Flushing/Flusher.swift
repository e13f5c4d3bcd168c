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
}

/// Ordinary files (and DAX files mapped without MAP_SYNC): msync(MS_SYNC) of
/// each run. msync waits for the write-back, so each flush is its own drain.
struct MsyncFlusher: Flusher {
    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        System.pmemMsync(run.bytes.baseAddress!, run.bytes.count)
    }

    func drain() -> Result<Void, Errno> { .success(()) }
}
