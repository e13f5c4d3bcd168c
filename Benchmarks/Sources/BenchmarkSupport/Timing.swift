import BenchmarkBaselines

/// Nanoseconds spent in `body`: one measured window. Setup stays outside it.
@inline(__always)
public func nanoseconds(_ body: () throws -> Void) rethrows -> Int {
    let start = pmt_bench_now_ns()
    try body()
    return Int(pmt_bench_now_ns() - start)
}

/// Runs every contender once, starting with a different one each iteration,
/// so that each goes first equally often: none always inherits the cache,
/// TLB and frequency state the same other one leaves. Suites compare two
/// contenders at a time, where this makes their predecessors alike.
public func rotating(_ iteration: Int, _ contenders: [() throws -> Void]) throws {
    for offset in contenders.indices {
        try contenders[(iteration + offset) % contenders.count]()
    }
}
