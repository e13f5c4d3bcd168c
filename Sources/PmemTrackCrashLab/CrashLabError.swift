import PmemTrack

/// Why the crash lab could not record, explore or replay.
public enum CrashLabError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The recording or scratch mapping failed.
    case mapping(PmemTrackError, path: String)
    /// The workload threw; nothing was explored.
    case workloadFailed(String)
    /// ``CrashLab/explore(model:strategy:budget:check:)`` or a replay before
    /// ``CrashLab/record(_:)``.
    case notRecorded
    /// A page-cache sector size must be a power of two from 512 to 4096.
    case invalidSectorSize(Int)
    /// Not a model name (see ``CrashModel/description``).
    case unknownModel(String)
    /// A strategy's parameter is out of range: exhaustive limits from 0 to
    /// 24, bounded k of at least 0, a random count of at least 1.
    case invalidStrategy(String)
    /// A budget must allow at least one image and a positive time.
    case invalidBudget(String)
    /// Not a replay ID that ``CrashStateID/init(_:)`` can read.
    case malformedReplayID(String)
    /// The replay ID names a crash point or units that this recording does
    /// not have: the workload changed since the ID was printed.
    case replayMismatch(String)
    /// The length must be positive.
    case invalidLength(Int)

    public var description: String {
        switch self {
        case .mapping(let error, let path): return "crash lab mapping \(path): \(error)"
        case .workloadFailed(let error): return "the recorded workload threw: \(error)"
        case .notRecorded: return "nothing recorded yet: call record(_:) first"
        case .invalidSectorSize(let size): return "sector size \(size) is not a power of two from 512 to 4096"
        case .unknownModel(let name):
            return "unknown crash model \"\(name)\" (adr, adr-words, eadr, page-cache, page-cache-512, process-crash)"
        case .invalidStrategy(let why): return "invalid strategy: \(why)"
        case .invalidBudget(let why): return "invalid budget: \(why)"
        case .malformedReplayID(let id): return "malformed replay ID \"\(id)\""
        case .replayMismatch(let why): return "replay ID does not match this recording: \(why)"
        case .invalidLength(let length): return "invalid crash lab mapping length \(length)"
        }
    }
}
