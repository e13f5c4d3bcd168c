import ArgumentParser
import ExampleWorkloads
import PmemTrack
import PmemTrackCrashLab   // SplitMix64, so that runs can be repeated

/// The example workloads the tool runs, each driving one of the examples in
/// `Examples/` the way an application would.
enum WorkloadKind: String, ExpressibleByArgument, CaseIterable {
    /// Records of 64 to 256 bytes appended to a write-ahead log, a group
    /// commit every N records; truncated and rewound when full.
    case wal
    /// Random updates of a hash table with 48-byte values, a commit every N.
    case kv
    /// Random 4 KiB writes, fio style, a sync every N.
    case random

    var summary: String {
        switch self {
        case .wal: return "write-ahead log: 64-256 byte records, group commit"
        case .kv: return "hash table: random updates of 48-byte values"
        case .random: return "random 4 KiB writes"
        }
    }

    /// Whether the workload reads and writes its file at random: the hash
    /// table does; the log and the random writer write pages without reading
    /// them first. Such a workload maps with `.randomAccess` by default.
    var accessesAtRandom: Bool { self == .kv }

    var defaultOperations: Int {
        switch self {
        // Sized to finish in a few seconds on an ordinary file, where each
        // sync ends in an fdatasync (the kv table with random access, see
        // accessesAtRandom).
        case .wal: return 100_000
        case .kv: return 51_200
        case .random: return 10_000
        }
    }

    var defaultSyncEvery: Int {
        switch self {
        case .wal: return 16
        case .kv: return 256
        case .random: return 32
        }
    }

    /// Makes the driver for this workload over `mapping`.
    func driver(on mapping: TrackedMapping, seed: UInt64) throws -> any WorkloadDriver {
        switch self {
        case .wal: return try LogDriver(mapping: mapping, seed: seed)
        case .kv: return try TableDriver(mapping: mapping, seed: seed)
        case .random: return RandomDriver(mapping: mapping, seed: seed)
        }
    }
}

/// One workload: an operation, and the sync that makes operations durable.
protocol WorkloadDriver {
    mutating func operate() throws
    mutating func sync() throws
}

struct LogDriver: WorkloadDriver {
    let log: WriteAheadLog
    var random: SplitMix64
    var payload = [UInt8](repeating: 0, count: 256)

    init(mapping: TrackedMapping, seed: UInt64) throws {
        log = try WriteAheadLog(mapping: mapping)
        random = SplitMix64(seed: seed)
    }

    mutating func operate() throws {
        let size = Int.random(in: 64...256, using: &random)
        payload[0] = UInt8(truncatingIfNeeded: log.nextLSN)
        do {
            try append(size)
        } catch WriteAheadLog.Error.full {
            // A checkpoint: everything committed so far is dropped and the
            // log rewinds to its start.
            try log.commit()
            try log.truncate(before: log.nextLSN)
            try append(size)
        }
    }

    private func append(_ size: Int) throws {
        try payload.withUnsafeBytes { bytes in _ = try log.append(UnsafeRawBufferPointer(rebasing: bytes[0..<size])) }
    }

    mutating func sync() throws { try log.commit() }
}

struct TableDriver: WorkloadDriver {
    let store: KeyValueStore
    let keys: UInt64
    var random: SplitMix64
    var value = [UInt8](repeating: 0, count: 48)

    init(mapping: TrackedMapping, seed: UInt64) throws {
        store = try KeyValueStore(mapping: mapping)
        keys = UInt64(max(1, store.capacity / 2))
        random = SplitMix64(seed: seed)
    }

    mutating func operate() throws {
        let key = UInt64.random(in: 1...keys, using: &random)
        value.withUnsafeMutableBytes { $0.storeBytes(of: random.next(), as: UInt64.self) }
        try store.put(key, value)
    }

    mutating func sync() throws { try store.commit() }
}

struct RandomDriver: WorkloadDriver {
    var writer: RandomWriter
    var random: SplitMix64

    init(mapping: TrackedMapping, seed: UInt64) {
        writer = RandomWriter(mapping: mapping)
        random = SplitMix64(seed: seed)
    }

    mutating func operate() throws { writer.writeRandomBlock(using: &random) }
    mutating func sync() throws { try writer.mapping.sync() }
}

