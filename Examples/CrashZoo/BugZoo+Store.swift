import ExampleWorkloads
import PmemTrack
import PmemTrackCrashLab

/// The zoo's workloads on the key-value store. The buggy and the correct
/// store run the same operations, and the check is the store's recovery.
///
/// - Batches (the flaws of `putAtomically`): three batches that set keys 1
///   and 2 (whose slots are in blocks 4 and 1) to versions 1, 2, 3.
///   Acknowledgements are versions. Both keys must hold the same version,
///   no older than the last acknowledged batch.
/// - Large values: two rounds of 100-byte values for keys 1 and 2, each
///   round committed, in a store with a 16 KiB value area.
///   Acknowledgements are `key * 100 + version`. A key holds a value
///   somebody put, and an acknowledged one unless an update of it was in
///   flight (a torn slot then reads as nil).
struct StoreZoo {
    let bug: KeyValueStore.Flaw

    static let keys: [UInt64] = [1, 2]
    static let largeKeys: [UInt64] = [1, 2]
    static let versions: ClosedRange<UInt64> = 1...3
    static let valueArea = 16 << 10

    var large: Bool { bug == .largeValueSyncedWithPointer }

    static func value(_ key: UInt64, _ version: UInt64) -> [UInt8] { Array("k\(key) v\(version)".utf8) }

    static func largeValue(_ key: UInt64, _ version: UInt64) -> [UInt8] {
        let name = Array("large k\(key) v\(version) ".utf8)
        return name + Array(repeating: 0xB0 | UInt8(key << 2 | version), count: 100 - name.count)
    }

    func open(_ mapping: TrackedMapping, flaw: KeyValueStore.Flaw?) throws -> KeyValueStore {
        try KeyValueStore(mapping: mapping, valueArea: large ? Self.valueArea : 0, flaw: flaw)
    }

    func run(_ mapping: TrackedMapping, _ promises: Promises<UInt64>, flaw: KeyValueStore.Flaw?) throws {
        let store = try open(mapping, flaw: flaw)
        if large {
            for version in Self.versions.prefix(2) {
                for key in Self.largeKeys {
                    try store.put(key, Self.largeValue(key, version))
                    promises.begin(key * 100 + version)
                }
                try store.commit()
                for key in Self.largeKeys { promises.acknowledge(key * 100 + version) }
            }
        } else {
            for version in Self.versions {
                promises.begin(version)
                try store.putAtomically(Self.keys.map { ($0, Self.value($0, version)) })
                promises.acknowledge(version)
            }
        }
    }

    func check(_ image: CrashImage<UInt64>, flaw: KeyValueStore.Flaw?) throws {
        let store = try open(image.mapping, flaw: flaw)
        if large { try checkLargeValues(store, image) } else { try checkBatches(store, image) }
    }

    /// Each key's version: 0 for none, nil for a value no batch put.
    private func checkBatches(_ store: KeyValueStore, _ image: CrashImage<UInt64>) throws {
        let found: [UInt64?] = Self.keys.map { key in
            guard let value = store.get(key) else { return 0 }
            return Self.versions.first { Self.value(key, $0) == value }
        }
        try image.require(!found.contains(nil), "a key holds a value no batch put: \(found)")
        let versions = Set(found.compactMap { $0 })
        try image.require(versions.count == 1, "batch torn: the keys hold versions \(versions.sorted())")
        let version = versions.first!
        let acknowledged = image.acknowledged.max() ?? 0
        try image.require(version >= acknowledged, "acknowledged batch \(acknowledged) lost: version \(version)")
        try image.require(version <= (image.acknowledged + image.inFlight).max() ?? 0, "version \(version) nobody put")
    }

    private func checkLargeValues(_ store: KeyValueStore, _ image: CrashImage<UInt64>) throws {
        for key in Self.largeKeys {
            let acknowledged = image.acknowledged.filter { $0 / 100 == key }.map { $0 % 100 }.max()
            let inFlight = image.inFlight.filter { $0 / 100 == key }.map { $0 % 100 }
            let allowed = inFlight + (acknowledged.map { [$0] } ?? [])
            if let value = store.get(key) {
                try image.require(allowed.contains { Self.largeValue(key, $0) == value }, "key \(key) holds a value nobody put")
            } else {
                try image.require(acknowledged == nil || !inFlight.isEmpty, "acknowledged key \(key) lost")
            }
        }
    }
}
