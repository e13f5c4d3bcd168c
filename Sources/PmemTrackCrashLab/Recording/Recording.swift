import PmemTrack

/// Where a crash point is in the workload.
public enum CrashPointKind: Hashable, Sendable, CustomStringConvertible {
    /// At the call of a sync, before it does anything.
    case beforeSync
    /// Inside a sync: run `run` (counting from 1) is flushed, and neither it
    /// nor any later run is drained.
    case runFlushed(run: Int)
    /// A sync has returned (or thrown: `failed`).
    case afterSync(failed: Bool)
    /// The application's own ``TrackedMapping/crashPoint(_:file:line:)``.
    case marker(String)
    /// The workload has returned.
    case end

    public var description: String {
        switch self {
        case .beforeSync: return "before sync"
        case .runFlushed(let run): return "run \(run) flushed, not drained"
        case .afterSync(let failed): return failed ? "after a failed sync" : "after sync"
        case .marker(let label): return label.isEmpty ? "crash point" : "crash point \"\(label)\""
        case .end: return "end of workload"
        }
    }
}

/// A crash point: what kind, where in the application, and its number in
/// the recording (replay IDs use it).
public struct CrashPoint: Hashable, Sendable, CustomStringConvertible {
    public let number: Int
    public let kind: CrashPointKind
    /// `File.swift:line` of the sync or marker call; empty for ``CrashPointKind/end``.
    public let site: String

    public var description: String { site.isEmpty ? "#\(number) \(kind)" : "#\(number) \(kind) at \(site)" }
}

/// Bytes of the mapping at an offset, as the recorder copied them.
struct Extent: Sendable {
    let offset: Int
    let bytes: [UInt8]
}

/// The blocks of the mapping that differed from the durable image at a
/// moment of the recording, with their bytes then.
struct Snapshot: Sendable {
    let pieces: [Extent]
}

/// One recorded crash point: the images it allows are the durable image after
/// `commits` commits, with any of the snapshot's differing units applied.
struct RecordedPoint: Sendable {
    let point: CrashPoint
    let snapshot: Int
    let commits: Int
    let events: Int
    /// Acknowledgements made since the last sync that returned successfully
    /// start at this event.
    let eventsAtLastCompletedSync: Int
}

/// Everything a workload's recording holds. Immutable once recorded.
struct Recording<Acknowledgement: Hashable & Sendable>: Sendable {
    let length: Int
    let points: [RecordedPoint]
    let snapshots: [Snapshot]
    /// What each successful drain made durable, in order, with the bytes
    /// its runs had at their flush.
    let commits: [Extent]
    let events: [Promises<Acknowledgement>.Event]
    /// Bytes copied while recording: snapshots plus commits.
    var recordedBytes: Int {
        snapshots.reduce(0) { $0 + $1.pieces.reduce(0) { $0 + $1.bytes.count } } + commits.reduce(0) { $0 + $1.bytes.count }
    }
}
