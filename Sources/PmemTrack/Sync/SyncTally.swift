/// What one sync did, counted in locals while it runs: added to the
/// mapping's shared ``SyncCounters`` once, when it ends, and returned as its
/// ``SyncReport``.
struct SyncTally {
    var flushCalls: UInt64 = 0
    var blocksFlushed: UInt64 = 0
    var bytesFlushed: UInt64 = 0
    var flushFailures: UInt64 = 0
    var drains = 0
    /// Blocks tagged TOWRITE by this sync's tag step: its flush set.
    var tagged: UInt64 = 0
    /// Blocks this sync claimed (cleared TOWRITE on under their locks).
    var claimed: UInt64 = 0
    /// Nanoseconds per phase, and the clock's last reading.
    var collecting: UInt64 = 0
    var writeProtecting: UInt64 = 0
    var flushing: UInt64 = 0
    var draining: UInt64 = 0
    private var last: UInt64

    init() { last = System.monotonicNanoseconds() }

    enum Phase { case collecting, writeProtecting, flushing, draining }

    /// Ends the current phase: the time since the last lap goes to `phase`.
    mutating func lap(_ phase: Phase) {
        let now = System.monotonicNanoseconds()
        let elapsed = now &- last
        last = now
        switch phase {
        case .collecting: collecting &+= elapsed
        case .writeProtecting: writeProtecting &+= elapsed
        case .flushing: flushing &+= elapsed
        case .draining: draining &+= elapsed
        }
    }

    func add(to counters: SyncCounters) {
        if flushCalls != 0 { counters.flushCalls.add(flushCalls) }
        if blocksFlushed != 0 { counters.blocksFlushed.add(blocksFlushed) }
        if bytesFlushed != 0 { counters.bytesFlushed.add(bytesFlushed) }
        if flushFailures != 0 { counters.flushFailures.add(flushFailures) }
    }

    var report: SyncReport {
        var report = SyncReport()
        report.blocks = Int(blocksFlushed)
        report.bytes = Int(bytesFlushed)
        report.runs = Int(flushCalls)
        report.drains = drains
        report.flushedByConcurrentSyncs = Int(tagged > claimed ? tagged - claimed : 0)
        report.collecting = .nanoseconds(Int64(collecting))
        report.writeProtecting = .nanoseconds(Int64(writeProtecting))
        report.flushing = .nanoseconds(Int64(flushing))
        report.draining = .nanoseconds(Int64(draining))
        return report
    }
}
