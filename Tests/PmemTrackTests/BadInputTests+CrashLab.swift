import Foundation
import SystemPackage
import Synchronization
import Testing
@testable import PmemTrack
@testable import PmemTrackCrashLab

/// The bad-input table's rows for the crash lab's arguments.
extension BadInputTests {

    enum LabCase: String, CaseIterable, Sendable {
        case zeroLength, negativeLength
        case directoryMissing, blockSizeNotPowerOfTwo, writebackAgeBelowOneMillisecond
        case workloadThrows, exploreBeforeRecording, replayBeforeRecording
        case sectorSizeNotPowerOfTwo, sectorSizeAbovePage, exhaustiveLimitAbove24, randomCountZero, boundedKNegative
        case imageBudgetZero, timeBudgetNegative
        case unknownModelName, modelSectorNotPowerOfTwo
        case replayPointBeyondRecording, replayIDOfAnotherRecording
    }

    struct Refused: Error {}

    /// Five values in five lines of one page and a crash point: a recording
    /// to explore and replay.
    static func fiveLines(_ mapping: TrackedMapping, _ promises: Promises<UInt64>) throws {
        for i in 0..<5 { mapping.bytes.storeBytes(of: UInt64(i + 1), toByteOffset: i * 64 + 8, as: UInt64.self) }
        mapping.crashPoint("five lines")
    }

    /// What a row does, with a lab whose recorded mapping lives in the
    /// scratch directory, and the error it must throw.
    struct LabSetup {
        var lab: CrashLab<UInt64>?
        var action: () throws(CrashLabError) -> Void
        var expected: CrashLabError
        /// The action makes and removes a file there (a workload that
        /// throws has run on a recorded mapping): the directory's entries
        /// must be as before, its own modification time not.
        var removesWhatItMakes = false
    }

    static func labSetup(_ c: LabCase, _ scratch: String) throws -> LabSetup {
        func makeLab(length: Int = 64 << 10, _ configuration: TrackedMapping.Configuration = .init(tracking: .mprotect),
                     directory: String = scratch) throws(CrashLabError) -> CrashLab<UInt64> {
            try CrashLab<UInt64>(length: length, configuration: configuration, directory: directory)
        }
        func recorded() throws(CrashLabError) -> CrashLab<UInt64> {
            let lab = try makeLab()
            try lab.record(fiveLines)
            return lab
        }
        /// Recording on a lab, into `directory`.
        func recording(_ lab: CrashLab<UInt64>, _ expected: CrashLabError) -> LabSetup {
            LabSetup(lab: lab, action: { () throws(CrashLabError) in try lab.record(fiveLines) }, expected: expected)
        }
        /// Exploring a recorded lab.
        func exploring(
            _ model: CrashModel, strategy: CrashStrategy = .default, budget: CrashBudget = .unlimited,
            _ expected: CrashLabError
        ) throws(CrashLabError) -> LabSetup {
            let lab = try recorded()
            return LabSetup(lab: lab, action: { () throws(CrashLabError) in
                _ = try lab.explore(model: model, strategy: strategy, budget: budget) { _ in }
            }, expected: expected)
        }
        func replaying(_ lab: CrashLab<UInt64>, _ id: CrashStateID, _ expected: CrashLabError) -> LabSetup {
            LabSetup(lab: lab, action: { () throws(CrashLabError) in _ = try lab.replay(id) { _ in } }, expected: expected)
        }
        func parsing(_ text: String, _ expected: CrashLabError) -> LabSetup {
            LabSetup(action: { () throws(CrashLabError) in _ = try CrashModel(parsing: text) }, expected: expected)
        }
        switch c {
        case .zeroLength:
            return LabSetup(action: { () throws(CrashLabError) in _ = try makeLab(length: 0) }, expected: .invalidLength(0))
        case .negativeLength:
            return LabSetup(action: { () throws(CrashLabError) in _ = try makeLab(length: -4096) }, expected: .invalidLength(-4096))
        case .directoryMissing:
            return recording(try makeLab(directory: scratch + "/missing"),
                             .mapping(.system(.noSuchFileOrDirectory, operation: "pmem_map_file"), path: scratch + "/missing/"))
        case .blockSizeNotPowerOfTwo:
            return recording(try makeLab(.init(blockSize: 3 * 4096, tracking: .mprotect)),
                             .mapping(.invalidBlockSize(3 * 4096), path: scratch + "/"))
        case .writebackAgeBelowOneMillisecond:
            return recording(try makeLab(.init(tracking: .mprotect, writeback: .maximumDirtyAge(.microseconds(999)))),
                             .mapping(.invalidWriteback("maximum dirty age 0.000999 seconds is below 1 ms"), path: scratch + "/"))
        case .workloadThrows:
            // The earlier recording stays (checked with the lab's state).
            let lab = try recorded()
            return LabSetup(lab: lab, action: { () throws(CrashLabError) in try lab.record { _, _ in throw Refused() } },
                            expected: .workloadFailed("\(Refused())"), removesWhatItMakes: true)
        case .exploreBeforeRecording:
            let lab = try makeLab()
            return LabSetup(lab: lab, action: { () throws(CrashLabError) in _ = try lab.explore(model: .adr) { _ in } },
                            expected: .notRecorded)
        case .replayBeforeRecording:
            return replaying(try makeLab(), try #require(CrashStateID("adr/p0/00000000/+")), .notRecorded)
        case .sectorSizeNotPowerOfTwo: return try exploring(.pageCache(sector: 100), .invalidSectorSize(100))
        case .sectorSizeAbovePage: return try exploring(.pageCache(sector: 8192), .invalidSectorSize(8192))
        case .exhaustiveLimitAbove24:
            return try exploring(.adr, strategy: .exhaustive(limit: 30), .invalidStrategy("exhaustive limit 30 is not from 0 to 24"))
        case .randomCountZero: return try exploring(.adr, strategy: .random(count: 0), .invalidStrategy("random count 0 is below 1"))
        case .boundedKNegative: return try exploring(.adr, strategy: .bounded(k: -1), .invalidStrategy("bounded k -1 is negative"))
        case .imageBudgetZero: return try exploring(.adr, budget: .images(0), .invalidBudget("0 images"))
        case .timeBudgetNegative:
            return try exploring(.adr, budget: .time(.seconds(-1)), .invalidBudget("\(Duration.seconds(-1))"))
        case .unknownModelName: return parsing("adrr", .unknownModel("adrr"))
        case .modelSectorNotPowerOfTwo: return parsing("page-cache-768", .invalidSectorSize(768))
        case .replayPointBeyondRecording:
            let lab = try recorded()
            return replaying(lab, try #require(CrashStateID("adr/p10000/00000000/+")),
                             .replayMismatch("crash point 10000 of \(lab.recordedPoints)"))
        case .replayIDOfAnotherRecording:
            // A real failure's ID, with another recording's fingerprint.
            let lab = try recorded()
            let report = try lab.explore(model: .eadr) { _ in throw Refused() }
            let id = try #require(report.failures.first?.replayID)
            let other = CrashStateID(model: id.model, point: id.point, fingerprint: id.fingerprint ^ 1, present: id.present)
            return replaying(lab, other, .replayMismatch("crash point \(id.point) has other uncertain units than when the ID was made"))
        }
    }

    /// The expected error, where a mapping error's path is the lab's own
    /// random name: `expected` gives its directory, ending in "/".
    static func sameError(_ error: CrashLabError, _ expected: CrashLabError) -> Bool {
        if case .mapping(let reported, let path) = error, case .mapping(let wanted, let directory) = expected {
            return reported == wanted && path.hasPrefix(directory + "pmemtrack-crashlab-")
        }
        return error == expected
    }

    static func badCrashLabArguments(_ c: LabCase, _ scratch: String) throws {
        let setup = try labSetup(c, scratch)
        let before = DiskState(scratch, rootModificationTime: !setup.removesWhatItMakes)
        let recordedBefore = setup.lab.map { ($0.recordedPoints, $0.recordedBytes) }
        do throws(CrashLabError) {
            try setup.action()
            Issue.record("\(c.rawValue): no error; expected \(setup.expected)")
        } catch {
            #expect(sameError(error, setup.expected), "\(c.rawValue): \(error); expected \(setup.expected)")
        }
        #expect(DiskState(scratch, rootModificationTime: !setup.removesWhatItMakes) == before, "\(c.rawValue) changed the files")
        if let lab = setup.lab, let recordedBefore {
            #expect(lab.recordedPoints == recordedBefore.0 && lab.recordedBytes == recordedBefore.1,
                    "\(c.rawValue) changed the lab's recording")
        }
    }
}
