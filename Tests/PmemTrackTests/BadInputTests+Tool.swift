import Foundation
import SystemPackage
import Synchronization
import Testing
@testable import PmemTrack
@testable import PmemTrackCrashLab

/// The bad-input table's rows for the `pmemtrack` tool's arguments.
extension BadInputTests {

    /// The `pmemtrack` tool's bad arguments, run as the tool is run: the
    /// built executable, in a scratch directory holding an 8 KiB file `data`
    /// and a directory `dir`, with TMPDIR there too, so that whatever the
    /// command would create, even a temporary file it removes again, changes
    /// that directory. Paths in the arguments are relative to it.
    enum ToolCase: String, CaseIterable, Sendable {
        case workloadUnknownKind, workloadUnknownTracking, workloadSeedNotANumber
        case workloadSizeEmpty, workloadSizeSuffixOnly, workloadSizeNegative, workloadSizeZero, workloadSizeFraction
        case workloadSizeUnknownSuffix, workloadSizeOverflowing
        case workloadSyncEveryZero, workloadOpsZero
        case workloadBlockSizeNotPowerOfTwo, workloadBlockSizeZero, workloadFileIsDirectory, workloadFileInMissingDirectory
        case growthEpochsZero, growthBlocksPerEpochBeyondMapping, growthBlockSizeZero, growthUnknownPolicy
        case growthDirectoryMissing
        case doctorPathMissing
        case crashUnknownScenario, crashUnknownBug, crashUnknownModel, crashSectorNotPowerOfTwo
        case crashBudgetZero, crashBudgetNegative, crashDirectoryMissing
    }

    /// A command line, the exit status it must end with (64, EX_USAGE, for
    /// what the argument parser refuses; 1 for a failure once running), and
    /// what its message must name: the option and, where it has one, the
    /// bad value.
    struct ToolSetup {
        var arguments: [String]
        var status: Int32
        var names: [String]
    }

    static func toolSetup(_ c: ToolCase) -> ToolSetup {
        // The scratch files a workload or an exploration would write, so that
        // running by mistake changes the scratch directory.
        let workload = ["workload", "--file", "data", "--tracking", "mprotect"]
        let newFile = ["workload", "--file", "new", "--tracking", "mprotect"]
        let growth = ["growth", "--directory", ".", "--csv", "g.csv", "--svg", "g.svg", "--tracking", "mprotect"]
        let crash = ["crash", "--directory", ".", "--tracking", "mprotect"]
        switch c {
        case .workloadUnknownKind:
            return ToolSetup(arguments: workload + ["sideways"], status: 64, names: ["<kind>", "'sideways'"])
        case .workloadUnknownTracking:
            return ToolSetup(arguments: ["workload", "--file", "data", "--tracking", "sometimes"], status: 64,
                             names: ["--tracking", "'sometimes'"])
        case .workloadSeedNotANumber: return ToolSetup(arguments: workload + ["--seed", "x"], status: 64, names: ["--seed", "'x'"])
        case .workloadSizeEmpty: return ToolSetup(arguments: newFile + ["--size="], status: 64, names: ["--size"])
        case .workloadSizeSuffixOnly: return ToolSetup(arguments: newFile + ["--size", "M"], status: 64, names: ["--size", "'M'"])
        case .workloadSizeNegative: return ToolSetup(arguments: newFile + ["--size=-1"], status: 64, names: ["--size", "'-1'"])
        case .workloadSizeZero: return ToolSetup(arguments: newFile + ["--size", "0"], status: 64, names: ["--size", "'0'"])
        case .workloadSizeFraction: return ToolSetup(arguments: newFile + ["--size", "1.5G"], status: 64, names: ["--size", "'1.5G'"])
        case .workloadSizeUnknownSuffix:
            return ToolSetup(arguments: newFile + ["--size", "12Q"], status: 64, names: ["--size", "'12Q'"])
        case .workloadSizeOverflowing:
            return ToolSetup(arguments: newFile + ["--size", "99999999999T"], status: 64, names: ["--size", "'99999999999T'"])
        case .workloadSyncEveryZero: return ToolSetup(arguments: workload + ["--sync-every", "0"], status: 64, names: ["--sync-every"])
        case .workloadOpsZero: return ToolSetup(arguments: workload + ["--ops", "0"], status: 64, names: ["--ops"])
        case .workloadBlockSizeNotPowerOfTwo:
            return ToolSetup(arguments: newFile + ["--size", "1M", "--block-size", "12288"], status: 1,
                             names: ["cannot map new", "block size 12288"])
        case .workloadBlockSizeZero:
            return ToolSetup(arguments: workload + ["--block-size", "0"], status: 1, names: ["cannot map data", "block size 0"])
        case .workloadFileIsDirectory:
            return ToolSetup(arguments: ["workload", "--file", "dir", "--tracking", "mprotect"], status: 1,
                             names: ["cannot map dir", "Is a directory"])
        case .workloadFileInMissingDirectory:
            return ToolSetup(arguments: ["workload", "--file", "missing/new", "--size", "1M", "--tracking", "mprotect"], status: 1,
                             names: ["cannot map missing/new", "No such file or directory"])
        case .growthEpochsZero: return ToolSetup(arguments: growth + ["--epochs", "0"], status: 64, names: ["--epochs"])
        case .growthBlocksPerEpochBeyondMapping:
            return ToolSetup(arguments: growth + ["--size", "1M", "--blocks-per-epoch", "1000"], status: 64,
                             names: ["--blocks-per-epoch", "256 blocks"])
        case .growthBlockSizeZero:
            // Once a division by zero in the tool's own check.
            return ToolSetup(arguments: growth + ["--block-size", "0"], status: 64, names: ["--block-size"])
        case .growthUnknownPolicy:
            return ToolSetup(arguments: growth + ["--policies", "clean-on-sync,bogus"], status: 64, names: ["--policies"])
        case .growthDirectoryMissing:
            return ToolSetup(
                arguments: ["growth", "--directory", "missing", "--csv", "g.csv", "--svg", "g.svg", "--tracking", "mprotect",
                            "--size", "1M", "--epochs", "1", "--blocks-per-epoch", "1"],
                status: 1, names: ["missing/pmemtrack-growth-", "No such file or directory"])
        case .doctorPathMissing:
            return ToolSetup(arguments: ["doctor", "missing"], status: 1, names: ["missing: no such file or directory"])
        case .crashUnknownScenario: return ToolSetup(arguments: crash + ["nosuch"], status: 64, names: ["<scenario>", "'nosuch'"])
        case .crashUnknownBug: return ToolSetup(arguments: crash + ["--bug", "nope"], status: 64, names: ["--bug", "nope"])
        case .crashUnknownModel: return ToolSetup(arguments: crash + ["--model", "adrr"], status: 64, names: ["--model", "adrr"])
        case .crashSectorNotPowerOfTwo:
            return ToolSetup(arguments: crash + ["--model", "page-cache-100"], status: 64, names: ["--model", "page-cache-100"])
        case .crashBudgetZero: return ToolSetup(arguments: crash + ["--budget", "0"], status: 64, names: ["--budget"])
        case .crashBudgetNegative: return ToolSetup(arguments: crash + ["--budget=-1"], status: 64, names: ["--budget"])
        case .crashDirectoryMissing:
            return ToolSetup(arguments: ["crash", "--directory", "missing", "--tracking", "mprotect"], status: 1,
                             names: ["missing/pmemtrack-crashlab-", "No such file or directory"])
        }
    }

    /// The `pmemtrack` executable that `swift build` and `swift test` build
    /// next to the test bundle.
    static let tool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("pmemtrack")

    static func badToolArguments(_ c: ToolCase, _ scratch: String) throws {
        let setup = toolSetup(c)
        try #require(FileManager.default.isExecutableFile(atPath: tool.path), "no pmemtrack tool at \(tool.path): build it first")
        try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).write(to: URL(fileURLWithPath: scratch + "/data"))
        try FileManager.default.createDirectory(atPath: scratch + "/dir", withIntermediateDirectories: false)
        // The output goes to files outside the scratch directory: a pipe
        // could fill and hold up the tool.
        let output = TemporaryFile(), errors = TemporaryFile()
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let before = DiskState(scratch)
        let process = Process()
        process.executableURL = tool
        process.arguments = setup.arguments
        process.currentDirectoryURL = URL(fileURLWithPath: scratch)
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = scratch
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output.path))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors.path))
        try process.run()
        guard waitForExit(process, "pmemtrack \(setup.arguments.joined(separator: " ")) to exit") else { return }
        let message = (try? String(contentsOfFile: errors.path, encoding: .utf8)) ?? ""
        let ending = "\(process.terminationReason == .exit ? "status" : "signal") \(process.terminationStatus)"
        #expect(process.terminationReason == .exit && process.terminationStatus == setup.status,
                "pmemtrack \(setup.arguments) ended with \(ending), not status \(setup.status): \(message.prefix(400))")
        for name in setup.names {
            #expect(message.contains(name), "the message does not name \(name): \(message.prefix(400))")
        }
        #expect(DiskState(scratch) == before, "pmemtrack \(setup.arguments) changed the files")
    }
}
