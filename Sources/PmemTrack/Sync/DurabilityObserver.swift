import SystemPackage

/// Where in the application a sync or a crash point was called: the
/// `#fileID` and `#line` of the call. Kept as given, so that a sync pays
/// nothing for it; ``description`` formats it.
package struct CallSite: Sendable, CustomStringConvertible {
    package let file: StaticString
    package let line: UInt

    package init(file: StaticString, line: UInt) {
        self.file = file
        self.line = line
    }

    package var description: String { "\(file):\(line)" }
}

/// Sees what a mapping makes durable, and when: the crash lab's recorder,
/// and its scratch mappings, which must know every range a recovery wrote.
/// Package-only: production mappings have none, and each call site then
/// costs one branch on a nil optional.
///
/// ## When each method runs
/// - ``syncWillStart(_:site:)`` and ``syncDidEnd(_:site:error:)`` run on
///   the syncing thread outside the sync engine: no block lock is held, and
///   the observer may call the mapping's read-only API (``TrackedMapping/dirtyRanges()``).
/// - ``didFlush(_:bytes:)`` and ``didDrain(_:succeeded:)`` run inside the
///   sync engine, with the runs' block locks held and asynchronous signals
///   blocked. They must not call the mapping, and must not block on anything
///   a writer to the mapping could hold.
/// - ``crashPoint(_:site:)`` runs where the application calls
///   ``TrackedMapping/crashPoint(_:file:line:)``.
package protocol DurabilityObserver: AnyObject, Sendable {
    /// Whether the mapping's own flusher still runs. A scratch mapping whose
    /// contents need not survive anything answers false: flushes and drains
    /// are then only observed, and always succeed.
    var forwardsFlushes: Bool { get }
    /// Whether every sync's collect step covers the whole mapping, not just
    /// the sync's range, so that at ``syncDidCollect()`` the index holds
    /// every block written anywhere before the sync. Collecting more than the
    /// range only marks blocks DIRTY earlier than a later sync would; what
    /// this sync flushes is unchanged. (The recorder wants it: it spares a
    /// second, read-only scan of the mapping per sync.)
    var collectsWholeMapping: Bool { get }
    func syncWillStart(_ range: Range<Int>, site: CallSite)
    /// Inside the sync engine, after its collect step: every block written
    /// before the sync in its range (in the whole mapping, with
    /// ``collectsWholeMapping``) is DIRTY in the index, nothing is flushed yet, and no
    /// block lock is held. The observer may read the index
    /// (``TrackedMapping/indexedDirtyRanges()``), not call anything that
    /// collects.
    func syncDidCollect()
    /// `bytes` are the run's bytes in the mapping at the moment of the flush.
    func didFlush(_ range: Range<Int>, bytes: UnsafeRawBufferPointer)
    /// A drain after the flushes of `ranges`; they are durable only if it
    /// succeeded.
    func didDrain(_ ranges: [Range<Int>], succeeded: Bool)
    func syncDidEnd(_ range: Range<Int>, site: CallSite, error: PmemTrackError?)
    func crashPoint(_ label: String, site: CallSite)
}

/// A flusher that tells an observer about each flush and drain of the
/// flusher it wraps (or, if the observer says so, replaces).
struct ObservedFlusher: Flusher {
    let underlying: any Flusher
    let observer: any DurabilityObserver

    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        observer.didFlush(run.range, bytes: run.bytes)
        return observer.forwardsFlushes ? underlying.flush(run) : .success(())
    }

    func drain() -> Result<Void, Errno> {
        let result = observer.forwardsFlushes ? underlying.drain() : .success(())
        observer.didDrain([], succeeded: (try? result.get()) != nil)
        return result
    }

    func drain<Runs: Collection<FlushRun>>(after runs: Runs) -> Result<Void, Errno> {
        let result = observer.forwardsFlushes ? underlying.drain(after: runs) : .success(())
        observer.didDrain(runs.map(\.range), succeeded: (try? result.get()) != nil)
        return result
    }

    var runsPerDrain: Int { underlying.runsPerDrain }
    var bytesPerDrain: Int { underlying.bytesPerDrain }
    var drainsFirstRunAlone: Bool { underlying.drainsFirstRunAlone }
}
