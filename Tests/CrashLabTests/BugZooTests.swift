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

    @Test(.tags(.stress), arguments: ZooBug.allCases, models)
    func correctVersionPasses(bug: ZooBug, model: CrashModel) throws {
        let report = try Self.explore(bug, buggy: false, model: model)
        report.recordIssues()
        #expect(report.verdict == .passed)
    }
}

/// Which single strategy catches which bug, under each bug's models: the
/// table in the README. Every bug is caught by the default strategy, and by
/// at least one single strategy under each of its models.
@Suite struct StrategyMatrixTests {
    static let strategies: [(String, CrashStrategy)] = [
        ("exhaustive(12)", .exhaustive()), ("bounded(2)", .bounded(k: 2)), ("prefixes", .prefixes),
        ("reversePrefixes", .reversePrefixes), ("omitOne", .omitOne), ("random(256)", .random(count: 256)),
        ("default", .default),
    ]

    @Test(.tags(.stress)) func matrix() throws {
        var lines = ["| bug | model | " + Self.strategies.map(\.0).joined(separator: " | ") + " |"]
        lines.append("|---|---|" + String(repeating: "---|", count: Self.strategies.count))
        for bug in ZooBug.allCases {
            for model in bug.models {
                let lab = try CrashLab<UInt64>(length: ZooBug.length, configuration: .init(tracking: .mprotect))
                try lab.record(bug.workload(buggy: true))
                var cells: [String] = []
                for (name, strategy) in Self.strategies {
                    let report = try lab.explore(model: model, strategy: strategy, budget: .images(20_000)) {
                        try bug.check(buggy: true, $0)
                    }
                    let caught = report.verdict == .failed
                    cells.append(caught ? "yes" : (report.verdict == .notMeasured ? "not measured" : "no"))
                    if name == "default" { #expect(caught, "\(bug) under \(model)") }
                }
                #expect(cells.dropLast().contains("yes"), "\(bug) under \(model): no single strategy")
                lines.append("| \(bug) | \(model) | " + cells.joined(separator: " | ") + " |")
            }
        }
        print(lines.joined(separator: "\n"))
    }
}
