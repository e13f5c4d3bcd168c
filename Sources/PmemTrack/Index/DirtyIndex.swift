import CPmemTrack

/// The Swift owner of a C dirty index (`pmt_index`): a radix tree of 64-bit
/// tag bitmaps with DIRTY, TOWRITE and PINNED tags and a lock bit per block.
///
/// ## Cost
/// For N blocks, k of them tagged:
/// - tagging or clearing one block: one atomic RMW on the leaf, plus at most
///   log₆₄ N more when a summary bit changes;
/// - finding the next tagged block: O(log₆₄ N), skipping clean subtrees;
/// - enumerating all tagged runs: O(k · log₆₄ N);
/// - memory: about 1.02 bits per block per tag plus one lock bit, reserved
///   with `MAP_NORESERVE` and committed only where blocks get tagged.
///
/// The C functions are lock-free and async-signal-safe, so the fault handler
/// uses the same index concurrently; this class is therefore `Sendable`.
final class DirtyIndex: @unchecked Sendable {
    enum Tag: UInt32 {
        case dirty = 0
        case toWrite = 1
        case pinned = 2

        var raw: pmt_tag { pmt_tag(rawValue) }
        var mask: UInt32 { 1 << rawValue }
    }

    /// A set of tags, for searches that need blocks carrying all of them.
    struct Tags: OptionSet {
        let rawValue: UInt32
        init(rawValue: UInt32) { self.rawValue = rawValue }
        init(_ tag: Tag) { rawValue = tag.mask }

        static let dirty = Tags(.dirty)
        static let toWrite = Tags(.toWrite)
        static let pinned = Tags(.pinned)
    }

    let raw: OpaquePointer
    let blockCount: UInt64

    init(blockCount: UInt64) throws(PmemTrackError) {
        guard let raw = pmt_index_create(blockCount) else {
            throw .system(System.errno, operation: "pmt_index_create")
        }
        self.raw = raw
        self.blockCount = blockCount
    }

    deinit { pmt_index_destroy(raw) }

    var reservedBytes: Int { pmt_index_reserved_bytes(raw) }
    var residentBytes: Int { pmt_index_resident_bytes(raw) }

    func set(_ tag: Tag, _ blocks: Range<UInt64>) {
        pmt_index_set_range(raw, tag.raw, blocks.lowerBound, UInt64(blocks.count))
    }

    /// Sets `tag` on `blocks`; returns how many of them lacked it.
    @discardableResult
    func setCounting(_ tag: Tag, _ blocks: Range<UInt64>) -> UInt64 {
        pmt_index_set_range_counting(raw, tag.raw, blocks.lowerBound, UInt64(blocks.count))
    }

    func clear(_ tag: Tag, _ blocks: Range<UInt64>) {
        pmt_index_clear_range(raw, tag.raw, blocks.lowerBound, UInt64(blocks.count))
    }

    /// Clears tags on several ranges inside one summary-clear window, for a
    /// sync's clean step: `body` gets a clear function to call. Keep `body`
    /// short: while it runs, other threads' searches scan leaves.
    func clearingBatch(_ body: (_ clear: (Tag, Range<UInt64>) -> Void) -> Void) {
        pmt_index_clear_batch_begin(raw)
        body { tag, blocks in
            pmt_index_clear_range_in_batch(raw, tag.raw, blocks.lowerBound, UInt64(blocks.count))
        }
        pmt_index_clear_batch_end(raw)
    }

    func test(_ tag: Tag, _ block: UInt64) -> Bool {
        pmt_index_test(raw, tag.raw, block)
    }

    /// Sets `to` on every block in `blocks` that has `from`; returns how
    /// many blocks have `from`.
    @discardableResult
    func copy(_ from: Tag, to: Tag, in blocks: Range<UInt64>) -> UInt64 {
        pmt_index_copy_tag(raw, from.raw, to.raw, blocks.lowerBound, UInt64(blocks.count))
    }

    func count(_ tag: Tag, in blocks: Range<UInt64>) -> UInt64 {
        pmt_index_count(raw, tag.raw, blocks.lowerBound, UInt64(blocks.count))
    }

    /// The first run in `blocks`, at or after its start, whose blocks all
    /// carry every tag in `tags`; nil if there is none.
    /// `tags` is an option set, not an array, so that the sync loop's
    /// searches allocate nothing.
    func firstRun(with tags: Tags, in blocks: Range<UInt64>) -> Range<UInt64>? {
        let mask = tags.rawValue
        let start = pmt_index_find_set(raw, mask, blocks.lowerBound, blocks.upperBound)
        guard start < blocks.upperBound else { return nil }
        return start..<pmt_index_find_clear(raw, mask, start, blocks.upperBound)
    }

    /// The last block in `blocks` that carries every tag in `tags`, or nil.
    /// O(log₆₄ N), skipping clean subtrees downwards.
    func lastBlock(with tags: Tags, in blocks: Range<UInt64>) -> UInt64? {
        let found = pmt_index_find_set_last(raw, tags.rawValue, blocks.lowerBound, blocks.upperBound)
        return found < blocks.upperBound ? found : nil
    }

    /// Calls `body` with every maximal run of blocks in `blocks` that carry
    /// `tag`, ascending. O(k · log₆₄ N) for k runs.
    func forEachRun(_ tag: Tag, in blocks: Range<UInt64>, _ body: (Range<UInt64>) -> Void) {
        var cursor = blocks.lowerBound
        while let run = firstRun(with: Tags(tag), in: cursor..<blocks.upperBound) {
            body(run)
            cursor = run.upperBound
        }
    }

    /// Every maximal run of blocks in `blocks` that carry `tag`, ascending.
    func runs(_ tag: Tag, in blocks: Range<UInt64>) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        forEachRun(tag, in: blocks) { result.append($0) }
        return result
    }

    /// The number of maximal runs of `tag` that meet `blocks`.
    func runCount(_ tag: Tag, in blocks: Range<UInt64>) -> Int {
        var count = 0
        forEachRun(tag, in: blocks) { _ in count += 1 }
        return count
    }

    // MARK: Block locks

    /// Takes the locks of `blocks` in ascending order, waiting for holders.
    func lock(_ blocks: Range<UInt64>) {
        pmt_lock_range(raw, blocks.lowerBound, UInt64(blocks.count))
    }

    func unlock(_ blocks: Range<UInt64>) {
        pmt_unlock_range(raw, blocks.lowerBound, UInt64(blocks.count))
    }

    func isLocked(_ block: UInt64) -> Bool { pmt_is_locked(raw, block) }
}
