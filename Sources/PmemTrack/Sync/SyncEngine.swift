import SystemPackage

/// Flushes the dirty blocks of a block range, following the write-protect /
/// clean protocol of the kernel's DAX writeback (fs/dax.c,
/// `dax_writeback_mapping_range` and `dax_writeback_one`, Linux 4.10+).
///
/// ## The protocol
/// 0. **Collect.** The tracker moves the blocks the kernel saw written into
///    DIRTY, write-protecting their pages again (userfaultfd; nothing to do
///    for mprotect, whose fault path sets DIRTY before a store lands).
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
///    Where a drain is a cache fence, each run gets its own. Where it is an
///    fdatasync (ordinary files, ``FileSyncFlusher``), up to
///    ``Flusher/runsPerDrain`` runs are locked, protected and flushed, one
///    drain covers them all, and only then are they cleaned and unlocked: the
///    order per block is unchanged, and locks are still taken in ascending
///    order. The Promela model checks this variant too (`-DBATCHED`).
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
/// per page plus 0.05 µs per written page), then O(k · log₆₄ N) index work
/// for k dirty blocks of N, one mprotect (mprotect backend) and one flush
/// per run of adjacent dirty blocks, and one drain per run (per
/// ``Flusher/runsPerDrain`` runs on ordinary files).
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

    func sync(_ blocks: Range<UInt64>) throws(PmemTrackError) {
        counters.syncs.add(1)
        guard !blocks.isEmpty else { return }
        try tracker.aroundSync(of: blocks) { () throws(PmemTrackError) in try walk(blocks) }
    }

    /// Steps 0 to 3 over `blocks`.
    private func walk(_ blocks: Range<UInt64>) throws(PmemTrackError) {
        let failuresBefore = failures.sequence
        // Step 0: collect. Blocks the kernel saw written become DIRTY, and
        // their pages read-only again, before the tag: a store that completed
        // before this call is then DIRTY, or was taken by a concurrent
        // collect that has made it DIRTY before ours could return. A failed
        // collect has made DIRTY everything it may have re-protected; this
        // sync then promises nothing. (A no-op for mprotect, whose faults set
        // DIRTY themselves.)
        if case .failure(let error) = tracker.collect(blocks, reprotect: true) { throw error }
        // The index now holds every block written before this call, and no
        // block lock is held: the moment the crash lab looks at them.
        if let observer { observer.syncDidCollect() }

        // Step 1: TOWRITE := DIRTY over the range, lock-free.
        index.copy(.dirty, to: .toWrite, in: blocks)
        pause(.tagged)

        // While this thread holds block locks, no asynchronous signal may
        // run on it: a handler that stores to a block we hold would fault
        // and wait for our lock forever.
        let savedMask = System.blockAsyncSignals()
        defer { System.restoreSignalMask(savedMask) }

        var firstError: PmemTrackError?
        // A flusher whose drain is costly (fdatasync) lets several runs share
        // one: `held` are the runs whose locks we keep, `pending` our
        // write-protected, flushed pieces of them that wait for the drain.
        // Each run stays locked until the drain that covers its pieces, so
        // the order per block is the same as with a drain per run. With a
        // drain per run, each piece completes at once and nothing is
        // collected: a small sync allocates nothing.
        var held: [Range<UInt64>] = []
        var pending: [PendingPiece] = []
        let runsPerDrain = flusher.runsPerDrain
        let batching = runsPerDrain > 1
        func drainPending() {
            if let error = complete(pending), firstError == nil { firstError = error }
            pending.removeAll(keepingCapacity: true)
            for run in held { release(run) }
            held.removeAll(keepingCapacity: true)
        }
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
            while let ours = index.firstRun(with: [.dirty, .toWrite], in: position..<run.upperBound) {
                // PINNED is read under the locks, which pin() also holds while
                // it changes it: an external writer cannot start on a block
                // between this check and the write-protect below.
                let pinned = index.firstRun(with: .pinned, in: ours)
                let piece = pinned.map { $0.lowerBound == ours.lowerBound ? $0 : ours.lowerBound..<$0.lowerBound } ?? ours
                let isPinned = pinned?.lowerBound == ours.lowerBound
                if mutant == .cleanBeforeProtect {
                    if let error = cleanBeforeProtectMutant(piece), firstError == nil { firstError = error }
                } else if batching {
                    pending.append(prepare(piece, pinned: isPinned))
                    collected = true
                } else if let error = complete(CollectionOfOne(prepare(piece, pinned: isPinned))), firstError == nil {
                    firstError = error
                }
                position = piece.upperBound
            }
            if collected {
                held.append(run)
                if pending.count >= runsPerDrain { drainPending() }
            } else {
                // Every piece complete, or nothing of ours here (another
                // sync's blocks, or blocks dirtied after our tag): step 2.6.
                release(run)
            }
            cursor = run.upperBound
        }
        if batching { drainPending() }
        if let firstError { throw firstError }
        // A concurrent sync's failed flush of our range, while we ran, is our
        // error too: never a success that another caller was told is false.
        let start = Int(blocks.lowerBound) << blockShift
        let end = min(Int(blocks.upperBound) << blockShift, length)
        if let error = failures.failure(after: failuresBefore, overlapping: start..<end) { throw error }
    }

    /// Step 2.6: unlock a run whose pieces are all complete. A writer
    /// waiting in the fault handler now dirties its block again and makes
    /// it writable.
    private func release(_ run: Range<UInt64>) {
        if mutant == .cleanUntagged { cleanUntaggedMutant(run) }
        index.unlock(run)
    }

    /// A piece of ours between its flush and the drain that makes it durable.
    struct PendingPiece {
        var blocks: Range<UInt64>
        var run: FlushRun
        var bytes: Range<Int> { run.range }
        /// Whether it was write-protected; only then may it become clean.
        var protected: Bool
        /// The flush's own failure, if it failed before any drain.
        var flushError: Errno?
    }

    /// Steps 2.2 to 2.4 for one run that is ours. Its locks are held.
    /// A pinned run is flushed but never write-protected or cleaned: an
    /// external writer (the kernel, a device) may store to it at any time
    /// without faulting.
    private func prepare(_ run: Range<UInt64>, pinned: Bool) -> PendingPiece {
        // Step 2.2: the run is ours now.
        index.clear(.toWrite, run)

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

        // Step 2.4: flush. Durable only after the drain in `complete`.
        let bytes = flushRun(run)
        let result = mutant == .cleanWithoutFlush ? .success(()) : flusher.flush(bytes)
        counters.flushCalls.add(1)
        var flushError: Errno?
        if case .failure(let errno) = result { flushError = errno }
        return PendingPiece(blocks: run, run: bytes, protected: protected, flushError: flushError)
    }

    /// The bytes of `run`, cut at the mapping's end.
    func flushRun(_ run: Range<UInt64>) -> FlushRun {
        let start = Int(run.lowerBound) << blockShift
        let end = min(Int(run.upperBound) << blockShift, length)
        return FlushRun(offset: start, bytes: UnsafeRawBufferPointer(start: base + start, count: end - start))
    }

    /// Step 2.4's drain and step 2.5 for pieces whose locks are held: one
    /// drain covers them all. Returns the first failure.
    private func complete<Pieces: Collection<PendingPiece>>(_ pieces: Pieces) -> PmemTrackError? {
        guard !pieces.isEmpty else { return nil }
        let drained = flusher.drain(after: pieces.lazy.map(\.run))
        var firstError: PmemTrackError?
        for piece in pieces {
            let outcome: Result<Void, Errno>
            if let errno = piece.flushError { outcome = .failure(errno) } else { outcome = drained }
            switch outcome {
            case .success:
                counters.blocksFlushed.add(UInt64(piece.blocks.count))
                counters.bytesFlushed.add(UInt64(piece.bytes.count))
                pause(.flushed(piece.blocks))
                // Step 2.5: only now, after the drain, is the run clean; and
                // only if it is read-only, since a writable block must stay
                // DIRTY. A concurrent sync may have tagged the run TOWRITE
                // again while we held it. Our flush covers every store it
                // needs (each store before our write-protect is in the
                // flush; each after it waits for our unlock: with mprotect
                // in the fault path, with userfaultfd in the collect that
                // takes it from the kernel, which marks it DIRTY under this
                // lock), so its tag is cleared too. The COLLECT model checks
                // this for userfaultfd; its mutant I publishes unlocked.
                if piece.protected {
                    index.clear(.dirty, piece.blocks)
                    index.clear(.toWrite, piece.blocks)
                }
            case .failure(let errno):
                // Nothing is cleared. Hand TOWRITE back so that a sync waiting
                // on these locks flushes the run itself rather than succeed.
                counters.flushFailures.add(1)
                index.set(.toWrite, piece.blocks)
                failures.record(errno, range: piece.bytes)
                if firstError == nil { firstError = .flushFailed(errno, range: piece.bytes) }
            }
        }
        return firstError
    }
}
