import Benchmark
import BenchmarkBaselines

/// Nanoseconds spent in `body`: one measured window. Setup stays outside it.
@inline(__always)
public func nanoseconds(_ body: () throws -> Void) rethrows -> Int {
    let start = pmt_bench_now_ns()
    try body()
    return Int(pmt_bench_now_ns() - start)
}

/// Runs every contender once, starting with a different one each iteration,
/// so that none always follows the same other one (and inherits its cache,
/// page-table and frequency state).
public func rotating(_ iteration: Int, _ contenders: [() throws -> Void]) throws {
    for offset in contenders.indices {
        try contenders[(iteration + offset) % contenders.count]()
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
