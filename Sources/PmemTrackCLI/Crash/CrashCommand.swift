import ArgumentParser
import CrashZoo
import Foundation
import PmemTrack
import PmemTrackCrashLab

/// `pmemtrack crash wal|kv`: an example under the crash lab, or, with
/// `--bug`, one of the lab's seeded bugs.
struct CrashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash",
        abstract: "Run an example under the crash lab and print its coverage and failures.",
        discussion: """
            Records the workload on a tracked mapping, generates the crash images the model allows at \
            every crash point, runs the example's own recovery on each, and prints the coverage and \
            each distinct failure with its replay ID. Exits 1 if a failure was found, 2 if the budget \
            ended the exploration first (not measured). With --bug, runs that seeded bug of the zoo \
            instead and exits 1 when the lab finds it.
            """
    )

    @Argument(help: "The example: wal or kv.")
    var scenario: ScenarioArgument = .wal

    @Option(help: "The crash model: adr, adr-words, eadr, page-cache, page-cache-512, process-crash.")
    var model: String?

    @Option(help: "Run this seeded bug instead (see --list-bugs).")
    var bug: String?

    @Flag(help: "List the seeded bugs and the models under which each is a bug.")
    var listBugs = false

    @Option(help: "Stop after this many seconds (the verdict is then 'not measured' unless a failure was found).")
    var budget: Double?

    @Option(help: "The tracking backend of the recorded mapping.")
    var tracking: TrackingOption = .automatic

    @Option(help: "Where the recorded mapping's file is made and removed.")
    var directory: String?

    enum ScenarioArgument: String, ExpressibleByArgument, CaseIterable {
        case wal, kv
        var scenario: CrashScenario { self == .wal ? .wal : .kv }
    }

    func validate() throws {
        if let budget, !(budget > 0) { throw ValidationError("--budget must be a positive number of seconds") }
        if let bug, ZooBug(rawValue: bug) == nil {
            throw ValidationError("--bug \(bug): no such seeded bug; pmemtrack crash --list-bugs lists them")
        }
        if let model { _ = try parsedModel(model) }
    }

    private func parsedModel(_ text: String) throws -> CrashModel {
        do { return try CrashModel(parsing: text) } catch { throw ValidationError("--model \(text): \(error.description)") }
    }

    func run() throws {
        if listBugs {
            print(Report.grid(header: ["bug", "a bug under", "what it is"], rows: ZooBug.allCases.map {
                [$0.rawValue, $0.models.map(\.description).joined(separator: ", "), $0.summary]
            }))
            return
        }
        let zooBug = bug.flatMap(ZooBug.init(rawValue:))
        let model = try model.map(parsedModel) ?? zooBug?.models.first ?? .adr
        let length = zooBug.map { _ in ZooBug.length } ?? scenario.scenario.length
        let lab = try CrashLab<UInt64>(
            length: length, configuration: .init(tracking: tracking.mode), directory: directory)
        let name = zooBug.map { "bug \($0.rawValue)" } ?? "\(scenario.rawValue)"
        try lab.record(zooBug?.workload(buggy: true) ?? scenario.scenario.workload)
        var progress = CrashProgressLine(label: "crash \(name), \(model)", points: lab.recordedPoints)
        let report = try lab.explore(
            model: model, budget: budget.map { .time(.milliseconds(Int($0 * 1000))) } ?? .unlimited,
            progress: { progress.update(points: $0, images: $1) }
        ) { image in
            if let zooBug { try zooBug.check(buggy: true, image) } else { try scenario.scenario.check(image) }
        }
        progress.finish()
        print("\(name): \(lab.recordedPoints) crash points recorded")
        print(report)
        switch report.verdict {
        case .passed: return
        case .failed: throw ExitCode(1)
        case .notMeasured: throw ExitCode(2)
        }
    }
}

/// The progress line of a long exploration, on standard error.
struct CrashProgressLine {
    private var line: ProgressLine
    private let points: Int

    init(label: String, points: Int) {
        self.points = points
        line = ProgressLine(label: label, total: points, unit: "crash points", sampleEvery: 1)
    }

    mutating func update(points done: Int, images: Int) { line.update(done: done, detail: "\(images) images checked") }

    func finish() { line.finish() }
}
