import CrashZoo
import PmemTrack
import PmemTrackCrashLab
import Testing

/// The lab against the bug zoo: each seeded bug is caught under every model
/// where it is a bug, and its correct version passes under every model.
@Suite struct BugZooTests {
    static let models: [CrashModel] = [.adr, .adrTornWords, .eadr, .pageCache(), .pageCache(sector: 512), .processCrash]

    static func explore(_ bug: ZooBug, buggy: Bool, model: CrashModel) throws -> CrashReport<UInt64> {
        let lab = try CrashLab<UInt64>(length: 64 << 10, configuration: .init(tracking: .mprotect))
        try lab.record(bug.workload(buggy: buggy))
        return try lab.explore(model: model) { try bug.check(buggy: buggy, $0) }
    }

    static var cases: [(ZooBug, CrashModel)] { ZooBug.allCases.flatMap { bug in bug.models.map { (bug, $0) } } }

    @Test(arguments: cases)
    func bugIsCaught(bug: ZooBug, model: CrashModel) throws {
        let clock = ContinuousClock()
        var report: CrashReport<UInt64>?
        let elapsed = try clock.measure { report = try Self.explore(bug, buggy: true, model: model) }
        let found = try #require(report)
        #expect(found.verdict == .failed, "\(bug) under \(model): \(found)")
        #expect(found.failures.count >= 1)
        print("zoo \(bug.rawValue) \(model): caught=\(found.verdict == .failed) in \(elapsed), \(found.imagesChecked) images, failures \(found.failures.count)")
        for failure in found.failures { print(failure) }
    }

    @Test(arguments: ZooBug.allCases, models)
    func correctVersionPasses(bug: ZooBug, model: CrashModel) throws {
        let report = try Self.explore(bug, buggy: false, model: model)
        report.recordIssues()
        #expect(report.verdict == .passed)
    }
}
