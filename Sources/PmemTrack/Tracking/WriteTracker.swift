import SystemPackage

/// How a mapping learns which blocks were written.
///
/// A backend owns the write side of the protocol: it marks a block DIRTY
/// (under the block lock) before the block can be written, and it can make
/// a run read-only again so the next store is seen. The sync engine calls
/// `writeProtect` only while it holds the locks of every block in the run.
protocol WriteTracker: AnyObject, Sendable {
    /// Starts watching: afterwards every store to the mapping is detected.
    func start() throws(PmemTrackError)
    /// Makes `blocks` read-only. Called with their locks held.
    func writeProtect(_ blocks: Range<UInt64>) -> Result<Void, Errno>
    /// Makes `blocks` writable without waiting for a store, for writers that
    /// cannot fault (the kernel, devices). Called with their locks held,
    /// after they were marked DIRTY.
    func makeWritable(_ blocks: Range<UInt64>) -> Result<Void, Errno>
    /// Stops watching, and returns once no fault is using the mapping's
    /// state. Stores to the mapping after this are no longer tracked.
    func stop()
    /// After a sync, the count of DIRTY runs (writable islands, at most) in
    /// the whole mapping, or its change within the range a ranged sync
    /// touched. Backends that split VMAs keep their budget estimate with it.
    func setIslandCount(_ count: Int)
    func adjustIslandCount(by delta: Int)
    /// Stores that were detected and dirtied a block.
    var writeFaults: UInt64 { get }
    /// Times tracking fell back to "whole mapping writable and dirty".
    var degradedEvents: UInt64 { get }
    /// Blocks made dirty by coarsening under VMA pressure, beyond the
    /// blocks actually written.
    var coarsenedBlocks: UInt64 { get }
}
