/// What one sync did, counted in locals while it runs and added to the
/// mapping's shared ``SyncCounters`` once, when it ends.
struct SyncTally {
    var flushCalls: UInt64 = 0
    var blocksFlushed: UInt64 = 0
    var bytesFlushed: UInt64 = 0
    var flushFailures: UInt64 = 0

    func add(to counters: SyncCounters) {
        if flushCalls != 0 { counters.flushCalls.add(flushCalls) }
        if blocksFlushed != 0 { counters.blocksFlushed.add(blocksFlushed) }
        if bytesFlushed != 0 { counters.bytesFlushed.add(bytesFlushed) }
        if flushFailures != 0 { counters.flushFailures.add(flushFailures) }
    }
}
