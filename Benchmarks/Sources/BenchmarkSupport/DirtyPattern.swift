import BenchmarkBaselines

/// Which blocks a benchmark dirties, as block numbers and as byte runs.
public struct DirtyPattern: Sendable {
    /// Ascending block numbers.
    public let blocks: [Int]
    /// The blocks as maximal runs of adjacent blocks, in bytes.
    public let runs: [pmt_bench_run]

    /// `count` blocks spread evenly over `blockCount`: the worst case for a
    /// tracker, every block its own run, far apart in the index.
    public static func spread(_ count: Int, over blockCount: Int, blockSize: Int) -> DirtyPattern {
        let stride = max(1, blockCount / count)
        return DirtyPattern(blocks: (0..<count).map { $0 * stride }, blockSize: blockSize)
    }

    /// `count` adjacent blocks from block 0: one run.
    public static func contiguous(_ count: Int, blockSize: Int) -> DirtyPattern {
        DirtyPattern(blocks: Array(0..<count), blockSize: blockSize)
    }

    init(blocks: [Int], blockSize: Int) {
        self.blocks = blocks
        var runs: [pmt_bench_run] = []
        var start = 0
        while start < blocks.count {
            var end = start + 1
            while end < blocks.count && blocks[end] == blocks[end - 1] + 1 { end += 1 }
            runs.append(pmt_bench_run(offset: blocks[start] * blockSize, length: (end - start) * blockSize))
            start = end
        }
        self.runs = runs
    }
}

/// Stores one byte into each of `blocks`: the first write to a block, which
/// faults when the block is write-protected. Not inlined, so that PmemTrack
/// and the baseline run the same loop.
@inline(never)
public func touch(_ base: UnsafeMutableRawPointer, _ blocks: [Int], blockSize: Int, value: UInt8) {
    for block in blocks {
        base.storeBytes(of: value, toByteOffset: block * blockSize, as: UInt8.self)
    }
}
