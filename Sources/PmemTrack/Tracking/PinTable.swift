import Synchronization

/// Pin counts per block. Changed only while the blocks' locks are held, and
/// mirrored in the index's PINNED tag, which sync reads under those locks.
/// Cost: O(blocks) per pin or unpin; pins are meant for I/O buffers.
final class PinTable: Sendable {
    private let counts = Mutex<[UInt64: Int]>([:])

    func add(_ blocks: Range<UInt64>) {
        counts.withLock { counts in for block in blocks { counts[block, default: 0] += 1 } }
    }

    func covers(_ blocks: Range<UInt64>) -> Bool {
        counts.withLock { counts in blocks.allSatisfy { counts[$0] != nil } }
    }

    /// Drops one pin from each block; returns the blocks no longer pinned.
    func remove(_ blocks: Range<UInt64>) -> [UInt64] {
        counts.withLock { counts in
            blocks.filter { block in
                let left = counts[block]! - 1
                counts[block] = left == 0 ? nil : left
                return left == 0
            }
        }
    }

    var pinnedBlocks: Int { counts.withLock { $0.count } }
}
