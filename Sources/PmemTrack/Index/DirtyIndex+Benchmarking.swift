/// A handle on a bare dirty index, for the Benchmarks package, which measures
/// the cost of index operations per block. Not part of the supported API:
/// import it with `@_spi(Benchmarking) import PmemTrack`.
@_spi(Benchmarking)
public struct DirtyIndexBenchmarkHandle: ~Copyable {
    private let index: DirtyIndex

    /// An index for `blockCount` blocks, all clean.
    public init(blockCount: Int) throws(PmemTrackError) {
        index = try DirtyIndex(blockCount: UInt64(blockCount))
    }

    /// Tags one block DIRTY: what the fault handler does.
    public func setDirty(_ block: Int) {
        index.set(.dirty, UInt64(block)..<UInt64(block + 1))
    }

    /// Clears DIRTY on `blocks`: what a sync does after flushing them.
    public func clearDirty(_ blocks: Range<Int>) {
        index.clear(.dirty, UInt64(blocks.lowerBound)..<UInt64(blocks.upperBound))
    }

    /// Calls `body` with each maximal DIRTY run, ascending: the sync walk.
    public func forEachDirtyRun(_ body: (Range<Int>) -> Void) {
        index.forEachRun(.dirty, in: 0..<index.blockCount) { body(Int($0.lowerBound)..<Int($0.upperBound)) }
    }
}
