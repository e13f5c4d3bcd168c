import Glibc
import PmemTrack
import Synchronization

/// A crash point as recorded; its call site is formatted only when the
/// recording is read.
private struct RawPoint {
    let kind: CrashPointKind
    let site: CallSite?
    let snapshot: Int
    let commits: Int
    let events: Int
    let eventsAtLastCompletedSync: Int
}

/// The recording's state. Guarded by the recorder's mutex: the observer's
/// methods may run on any thread that syncs. (These types live outside the
/// recorder so that they are not generic: the observer is called through
/// an existential, where every use of a generic type's metadata is a
/// run-time lookup.)
private struct RecorderState {
    var points: [RawPoint] = []
    var snapshots: [Snapshot] = []
    var commits: [Extent] = []
    /// Per syncing thread: the runs flushed since its last drain.
    var staged: [pthread_t: [Extent]] = [:]
    /// Per syncing thread: the sync in progress.
    var syncs: [pthread_t: SyncInProgress] = [:]
    var eventsAtLastCompletedSync = 0
}

private struct SyncInProgress {
    let site: CallSite
    /// Taken after the sync's collect; nil until then, and for a sync
    /// that never reached the engine (bad input, an empty range).
    var snapshot: Int?
    /// Runs flushed so far by this sync.
    var runs = 0
    /// Whether a point was recorded since the last drain: with one drain
    /// for many runs (fdatasync), the crash points between their flushes
    /// would all allow the same images.
    var pointSinceDrain = false
}

/// Watches the recorded mapping and keeps what the explorer needs: the
/// durable image as it evolves (as a log of commits), and at each crash point
/// the blocks that differ from it.
///
/// The durable image follows the sync protocol's own definition: a run is
/// durable once a drain after its flush succeeded, with the bytes it had at
/// the flush. A failed drain makes nothing durable. Only the runs a sync
/// flushed count, even where the drain is an fdatasync that may write back
/// more of the file: what a sync did not promise stays uncertain.
///
/// ## Cost
/// At a crash point outside a sync: the mapping's dirty ranges, and a
/// comparison of each dirty block with the durable image, copying those that
/// differ. A sync's own crash points (before it, between its flushes and
/// drains, after it) share one snapshot, taken after its collect step (the
/// syncing thread stores nothing meanwhile). Each flush copies its run once,
/// and each drain applies it to the durable image.
final class Recorder: DurabilityObserver, @unchecked Sendable {
    let length: Int
    let blockSize: Int
    /// How many promise events the workload has made so far.
    private let promiseEvents: @Sendable () -> Int
    /// The durable image; the recorder's own memory, never the mapping's.
    private let durable: UnsafeMutableRawBufferPointer
    private let state = Mutex(RecorderState())
    /// The recorded mapping, set once it exists (it holds the recorder).
    nonisolated(unsafe) weak var mapping: TrackedMapping?

    init(length: Int, blockSize: Int, promiseEvents: @escaping @Sendable () -> Int) {
        self.length = length
        self.blockSize = blockSize
        self.promiseEvents = promiseEvents
        durable = .allocate(byteCount: length, alignment: 64)
        durable.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { durable.deallocate() }

    var forwardsFlushes: Bool { true }

    func syncWillStart(_ range: Range<Int>, site: CallSite) {
        state.withLock { state in state.syncs[pthread_self()] = SyncInProgress(site: site) }
    }

    /// The recorder asks every sync to collect the whole mapping, so that
    /// the snapshot of its "before sync" point can read the index alone.
    var collectsWholeMapping: Bool { true }

    /// The "before sync" crash point, taken once the sync's collect has put
    /// every written block of the mapping in the index and before anything
    /// is flushed: the same images as at the call.
    func syncDidCollect() {
        let snapshot = takeSnapshot(.index)
        state.withLock { state in
            guard var sync = state.syncs[pthread_self()], sync.snapshot == nil else { return }
            let index = state.snapshots.count
            state.snapshots.append(snapshot)
            sync.snapshot = index
            state.syncs[pthread_self()] = sync
            record(.beforeSync, site: sync.site, snapshot: index, in: &state)
        }
    }

    /// `count` bytes at `source`, with one memcpy.
    static func copy(_ source: UnsafeRawPointer, count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            buffer.baseAddress!.initialize(from: source.assumingMemoryBound(to: UInt8.self), count: count)
            initialized = count
        }
    }

    func didFlush(_ range: Range<Int>, bytes: UnsafeRawBufferPointer) {
        let copy = Extent(offset: range.lowerBound, bytes: Self.copy(bytes.baseAddress!, count: bytes.count))
        let thread = pthread_self()
        state.withLock { state in
            // Staged even outside a sync the recorder saw start: a background
            // writeback pass makes data durable without a crash point.
            state.staged[thread, default: []].append(copy)
            guard state.syncs[thread] != nil else { return }
            state.syncs[thread]!.runs += 1
            guard let snapshot = state.syncs[thread]!.snapshot, !state.syncs[thread]!.pointSinceDrain else { return }
            state.syncs[thread]!.pointSinceDrain = true
            let site = state.syncs[thread]!.site, runs = state.syncs[thread]!.runs
            record(.runFlushed(run: runs), site: site, snapshot: snapshot, in: &state)
        }
    }

    func didDrain(_ ranges: [Range<Int>], succeeded: Bool) {
        let thread = pthread_self()
        state.withLock { state in
            let staged = state.staged.removeValue(forKey: thread) ?? []
            state.syncs[thread]?.pointSinceDrain = false
            guard succeeded else { return }
            for commit in staged {
                commit.bytes.withUnsafeBytes { source in
                    UnsafeMutableRawBufferPointer(rebasing: durable[commit.offset..<(commit.offset + source.count)])
                        .copyMemory(from: source)
                }
                state.commits.append(commit)
            }
        }
    }

    func syncDidEnd(_ range: Range<Int>, site: CallSite, error: PmemTrackError?) {
        state.withLock { state in
            // The snapshot the sync started with: the syncing thread stored
            // nothing since, and the explorer compares it with the durable
            // image after this sync's commits, so the blocks it made durable
            // drop out. (Saves a second look at the dirty blocks per sync.)
            guard let sync = state.syncs.removeValue(forKey: pthread_self()), let snapshot = sync.snapshot else { return }
            record(.afterSync(failed: error != nil), site: site, snapshot: snapshot, in: &state)
            if error == nil { state.eventsAtLastCompletedSync = promiseEvents() }
        }
    }

    func crashPoint(_ label: String, site: CallSite) {
        recordOutsideSync(.marker(label), site: site)
    }

    /// The last crash point, once the workload returned.
    func finish() {
        recordOutsideSync(.end, site: nil)
    }

    private func recordOutsideSync(_ kind: CrashPointKind, site: CallSite?) {
        let snapshot = takeSnapshot()
        state.withLock { state in
            let index = state.snapshots.count
            state.snapshots.append(snapshot)
            record(kind, site: site, snapshot: index, in: &state)
        }
    }

    private func record(_ kind: CrashPointKind, site: CallSite?, snapshot: Int, in state: inout RecorderState) {
        state.points.append(
            RawPoint(
                kind: kind, site: site, snapshot: snapshot, commits: state.commits.count, events: promiseEvents(),
                eventsAtLastCompletedSync: state.eventsAtLastCompletedSync))
    }

    /// How a snapshot finds the dirty blocks.
    private enum DirtySource {
        /// Outside syncs: ``TrackedMapping/dirtyRanges()``.
        case mapping
        /// Inside a sync, after its collect of the whole mapping.
        case index
    }

    private func takeSnapshot(_ source: DirtySource = .mapping) -> Snapshot {
        guard let mapping else { return Snapshot(pieces: []) }
        let bytes = UnsafeRawBufferPointer(mapping.bytes)
        var pieces: [Extent] = []
        // Asked before taking the state lock: with userfaultfd it takes block
        // locks, which a sync that waits for the state lock in didFlush holds.
        let dirty: [Range<Int>]
        switch source {
        case .mapping: dirty = mapping.dirtyRanges()
        case .index: dirty = mapping.indexedDirtyRanges()
        }
        // The durable image changes only in drains, under the state lock.
        state.withLock { _ in
            for range in dirty {
                var offset = range.lowerBound
                while offset < range.upperBound {
                    let end = min(offset + blockSize, range.upperBound)
                    if memcmp(bytes.baseAddress! + offset, durable.baseAddress! + offset, end - offset) != 0 {
                        pieces.append(.init(offset: offset, bytes: Self.copy(bytes.baseAddress! + offset, count: end - offset)))
                    }
                    offset = end
                }
            }
        }
        return Snapshot(pieces: pieces)
    }

    /// The recording so far, with the workload's promises.
    func recording<Acknowledgement>(of promises: Promises<Acknowledgement>) -> Recording<Acknowledgement> {
        let events = promises.events.withLock { $0 }
        return state.withLock { state in
            let points = state.points.enumerated().map { number, raw in
                RecordedPoint(
                    point: CrashPoint(number: number, kind: raw.kind, site: raw.site?.description ?? ""),
                    snapshot: raw.snapshot, commits: raw.commits, events: raw.events,
                    eventsAtLastCompletedSync: raw.eventsAtLastCompletedSync)
            }
            return Recording(
                length: length, points: points, snapshots: state.snapshots, commits: state.commits, events: events)
        }
    }
}
