import SystemPackage

/// The broken protocol variants of ``ProtocolMutant`` that live in the sync
/// path. Tests select them to show that the oracle and the model catch each
/// one; a real mapping never runs this code.
extension SyncEngine {
    /// (a) With the run's locks held: clear TOWRITE and DIRTY, flush, and
    /// only then write-protect. Stores between the flush and the protect
    /// are in no flush, and the block is clean and read-only afterwards.
    func cleanBeforeProtectMutant(_ run: Range<UInt64>) -> PmemTrackError? {
        index.clear(.toWrite, run)
        index.clear(.dirty, run)
        let (result, bytes) = flushAndDrain(run)
        pause(.flushed(run))
        _ = tracker.writeProtect(run)
        if case .failure(let errno) = result { return .flushFailed(errno, range: bytes) }
        return nil
    }

    /// (c) With the locks of a DIRTY run held, after our own sub-runs are
    /// done: write-protect and clean the blocks that are DIRTY without
    /// TOWRITE (dirtied after this sync began), without flushing them.
    func cleanUntaggedMutant(_ run: Range<UInt64>) {
        index.forEachRun(.dirty, in: run) { dirty in
            _ = tracker.writeProtect(dirty)
            index.clear(.dirty, dirty)
        }
    }

    /// Flushes and drains the bytes of `run` at once, and counts the
    /// outcome; the mutant's own write-back. Returns the result and the
    /// byte range flushed.
    func flushAndDrain(_ run: Range<UInt64>) -> (Result<Void, Errno>, Range<Int>) {
        let bytes = flushRun(run)
        let result = flusher.flush(bytes).flatMap { flusher.drain() }
        counters.flushCalls.add(1)
        switch result {
        case .success:
            counters.blocksFlushed.add(UInt64(run.count))
            counters.bytesFlushed.add(UInt64(bytes.bytes.count))
        case .failure:
            counters.flushFailures.add(1)
        }
        return (result, bytes.range)
    }
}
