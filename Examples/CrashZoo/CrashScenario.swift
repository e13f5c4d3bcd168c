import ExampleWorkloads
import PmemTrack
import PmemTrackCrashLab

/// The examples' own crash tests: a workload on the write-ahead log or the
/// key-value store, with the promises it makes, and the recovery check that
/// holds them to it. `pmemtrack crash wal|kv` runs these.
public enum CrashScenario: String, CaseIterable, Sendable {
    case wal, kv

    public var length: Int { 1 << 20 }

    public var workload: (TrackedMapping, Promises<UInt64>) throws -> Void {
        switch self {
        case .wal: WriteAheadLogScenario.workload(records: 40)
        case .kv: KeyValueStoreScenario.workload(_:_:)
        }
    }

    public func check(_ image: CrashImage<UInt64>) throws {
        switch self {
        case .wal: try WriteAheadLogScenario.check(image)
        case .kv: try KeyValueStoreScenario.check(image)
        }
    }
}

/// Appends and commits records one at a time, with a truncation half-way;
/// recovery must keep every acknowledged record, invent none, and return
/// each with the bytes appended. Acknowledgements are LSNs.
public enum WriteAheadLogScenario {
    public static func payload(_ lsn: UInt64) -> [UInt8] {
        Array("record \(lsn) ".utf8) + Array(repeating: UInt8(truncatingIfNeeded: lsn), count: Int(lsn % 90))
    }

    public static func workload(records: Int) -> (TrackedMapping, Promises<UInt64>) throws -> Void {
        { mapping, promises in
            let log = try WriteAheadLog(mapping: mapping)
            for _ in 0..<records {
                let lsn = try log.append(payload(log.nextLSN))
                promises.begin(lsn)
                try log.commit()
                promises.acknowledge(lsn)
                if lsn == UInt64(records / 2) { try log.truncate(before: lsn - 2) }
            }
        }
    }

    public static func check(_ image: CrashImage<UInt64>) throws {
        let log = try WriteAheadLog(mapping: image.mapping)
        let promised = Set(image.acknowledged).union(image.inFlight)
        for lsn in image.acknowledged where lsn >= log.firstLSN {
            try image.require(lsn < log.nextLSN, "acknowledged record \(lsn) lost")
        }
        try log.forEachRecord { lsn, bytes in
            try image.require(promised.contains(lsn), "record \(lsn) that nobody appended")
            try image.require(Array(bytes) == payload(lsn), "record \(lsn) holds other bytes")
        }
    }
}

/// Puts keys in rounds, committing every 8 puts; later rounds overwrite
/// earlier values. Acknowledgements are `key << 32 | version`.
///
/// The store's documented behaviour is the oracle: a committed value
/// survives unless an update of the same key was in flight, which may tear
/// the slot (``KeyValueStore/get(_:)`` then returns nil) or land whole.
public enum KeyValueStoreScenario {
    static func value(key: UInt64, version: UInt64) -> [UInt8] {
        Array("k\(key) v\(version)".utf8) + Array(repeating: UInt8(truncatingIfNeeded: key &+ version), count: Int((key + version) % 30))
    }

    public static func workload(_ mapping: TrackedMapping, _ promises: Promises<UInt64>) throws {
        let store = try KeyValueStore(mapping: mapping)
        var pending: [UInt64] = []
        for version in UInt64(1)...3 {
            for key in UInt64(1)...24 where (key + version) % 3 != 0 {
                try store.put(key, value(key: key, version: version))
                promises.begin(key << 32 | version)
                pending.append(key << 32 | version)
                if pending.count == 8 {
                    try store.commit()
                    pending.forEach(promises.acknowledge)
                    pending.removeAll()
                }
            }
        }
        try store.commit()
        pending.forEach(promises.acknowledge)
    }

    public static func check(_ image: CrashImage<UInt64>) throws {
        let store = try KeyValueStore(mapping: image.mapping)
        var acknowledged: [UInt64: UInt64] = [:]
        for ack in image.acknowledged { acknowledged[ack >> 32] = max(acknowledged[ack >> 32] ?? 0, ack & 0xFFFF_FFFF) }
        var inFlight: [UInt64: Set<UInt64>] = [:]
        for ack in image.inFlight { inFlight[ack >> 32, default: []].insert(ack & 0xFFFF_FFFF) }
        for key in UInt64(1)...24 {
            let found = store.get(key)
            let allowed = Set([acknowledged[key]].compactMap { $0 }).union(inFlight[key] ?? [])
            if let found {
                try image.require(
                    allowed.contains { value(key: key, version: $0) == found }, "key \(key) holds a value nobody put")
            } else if let version = acknowledged[key] {
                try image.require(inFlight[key] != nil, "acknowledged key \(key) version \(version) lost")
            }
        }
    }
}
