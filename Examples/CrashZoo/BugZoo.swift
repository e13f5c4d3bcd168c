import ExampleWorkloads
import PmemTrack
import PmemTrackCrashLab

/// Seeded crash-consistency bugs, each beside its correct version: the
/// example write-ahead log and key-value store, each with one decision made
/// wrong (a ``WriteAheadLog/Flaw`` or a ``KeyValueStore/Flaw``). The buggy
/// and the correct version run the same workload and the same check: the
/// example's own recovery, held to the workload's promises.
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
        case .inPlaceMultiWordUpdate: "a multi-slot update in place, without a log"
        case .acknowledgeBeforeSync: "a write-ahead log that acknowledges a record before its sync"
        case .headerSlotsDoNotAlternate: "a checksummed header updated in place instead of in alternating slots"
        case .checksumMissesField: "a checksum that does not cover bytes recovery trusts"
        case .pointerBeforeTarget: "a pointer made durable in the same sync as its target"
        case .recoveryReadsUnsynced: "recovery relying on a word that is never synced"
        }
    }

    /// Where the bug lives: an example and the flaw that seeds it.
    public enum Seed: Hashable, Sendable {
        /// The write-ahead log, opened with this flaw.
        case log(WriteAheadLog.Flaw)
        /// The key-value store, opened with this flaw.
        case store(KeyValueStore.Flaw)
    }

    /// The example and the flaw that make this bug.
    public var seed: Seed {
        switch self {
        case .commitInSameWindow: .store(.batchCommitWordSyncedWithEntries)
        case .payloadOutsideRangedSync: .log(.commitSyncsLastRecordOnly)
        case .rangedSyncOneBlockShort: .log(.commitSyncRoundsDown)
        case .commitWordStraddles: .store(.batchCommitWordUnaligned)
        case .inPlaceMultiWordUpdate: .store(.batchAppliedInPlace)
        case .acknowledgeBeforeSync: .log(.commitReturnsBeforeSync)
        case .headerSlotsDoNotAlternate: .log(.headerAlwaysInFirstSlot)
        case .checksumMissesField: .log(.checksumSkipsPayload)
        case .pointerBeforeTarget: .store(.largeValueSyncedWithPointer)
        case .recoveryReadsUnsynced: .log(.headerNeverSynced)
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
        // Each of the log's header slots straddles a sector boundary, and so
        // a line boundary: sectors, lines and words can all tear it. Whole
        // pages cannot (both slots are in page 0).
        case .headerSlotsDoNotAlternate: return [.adr, .adrTornWords, .pageCache(sector: 512)]
        case .checksumMissesField: return [.adr, .pageCache()]
        }
    }

    /// The workload, buggy or correct, for a mapping of ``length`` bytes:
    /// the same operations on the example with the flaw or without it.
    public func workload(buggy: Bool) -> (TrackedMapping, Promises<UInt64>) throws -> Void {
        switch seed {
        case .log(let flaw):
            let zoo = LogZoo(bug: flaw)
            return { mapping, promises in try zoo.run(mapping, promises, flaw: buggy ? flaw : nil) }
        case .store(let flaw):
            let zoo = StoreZoo(bug: flaw)
            return { mapping, promises in try zoo.run(mapping, promises, flaw: buggy ? flaw : nil) }
        }
    }

    /// Opens the example on the image, with the flaw or without it, and
    /// throws if its recovery broke a promise of ``workload(buggy:)``.
    public func check(buggy: Bool, _ image: CrashImage<UInt64>) throws {
        switch seed {
        case .log(let flaw): try LogZoo(bug: flaw).check(image, flaw: buggy ? flaw : nil)
        case .store(let flaw): try StoreZoo(bug: flaw).check(image, flaw: buggy ? flaw : nil)
        }
    }

    /// The mapping length the zoo's workloads use.
    public static let length = 64 << 10
}
