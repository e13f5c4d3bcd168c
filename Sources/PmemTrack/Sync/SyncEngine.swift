import SystemPackage

/// Flushes the dirty blocks of a block range, following the write-protect /
/// clean protocol of the kernel's DAX writeback (fs/dax.c,
/// `dax_writeback_mapping_range` and `dax_writeback_one`, Linux 4.10+).
///
/// ## The protocol
/// 0. **Collect.** The tracker moves the blocks the kernel saw written into
///    DIRTY, write-protecting their pages again (userfaultfd; nothing to do
///    for mprotect, whose fault path sets DIRTY before a store lands).
///    When the index holds no DIRTY block in the range, the userfaultfd
///    collect instead hands the reported runs to the sync, which flushes and
///    drains them while the collect lock is still held; they never enter
///    the index, and steps 1 and 2 find nothing (see `writeBack`).
/// 1. **Tag.** Copy DIRTY to TOWRITE over the range. TOWRITE is this sync's
///    flush set: blocks dirtied later are not in it, so a writer that keeps
///    dirtying blocks cannot keep the sync busy.
/// 2. **Walk** the range upward, one run of DIRTY blocks at a time, and for
///    each run:
///    1. lock every block of the run, in ascending order, waiting for any
///       holder: a faulting writer, or another sync working on the block;
///    2. under the locks, re-check: the sub-runs still both TOWRITE and
///       DIRTY are ours; clear their TOWRITE;
///    3. write-protect each sub-run, so a later store faults and waits for
///       our lock (mprotect; with userfaultfd step 0 did it, and a later
///       store is in the kernel's written set for the next collect);
///    4. flush it;
///    5. after the drain that covers it, clear DIRTY;
///    6. unlock the run.
///
///    A drain has a fixed cost: a fence (``CacheLineFlusher``) waits for
///    every flush before it, an fdatasync (``FileSyncFlusher``) commits the
///    file system's journal. So up to ``Flusher/runsPerDrain`` runs (and
///    ``Flusher/bytesPerDrain`` bytes) are locked and protected, then flushed
///    back to back, one drain covers them all, and only then are they
///    cleaned and unlocked: the order per block is unchanged, and locks are
///    still taken in ascending order. The Promela model checks this variant
///    too (`-DBATCHED`). A flusher with one run per drain (msync) completes
///    each run before the next.
/// 3. Return once the walk ends. Every block that was DIRTY in the range
///    when the sync began has then been flushed and drained by this sync or
///    by a concurrent one, successfully; or this sync reports an error.
///
/// ## Why the walk follows DIRTY runs, not TOWRITE runs
/// A concurrent sync that takes a block clears its TOWRITE first and its
/// DIRTY last. Walking DIRTY runs means we also reach blocks another sync
/// has taken but not finished, and wait for their locks. Under the lock,
/// three cases remain: DIRTY clear (the other sync succeeded, covering
/// every store before our tag), TOWRITE set (ours, or handed back by a
/// failed sync: we flush it), or DIRTY without TOWRITE (re-dirtied after
/// the other sync succeeded, or dirtied after our tag: not ours).
///
/// ## Failure
/// A failed flush clears nothing: the run stays DIRTY, and its TOWRITE is
/// set again before unlocking, so a sync waiting on these locks flushes the
/// run itself instead of taking it as done. The error goes to this caller;
/// the walk continues so that as much as possible becomes durable. Every
/// other sync in flight over those bytes reports the error as well
/// (``FailureLog``), even if its own retry succeeded.
///
/// ## Cost
/// The collect (userfaultfd: one PAGEMAP_SCAN walk of the range, about 1 ns
/// per page plus 0.05 µs per written page); with the write-back, one
/// search of the index, and one flush per reported run and one drain per
/// ``Flusher/runsPerDrain`` runs. Otherwise O(k · log₆₄ N) index work
/// for k dirty blocks of N, one mprotect (mprotect backend) and one flush
/// per run of adjacent dirty blocks, and one drain per
/// ``Flusher/runsPerDrain`` runs.
struct SyncEngine: Sendable {
    let index: DirtyIndex
    let tracker: any WriteTracker
    let flusher: any Flusher
    /// The mapping's start. Read-only use; the mapping outlives the engine's
    /// calls because close waits for them.
    nonisolated(unsafe) let base: UnsafeMutableRawPointer
    let length: Int
    let blockShift: Int
    let counters: SyncCounters
    let failures: FailureLog
    let hook: SyncHook?
    /// Test-only broken variant; nil in every real mapping.
    let mutant: ProtocolMutant?
    /// The crash lab's recorder; nil in every production mapping.
    var observer: (any DurabilityObserver)? = nil

    @inline(__always)
    func pause(_ step: SyncStep) {
        if let hook { hook.pause(step) }
    }

    /// Syncs `blocks` and reports what it did (without ``SyncReport/duration``,
    /// which the caller measures).
    func sync(_ blocks: Range<UInt64>) throws(PmemTrackError) -> SyncReport {
        counters.syncs.add(1)
        guard !blocks.isEmpty else { return SyncReport() }
        // What this sync did, added to the mapping's counters once at the
        // end, failed or not: an atomic add per run would cost more than the
        // run's index work, and on x86 a locked instruction right after a
        // cache-line flush waits for the flush to complete, as a fence does.
        var tally = SyncTally()
        defer { tally.add(to: counters) }
        try tracker.aroundSync(of: blocks) { () throws(PmemTrackError) in try walk(blocks, &tally) }
        return tally.report
    }

    /// Steps 0 to 3 over `blocks`.
    private func walk(_ blocks: Range<UInt64>, _ tally: inout SyncTally) throws(PmemTrackError) {
        let failuresBefore = failures.sequence
        // Step 0: collect. Blocks the kernel saw written become DIRTY, and
        // their pages read-only again, before the tag: a store that completed
        // before this call is then DIRTY, or was taken by a concurrent
        // collect that has made it DIRTY before ours could return. A failed
        // collect has made DIRTY everything it may have re-protected; this
        // sync then promises nothing. (A no-op for mprotect, whose faults set
        // DIRTY themselves.)
        let collected = observer?.collectsWholeMapping == true ? 0..<index.blockCount : blocks
        if writesBackInCollect {
            // Step 0 with write-back (see `writeBack`). A failed write-back
            // has published DIRTY what it could not make durable, and the
            // index held nothing else DIRTY in the range: the walk would
            // only retry what just failed, so the sync reports the failure.
            var writeBackError: PmemTrackError?
            let result = tracker.collect(collected) { reported in
                writeBack(reported, of: blocks, &tally, &writeBackError)
            }
            if case .failure(let error) = result { throw error }
            if let writeBackError { throw writeBackError }
        } else if case .failure(let error) = tracker.collect(collected, reprotect: true) {
            throw error
        }
        // The index now holds every block written before this call, and no
        // block lock is held: the moment the crash lab looks at them.
        if let observer { observer.syncDidCollect() }

        // Step 1: TOWRITE := DIRTY over the range, lock-free.
        tally.tagged = index.copy(.dirty, to: .toWrite, in: blocks)
        tally.lap(.collecting)
        pause(.tagged)

        // While this thread holds block locks, no asynchronous signal may
        // run on it: a handler that stores to a block we hold would fault
        // and wait for our lock forever.
        let savedMask = System.blockAsyncSignals()
        defer { System.restoreSignalMask(savedMask) }

        var firstError: PmemTrackError?
        // A flusher whose drain has a fixed cost (a fence, an fdatasync)
        // lets several runs share one: `held` are the runs whose locks we
        // keep, `pending` our write-protected pieces of them. Once the batch
        // is full they are flushed back to back, one drain covers them all,
        // and only then are they cleaned and unlocked: per block the order
        // is the same as with a drain per run (the model's BATCHED variant).
        // The flushes are issued together because a cache flush followed by
        // anything that orders memory (the next run's lock) waits for the
        // flush to finish; together they overlap, and the one drain waits
        // for all of them. With a drain per run nothing is collected: a
        // small sync allocates nothing.
        var batch = Batch()
        let runsPerDrain = flusher.runsPerDrain
        let bytesPerDrain = flusher.bytesPerDrain
        // A fence costs little alone, so the first run completes by itself
        // and batching starts with the second: a one-run sync, the commonest
        // small sync, allocates nothing. (An fdatasync is not cheap alone:
        // that flusher batches from the first run.)
        var batching = runsPerDrain > 1 && !flusher.drainsFirstRunAlone
        var cursor = blocks.lowerBound
        while let run = index.firstRun(with: .dirty, in: cursor..<blocks.upperBound) {
            // Step 2.1: lock the run. Ascending order, and no lock below
            // one we hold: the fault path holds one lock at a time (or one
            // ascending range), so nobody can wait on us while we wait on
            // them, however many runs we hold.
            index.lock(run)
            pause(.locked(run))
            var collected = false
            var position = run.lowerBound
            while position < run.upperBound,
                  let ours = index.firstRun(with: [.dirty, .toWrite], in: position..<run.upperBound) {
                // PINNED is read under the locks, which pin() also holds while
                // it changes it: an external writer cannot start on a block
                // between this check and the write-protect below.
                let pinned = index.firstRun(with: .pinned, in: ours)
                let piece = pinned.map { $0.lowerBound == ours.lowerBound ? $0 : ours.lowerBound..<$0.lowerBound } ?? ours
                let isPinned = pinned?.lowerBound == ours.lowerBound
                if mutant == .cleanBeforeProtect {
                    if let error = cleanBeforeProtectMutant(piece), firstError == nil { firstError = error }
                } else if batching {
                    let claimed = claim(piece, pinned: isPinned, &tally)
                    batch.bytes += claimed.bytes.count
                    batch.pending.append(claimed)
                    collected = true
                } else {
                    var claimed = claim(piece, pinned: isPinned, &tally)
                    tally.lap(.writeProtecting)
                    flush(&claimed, &tally)
                    tally.lap(.flushing)
                    if let error = complete(CollectionOfOne(claimed), &tally, handingBack: handBackToWrite), firstError == nil {
                        firstError = error
                    }
                    tally.lap(.draining)
                }
                position = piece.upperBound
            }
            if collected {
                batch.held.append(run)
                if batch.pending.count >= runsPerDrain || batch.bytes >= bytesPerDrain {
                    if let error = drain(&batch, &tally), firstError == nil { firstError = error }
                }
            } else {
                // Every piece complete, or nothing of ours here (another
                // sync's blocks, or blocks dirtied after our tag): step 2.6.
                release(run)
            }
            cursor = run.upperBound
            batching = runsPerDrain > 1
        }
        if batching && !batch.pending.isEmpty {
            if let error = drain(&batch, &tally), firstError == nil { firstError = error }
        } else {
            tally.lap(.writeProtecting)
        }
        if let firstError { throw firstError }
        // A concurrent sync's failed flush of our range, while we ran, is our
        // error too: never a success that another caller was told is false.
        let start = Int(blocks.lowerBound) << blockShift
        let end = min(Int(blocks.upperBound) << blockShift, length)
        if let error = failures.failure(after: failuresBefore, overlapping: start..<end) { throw error }
    }

    /// Whether step 0 may write back what it collects. Not for the crash
    /// lab's recorder, which reads the sync's dirty blocks from the index
    /// after the collect; not for tests that drive the walk; not for the
    /// mutants of the publish, which only the walk reaches.
    private var writesBackInCollect: Bool {
        observer == nil && hook?.walksEverything != true && mutant?.breaksThePublish != true
    }

    /// Step 0's write-back (userfaultfd), run under the collect lock with
    /// the runs the scan reported and re-protected. If the index holds no
    /// DIRTY block in the sync's range, nothing but these runs needs
    /// flushing, and no other thread can reach them: the kernel resolves
    /// stores without waiting for anyone, a later store is in the kernel's
    /// written set again, and every other collect waits for the collect
    /// lock. So they are flushed and drained here, batched as the walk
    /// batches them, and never enter the index: none of the walk's tag,
    /// lock, claim, clean and unlock per run. The collect lock is what makes
    /// this safe: a concurrent sync's scan, which finds these pages clean,
    /// runs only after they are durable (or DIRTY, if their flush failed).
    /// The COLLECT model's WRITEBACK variant checks this; its mutant J,
    /// and ``ProtocolMutant/writeBackAfterRelease``, write back after
    /// releasing the lock.
    ///
    /// With DIRTY blocks in the range (a pin, a failed flush, a fork) the
    /// runs are published instead and the walk flushes everything: a
    /// reported block might also be one of them, and would be flushed twice.
    ///
    /// Returns the runs that are not durable, to be published DIRTY; their
    /// failure goes to `firstError` and the ``FailureLog``.
    private func writeBack(
        _ reported: [Range<UInt64>], of blocks: Range<UInt64>, _ tally: inout SyncTally,
        _ firstError: inout PmemTrackError?
    ) -> [Range<UInt64>] {
        guard index.firstRun(with: .dirty, in: blocks) == nil else { return reported }
        tally.lap(.collecting)
        var unflushed: [Range<UInt64>] = []
        var batch: [PendingPiece] = []
        var bytes = 0
        // As in the walk: a first run alone where a drain alone is cheap.
        var runsPerDrain = flusher.drainsFirstRunAlone ? 1 : flusher.runsPerDrain
        func drainBatch() {
            tally.lap(.flushing)
            // A run that is not durable goes back to the tracker, to be
            // published DIRTY: the kernel's written bit is gone, so DIRTY is
            // now the only record of its stores.
            if let error = complete(batch, &tally, handingBack: { unflushed.append($0) }), firstError == nil {
                firstError = error
            }
            tally.lap(.draining)
            batch.removeAll(keepingCapacity: true)
            bytes = 0
            runsPerDrain = flusher.runsPerDrain
        }
        for run in reported {
            // Not in the index, so never cleaned: `cleans` is false.
            var piece = PendingPiece(blocks: run, run: flushRun(run), cleans: false, flushError: nil)
            flush(&piece, &tally)
            batch.append(piece)
            bytes += piece.bytes.count
            if batch.count >= runsPerDrain || bytes >= flusher.bytesPerDrain { drainBatch() }
        }
        if !batch.isEmpty { drainBatch() }
        return unflushed
    }

    /// Step 2.6: unlock a run whose pieces are all complete. A writer
    /// waiting in the fault handler now dirties its block again and makes
    /// it writable.
    private func release(_ run: Range<UInt64>) {
        if mutant == .cleanUntagged { cleanUntaggedMutant(run) }
        index.unlock(run)
    }

    /// The runs whose locks a batching sync holds, and its claimed pieces of
    /// them that wait for their flushes and the drain.
    struct Batch {
        var held: [Range<UInt64>] = []
        var pending: [PendingPiece] = []
        var bytes = 0
    }

    /// Steps 2.4 to 2.6 for a batch: its pieces flushed back to back, one
    /// drain for all of them, then cleaned and unlocked. Returns the first
    /// failure.
    private func drain(_ batch: inout Batch, _ tally: inout SyncTally) -> PmemTrackError? {
        tally.lap(.writeProtecting)
        for i in batch.pending.indices { flush(&batch.pending[i], &tally) }
        tally.lap(.flushing)
        let error = complete(batch.pending, &tally, handingBack: handBackToWrite)
        batch.pending.removeAll(keepingCapacity: true)
        batch.bytes = 0
        for run in batch.held { release(run) }
        batch.held.removeAll(keepingCapacity: true)
        tally.lap(.draining)
        return error
    }

    /// A piece of ours between its flush and the drain that makes it durable.
    struct PendingPiece {
        var blocks: Range<UInt64>
        var run: FlushRun
        var bytes: Range<Int> { run.range }
        /// Whether the drain makes it clean: only a piece of the walk that it
        /// write-protected under its locks (not a pinned one, not one whose
        /// protect failed, not one of step 0's write-back, which is not in
        /// the index).
        var cleans: Bool
        /// The flush's own failure, if it failed before any drain.
        var flushError: Errno?
    }

    /// Steps 2.2 and 2.3 for one run that is ours. Its locks are held.
    /// A pinned run is flushed but never write-protected or cleaned: an
    /// external writer (the kernel, a device) may store to it at any time
    /// without faulting.
    private func claim(_ run: Range<UInt64>, pinned: Bool, _ tally: inout SyncTally) -> PendingPiece {
        // Step 2.2: the run is ours now.
        index.clear(.toWrite, run)
        tally.claimed += UInt64(run.count)

        // Step 2.3: write-protect before flushing. A store that lands after
        // this faults and waits for our lock, so it is either in the flush
        // below or re-dirties the block after we unlock; none is lost.
        let protected: Bool
        switch pinned ? nil : tracker.writeProtect(run) {
        case .success?: protected = true
        case nil: protected = false
        case .failure?:
            // Typically ENOMEM at the VMA limit. The run stays writable, so
            // it must stay DIRTY; flushing it still makes it durable now.
            // (The tracker counts it.)
            protected = false
        }

        pause(.protected(run))
        return PendingPiece(blocks: run, run: flushRun(run), cleans: protected, flushError: nil)
    }

    /// Step 2.4 for a claimed piece, its locks still held (or a piece of
    /// step 0's write-back, under the collect lock): start its write-back.
    /// Durable only after the drain in `complete`.
    private func flush(_ piece: inout PendingPiece, _ tally: inout SyncTally) {
        tally.flushCalls += 1
        if case .failure(let errno) = flushResult(piece.run) { piece.flushError = errno }
    }

    /// The flusher's flush of `run`; the mutant only says it flushed.
    private func flushResult(_ run: FlushRun) -> Result<Void, Errno> {
        mutant == .cleanWithoutFlush ? .success(()) : flusher.flush(run)
    }

    /// A walk's piece whose flush failed, its locks still held: TOWRITE is
    /// set again, so that a sync waiting on these locks flushes the run
    /// itself rather than succeed.
    private func handBackToWrite(_ blocks: Range<UInt64>) {
        index.set(.toWrite, blocks)
    }

    /// The bytes of `run`, cut at the mapping's end.
    func flushRun(_ run: Range<UInt64>) -> FlushRun {
        let start = Int(run.lowerBound) << blockShift
        let end = min(Int(run.upperBound) << blockShift, length)
        return FlushRun(offset: start, bytes: UnsafeRawBufferPointer(start: base + start, count: end - start))
    }

    /// Step 2.4's drain and step 2.5 for pieces whose locks are held (or,
    /// for step 0's write-back, under the collect lock): one drain covers
    /// them all. Returns the first failure.
    ///
    /// A piece that is not durable goes to `handBack`: the walk's pieces get
    /// their TOWRITE back (``handBackToWrite(_:)``); step 0's write-back
    /// returns them to the tracker, to be published DIRTY.
    private func complete<Pieces: Collection<PendingPiece>>(
        _ pieces: Pieces, _ tally: inout SyncTally, handingBack handBack: (Range<UInt64>) -> Void
    ) -> PmemTrackError? {
        guard !pieces.isEmpty else { return nil }
        let drained = flusher.drain(after: pieces.lazy.map(\.run))
        tally.drains += 1
        let drainSucceeded = (try? drained.get()) != nil
        var firstError: PmemTrackError?
        var cleaned = 0
        for piece in pieces {
            let outcome: Result<Void, Errno>
            if let errno = piece.flushError { outcome = .failure(errno) } else { outcome = drained }
            switch outcome {
            case .success:
                tally.blocksFlushed += UInt64(piece.blocks.count)
                tally.bytesFlushed += UInt64(piece.bytes.count)
                pause(.flushed(piece.blocks))
                if piece.cleans { cleaned += 1 }
            case .failure(let errno):
                // Nothing is cleared.
                tally.flushFailures += 1
                handBack(piece.blocks)
                failures.record(errno, range: piece.bytes)
                if firstError == nil { firstError = .flushFailed(errno, range: piece.bytes) }
            }
        }
        guard cleaned > 0 else { return firstError }
        // Step 2.5: only now, after the drain, is a piece clean; and only if
        // it is read-only, since a writable block must stay DIRTY. A
        // concurrent sync may have tagged the piece TOWRITE again while we
        // held it. Our flush covers every store it needs (each store before
        // our write-protect is in the flush; each after it waits for our
        // unlock: with mprotect in the fault path, with userfaultfd in the
        // collect that takes it from the kernel, which marks it DIRTY under
        // this lock), so its tag is cleared too. The COLLECT model checks
        // this for userfaultfd; its mutant I publishes unlocked. The clears
        // share one summary-clear window: nothing in it waits.
        index.clearingBatch { clear in
            for piece in pieces where piece.cleans && piece.flushError == nil && drainSucceeded {
                clear(.dirty, piece.blocks)
                clear(.toWrite, piece.blocks)
            }
        }
        return firstError
    }
}
