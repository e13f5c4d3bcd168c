import ExampleWorkloads
import Glibc
import PmemTrack
import PmemTrackCrashLab

/// Seeded crash-consistency bugs, each beside its correct version: the
/// patterns of the write-ahead log and key-value store examples (a record
/// and its commit mark, a header, a checksummed record, an index pointer),
/// written small enough that each bug is one changed line.
public enum ZooBug: String, CaseIterable, Sendable, CustomStringConvertible {
    case commitInSameWindow = "commit-in-same-window"
    case payloadOutsideRangedSync = "payload-outside-ranged-sync"
    case rangedSyncOneBlockShort = "ranged-sync-one-block-short"
    case commitWordStraddles = "commit-word-straddles"
    case inPlaceMultiWordUpdate = "in-place-multi-word-update"
    case acknowledgeBeforeSync = "acknowledge-before-sync"
    case headerSlotsDoNotAlternate = "header-slots-do-not-alternate"
    case checksumMissesField = "checksum-misses-field"
    case pointerBeforeTarget = "pointer-before-target"
    case recoveryReadsUnsynced = "recovery-reads-unsynced"

    public var description: String { rawValue }

    /// What the bug is, in one line.
    public var summary: String {
        switch self {
        case .commitInSameWindow: "a commit mark made durable in the same sync as the record it commits"
        case .payloadOutsideRangedSync: "a payload left out of the ranged sync that publishes it"
        case .rangedSyncOneBlockShort: "a ranged sync one block short of the payload"
        case .commitWordStraddles: "a 64-bit commit word across an 8-byte (and sector) boundary"
        case .inPlaceMultiWordUpdate: "a two-word update in place, without a log"
        case .acknowledgeBeforeSync: "a write-ahead log that acknowledges a record before its commit returns"
        case .headerSlotsDoNotAlternate: "a checksummed header updated in place instead of in alternating slots"
        case .checksumMissesField: "a checksum that does not cover bytes recovery trusts"
        case .pointerBeforeTarget: "a pointer made durable in the same sync as its target"
        case .recoveryReadsUnsynced: "recovery relying on a word that is never synced"
        }
    }

    /// The models under which the bug can lose or corrupt data.
    public var models: [CrashModel] {
        switch self {
        case .commitInSameWindow: return [.adr, .pageCache(sector: 512)]
        case .payloadOutsideRangedSync, .pointerBeforeTarget:
            return [.adr, .pageCache()]
        case .rangedSyncOneBlockShort, .recoveryReadsUnsynced, .acknowledgeBeforeSync:
            return [.adr, .pageCache()]
        case .commitWordStraddles: return [.adrTornWords, .pageCache(sector: 512)]
        case .inPlaceMultiWordUpdate: return [.adr, .eadr, .pageCache()]
        case .headerSlotsDoNotAlternate: return [.adrTornWords, .pageCache(sector: 512)]
        case .checksumMissesField: return [.adr, .pageCache()]
        }
    }

    /// The workload, buggy or correct, for a 64 KiB mapping of 4 KiB blocks.
    public func workload(buggy: Bool) -> (TrackedMapping, Promises<UInt64>) throws -> Void {
        switch self {
        case .acknowledgeBeforeSync:
            return { mapping, promises in
                let log = try WriteAheadLog(mapping: mapping)
                for _ in 0..<4 {
                    let lsn = try log.append(Array(repeating: 7, count: 40))
                    promises.begin(lsn)
                    if buggy { promises.acknowledge(lsn) }
                    try log.commit()
                    if !buggy { promises.acknowledge(lsn) }
                }
            }
        default:
            return { mapping, promises in try Micro(bug: self, buggy: buggy, mapping: mapping).run(promises) }
        }
    }

    public func check(buggy: Bool, _ image: CrashImage<UInt64>) throws {
        switch self {
        case .acknowledgeBeforeSync:
            let log = try WriteAheadLog(mapping: image.mapping)
            for lsn in image.acknowledged { try image.require(lsn < log.nextLSN, "acknowledged record \(lsn) lost") }
        default:
            try Micro.check(bug: self, buggy: buggy, image)
        }
    }

    /// The mapping length the zoo's workloads use.
    public static let length = 64 << 10
}

/// The small data structures the zoo's bugs live in. Layout: a slot array
/// of 16-byte records `value: UInt64 · commit: UInt64` from offset 0 (one
/// slot per operation, 64 bytes apart), a header at 8192, and payloads from
/// block 4 (offset 16384) on.
public struct Micro {
    let bug: ZooBug
    let buggy: Bool
    let mapping: TrackedMapping
    static let headerOffset = 8192
    static let payloadStart = 16384
    static let magic: UInt64 = 0x5A4F_4F5A_4F4F_5A21
    var bytes: UnsafeMutableRawBufferPointer { mapping.bytes }

    static func value(_ i: UInt64) -> UInt64 { 0x1111_1111_1111_1111 &* (i + 1) }
    /// A payload spans two blocks.
    static let payloadLength = 4160
    static func payloadOffset(_ i: UInt64) -> Int { payloadStart + Int(i) * payloadLength }
    static func pattern(_ i: UInt64, count: Int) -> [UInt8] { Array(repeating: payloadByte(i), count: count) }
    public static func commitOffset(_ i: UInt64) -> Int { 2048 + Int(i) * 64 }
    static func payloadByte(_ i: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: 0x40 + i) }

    func store(_ value: UInt64, at offset: Int) { bytes.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }

    func run(_ promises: Promises<UInt64>) throws {
        for i in UInt64(0)..<3 {
            promises.begin(i)
            try operation(i)
            promises.acknowledge(i)
        }
    }

    /// One acknowledged operation `i`.
    func operation(_ i: UInt64) throws {
        let slot = Int(i) * 64
        switch bug {
        case .commitInSameWindow:
            // A record and its commit mark: the record must be durable first.
            // The mark is in another line and sector of the same page.
            store(Self.value(i), at: slot)
            if !buggy { try mapping.sync(offset: slot, length: 8) }
            store(1, at: Self.commitOffset(i))
            try mapping.sync(offset: 0, length: 4096)
        case .payloadOutsideRangedSync, .rangedSyncOneBlockShort, .pointerBeforeTarget:
            // A payload over two blocks, then a slot pointing at it.
            let payload = Self.payloadOffset(i)
            UnsafeMutableRawBufferPointer(rebasing: bytes[payload..<(payload + Self.payloadLength)]).initializeMemory(as: UInt8.self, repeating: Self.payloadByte(i))
            switch (bug, buggy) {
            case (.payloadOutsideRangedSync, true): break
            case (.rangedSyncOneBlockShort, true): try mapping.sync(offset: payload, length: Self.payloadLength - 4096)
            case (.pointerBeforeTarget, true): break   // synced together with the pointer below
            default: try mapping.sync(offset: payload, length: Self.payloadLength)
            }
            store(UInt64(payload), at: slot)
            if bug == .pointerBeforeTarget && buggy {
                try mapping.sync()
            } else {
                try mapping.sync(offset: slot, length: 8)
            }
        case .commitWordStraddles:
            // A 64-bit commit word; the buggy one starts 4 bytes into a
            // word, and at the end of a sector.
            let offset = buggy ? 508 : 504
            store(Self.value(i), at: offset)
            try mapping.sync(offset: offset, length: 8)
        case .inPlaceMultiWordUpdate:
            // A transfer between two accounts that must sum to 1000. The
            // correct one writes a redo record first (slot area at 4096).
            let a = bytes.load(fromByteOffset: 0, as: UInt64.self)
            let (from, to) = i == 0 ? (UInt64(1000), UInt64(0)) : (a, bytes.load(fromByteOffset: 512, as: UInt64.self))
            let moved: UInt64 = 100
            if !buggy {
                store(from - moved, at: 4096)
                store(to + moved, at: 4096 + 8)
                try mapping.sync(offset: 4096, length: 16)
                store(1, at: 4096 + 16)
                try mapping.sync(offset: 4096 + 16, length: 8)
            }
            store(from - moved, at: 0)
            mapping.crashPoint("between the two accounts")
            store(to + moved, at: 512)
            try mapping.sync(offset: 0, length: 520)
            if !buggy {
                store(0, at: 4096 + 16)
                try mapping.sync(offset: 4096, length: 24)
            }
        case .headerSlotsDoNotAlternate:
            // A header (magic, sequence, value, checksum) across a sector
            // boundary, updated in place or into alternating slots.
            let slotOffset = Self.headerOffset + (buggy ? 0 : Int(i % 2) * 2048) + 488
            store(Self.magic, at: slotOffset)
            store(i + 1, at: slotOffset + 8)
            store(Self.value(i), at: slotOffset + 16)
            store(Self.checksum(i + 1, Self.value(i)), at: slotOffset + 24)
            try mapping.sync(offset: slotOffset, length: 32)
        case .checksumMissesField:
            // A record across a page boundary: length and checksum, then a
            // 100-byte payload whose first 16 bytes share the header's line
            // and page. The buggy checksum covers only those 16 bytes, yet
            // recovery trusts all 100.
            let record = Self.recordOffset(i)
            UnsafeMutableRawBufferPointer(rebasing: bytes[(record + 16)..<(record + 116)]).initializeMemory(as: UInt8.self, repeating: Self.payloadByte(i))
            store(100, at: record)
            store(Self.recordChecksum(covering: buggy ? 16 : 100, of: UnsafeRawBufferPointer(bytes), at: record), at: record + 8)
            try mapping.sync(offset: record, length: 116)
        case .recoveryReadsUnsynced:
            // The value is synced; the buggy version also relies on a
            // second word it never syncs.
            store(Self.value(i), at: slot)
            store(Self.value(i), at: slot + 4096)
            try mapping.sync(offset: slot, length: 8)
            if !buggy { try mapping.sync(offset: slot + 4096, length: 8) }
        case .acknowledgeBeforeSync:
            fatalError("runs the write-ahead log")
        }
    }

    static func checksum(_ sequence: UInt64, _ value: UInt64) -> UInt64 {
        (sequence &* 0x9E37_79B9_7F4A_7C15) ^ (value &* 0xC2B2_AE3D_27D4_EB4F) ^ magic
    }

    /// Record `i`'s header starts 32 bytes before a page boundary; its
    /// payload continues into the next page.
    static func recordOffset(_ i: UInt64) -> Int { payloadStart + Int(i) * 8192 + 4096 - 32 }

    /// A checksum of the record's length and the first `count` payload bytes.
    static func recordChecksum(covering count: Int, of bytes: UnsafeRawBufferPointer, at record: Int) -> UInt64 {
        var hash = bytes.load(fromByteOffset: record, as: UInt64.self) &* 0x9E37_79B9_7F4A_7C15
        for byte in bytes[(record + 16)..<(record + 16 + count)] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }

    /// Recovery and its promises for each structure.
    static func check(bug: ZooBug, buggy: Bool, _ image: CrashImage<UInt64>) throws {
        let bytes = UnsafeRawBufferPointer(image.bytes)
        func load(_ offset: Int) -> UInt64 { bytes.load(fromByteOffset: offset, as: UInt64.self) }
        switch bug {
        case .commitInSameWindow:
            for i in UInt64(0)..<3 where load(commitOffset(i)) == 1 {
                try image.require(load(Int(i) * 64) == value(i), "committed record \(i) holds garbage")
            }
            for i in image.acknowledged { try image.require(load(commitOffset(i)) == 1, "acknowledged record \(i) lost") }
        case .payloadOutsideRangedSync, .rangedSyncOneBlockShort, .pointerBeforeTarget:
            for i in UInt64(0)..<3 {
                let pointer = Int(load(Int(i) * 64))
                if pointer == 0 {
                    try image.require(!image.acknowledged.contains(i), "acknowledged pointer \(i) lost")
                    continue
                }
                try image.require(pointer == payloadOffset(i), "pointer \(i) is garbage")
                let intact = pattern(i, count: payloadLength).withUnsafeBytes { memcmp($0.baseAddress!, bytes.baseAddress! + pointer, payloadLength) == 0 }
                try image.require(intact, "payload \(i) behind its pointer is not durable")
            }
        case .commitWordStraddles:
            let current = bytes.loadUnaligned(fromByteOffset: buggy ? 508 : 504, as: UInt64.self)
            try image.require(current == 0 || (0..<3).contains { current == value(UInt64($0)) }, "commit word torn: \(String(current, radix: 16))")
            if let last = image.acknowledged.max() {
                try image.require((last...2).contains { current == value($0) }, "commit word older than acknowledged \(last)")
            }
        case .inPlaceMultiWordUpdate:
            var a = load(0)
            var b = load(512)
            if load(4096 + 16) == 1 { a = load(4096); b = load(4096 + 8) }   // redo
            if a == 0 && b == 0 { return }   // before the first transfer
            try image.require(a + b == 1000, "accounts sum to \(a + b), not 1000")
        case .headerSlotsDoNotAlternate:
            var best: (sequence: UInt64, value: UInt64)?
            for slot in [0, 2048] {
                let offset = headerOffset + slot + 488
                guard load(offset) == magic else { continue }
                let sequence = load(offset + 8), value = load(offset + 16)
                guard load(offset + 24) == checksum(sequence, value) else { continue }
                if best.map({ sequence > $0.sequence }) ?? true { best = (sequence, value) }
            }
            if let last = image.acknowledged.max() {
                try image.require(best != nil, "no valid header after acknowledging update \(last)")
                try image.require(best!.sequence >= last + 1, "header older than acknowledged update \(last)")
            }
        case .checksumMissesField:
            for i in UInt64(0)..<3 {
                let record = recordOffset(i)
                let valid = load(record) == 100
                    && load(record + 8) == recordChecksum(covering: buggy ? 16 : 100, of: bytes, at: record)
                if valid {
                    let intact = pattern(i, count: 100).withUnsafeBytes { memcmp($0.baseAddress!, bytes.baseAddress! + record + 16, 100) == 0 }
                    try image.require(intact, "record \(i) passes its checksum with other bytes")
                } else {
                    try image.require(!image.acknowledged.contains(i), "acknowledged record \(i) lost")
                }
            }
        case .recoveryReadsUnsynced:
            for i in image.acknowledged {
                try image.require(load(Int(i) * 64) == value(i) && load(Int(i) * 64 + 4096) == value(i), "record \(i) incomplete")
            }
        case .acknowledgeBeforeSync:
            break
        }
    }
}
