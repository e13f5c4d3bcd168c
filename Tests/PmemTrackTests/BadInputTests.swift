import Foundation
import SystemPackage
import Synchronization
import Testing
@testable import PmemTrack
@testable import PmemTrackCrashLab

/// Bad input, through every door: opening a mapping, the `pmemtrack` tool's
/// arguments, and the crash lab's. One table; each row gets a typed error
/// (the tool: a failed exit whose message names the bad argument) and
/// changes nothing on disk.
@Suite("Bad input")
struct BadInputTests {
    // MARK: The table

    /// One row: a door and a case.
    enum Row: Sendable, CustomTestStringConvertible {
        case open(OpenCase)
        case tool(ToolCase)
        case crashLab(LabCase)

        var testDescription: String {
            switch self {
            case .open(let c): "open: \(c.rawValue)"
            case .tool(let c): "pmemtrack: \(c.rawValue)"
            case .crashLab(let c): "crash lab: \(c.rawValue)"
            }
        }
    }

    static let table: [Row] = OpenCase.allCases.map(Row.open) + ToolCase.allCases.map(Row.tool) + LabCase.allCases.map(Row.crashLab)

    @Test("bad input gets a typed error, or the tool a failed exit naming the argument, and changes nothing on disk",
          arguments: table)
    func badInput(_ row: Row) throws {
        let scratch = NSTemporaryDirectory() + "pmemtrack-bad-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        switch row {
        case .open(let c): try Self.badOpen(c, scratch)
        case .tool(let c): try Self.badToolArguments(c, scratch)
        case .crashLab(let c): try Self.badCrashLabArguments(c, scratch)
        }
    }

    // MARK: Opening a mapping

    enum OpenCase: String, CaseIterable, Sendable {
        case missingDirectory, zeroLength, negativeLength, lengthBeyondFreeSpace
        case blockSizeNotPowerOfTwo, blockSizeOver2MiB, blockSizeBelowPage
        case readOnlyFile, directory, devNull, fifo, emptyExistingFile, wrongLengthForExistingFile
        case cacheFlushOnOrdinaryFile
        case blockSizeZero, blockSizeNegative
        case symlinkToDevZero, lengthNearIntMax, fileShrankSinceFirstOpen
        case exclusiveOnExistingFile, tmpfileOnRegularFile
        case writebackAgeBelowOneMillisecond, writebackNegativeAge, writebackByteLimitNotPositive
        case writebackByteLimitWithoutAge
        case userfaultfdRefusedForTheMapping, userfaultfdSetUpFailing
    }

    /// What a case opens, what it must throw, and the path whose state must
    /// not change.
    struct Setup {
        var path: String
        var length: Int?
        var options: TrackedMapping.Options = [.create]
        var configuration = TrackedMapping.Configuration()
        var expected: PmemTrackError
        var cleanup: () -> Void = {}
        /// System-call failures injected into the open (debug builds).
        var injected: [InjectedFailure] = []
    }

    static func setup(_ c: OpenCase, _ scratch: String) throws -> Setup {
        let file = scratch + "/file"
        switch c {
        case .cacheFlushOnOrdinaryFile:
            // Refused after the file is created and mapped: the new file must go too.
            return Setup(path: file, length: 1 << 20, configuration: .init(flushMode: .cacheFlush), expected: .cacheFlushUnavailable)
        case .missingDirectory:
            return Setup(path: scratch + "/missing/file", length: 4096, expected: .system(.noSuchFileOrDirectory, operation: "pmem_map_file"))
        case .zeroLength:
            return Setup(path: file, length: 0, expected: .invalidLength(0))
        case .negativeLength:
            return Setup(path: file, length: -4096, expected: .invalidLength(-4096))
        case .lengthBeyondFreeSpace:
            // tmpfs allocates up front without .sparse; 1 TiB does not fit here.
            return Setup(path: "/dev/shm/pmemtrack-\(UUID().uuidString)", length: 1 << 40, expected: .system(.noSpace, operation: "pmem_map_file"))
        case .blockSizeNotPowerOfTwo:
            return Setup(path: file, length: 1 << 20, configuration: .init(blockSize: 3 * 4096), expected: .invalidBlockSize(3 * 4096))
        case .blockSizeOver2MiB:
            return Setup(path: file, length: 1 << 20, configuration: .init(blockSize: 4 << 20), expected: .invalidBlockSize(4 << 20))
        case .blockSizeBelowPage:
            return Setup(path: file, length: 1 << 20, configuration: .init(blockSize: 512), expected: .invalidBlockSize(512))
        case .readOnlyFile:
            precondition(FileManager.default.createFile(atPath: file, contents: Data(repeating: 7, count: 8192)))
            // Root ignores permission bits; the immutable attribute binds root too.
            if geteuid() == 0 {
                try run("/usr/bin/chattr", "+i", file)
                return Setup(path: file, length: nil, options: [], expected: .system(.notPermitted, operation: "pmem_map_file"),
                             cleanup: { try? run("/usr/bin/chattr", "-i", file) })
            }
            chmod(file, 0o444)
            return Setup(path: file, length: nil, options: [], expected: .system(.permissionDenied, operation: "pmem_map_file"))
        case .directory:
            return Setup(path: scratch, length: nil, options: [], expected: .system(.isDirectory, operation: "pmem_map_file"))
        case .devNull:
            return Setup(path: "/dev/null", length: nil, options: [], expected: .system(.invalidArgument, operation: "pmem_map_file"))
        case .fifo:
            mkfifo(file, 0o600)
            return Setup(path: file, length: nil, options: [], expected: .system(.invalidArgument, operation: "pmem_map_file"))
        case .emptyExistingFile:
            precondition(FileManager.default.createFile(atPath: file, contents: nil))
            return Setup(path: file, length: nil, options: [], expected: .system(.invalidArgument, operation: "pmem_map_file"))
        case .wrongLengthForExistingFile:
            precondition(FileManager.default.createFile(atPath: file, contents: Data(repeating: 1, count: 8192)))
            return Setup(path: file, length: 4096, options: [], expected: .invalidLength(4096))
        case .blockSizeZero:
            return Setup(path: file, length: 1 << 20, configuration: .init(blockSize: 0), expected: .invalidBlockSize(0))
        case .blockSizeNegative:
            return Setup(path: file, length: 1 << 20, configuration: .init(blockSize: -4096), expected: .invalidBlockSize(-4096))
        case .symlinkToDevZero:
            symlink("/dev/zero", file)
            return Setup(path: file, length: 4096, options: [], expected: .system(.invalidArgument, operation: "pmem_map_file"))
        case .lengthNearIntMax:
            return Setup(path: file, length: Int.max - 4095, options: [.create, .sparse],
                         expected: .system(.fileTooLarge, operation: "pmem_map_file"))
        case .fileShrankSinceFirstOpen:
            // Opened whole at 8 KiB; another process then cut it to 4 KiB. A
            // second open that expects the old length is refused, and the
            // first mapping's sync over the lost part too (see the
            // truncation test below).
            precondition(FileManager.default.createFile(atPath: file, contents: Data(repeating: 3, count: 8192)))
            let first = try TrackedMapping(path: file, length: nil, options: [])
            truncate(file, 4096)
            return Setup(path: file, length: 8192, options: [], expected: .invalidLength(8192),
                         cleanup: { try? first.close() })
        case .exclusiveOnExistingFile:
            precondition(FileManager.default.createFile(atPath: file, contents: Data(repeating: 4, count: 8192)))
            return Setup(path: file, length: 8192, options: [.create, .exclusive],
                         expected: .system(.fileExists, operation: "pmem_map_file"))
        case .tmpfileOnRegularFile:
            precondition(FileManager.default.createFile(atPath: file, contents: Data(repeating: 5, count: 8192)))
            return Setup(path: file, length: 8192, options: [.create, .tmpfile],
                         expected: .system(.notDirectory, operation: "pmem_map_file"))
        case .writebackAgeBelowOneMillisecond:
            return Setup(path: file, length: 1 << 20, configuration: .init(writeback: .maximumDirtyAge(.microseconds(999))),
                         expected: .invalidWriteback("maximum dirty age 0.000999 seconds is below 1 ms"))
        case .writebackNegativeAge:
            return Setup(path: file, length: 1 << 20, configuration: .init(writeback: .maximumDirtyAge(.seconds(-1))),
                         expected: .invalidWriteback("maximum dirty age -1.0 seconds is below 1 ms"))
        case .writebackByteLimitNotPositive:
            return Setup(path: file, length: 1 << 20,
                         configuration: .init(writeback: .maximumDirtyAge(.seconds(5), dirtyByteLimit: 0)),
                         expected: .invalidWriteback("dirty-byte limit 0 is not positive"))
        case .writebackByteLimitWithoutAge:
            return Setup(path: file, length: 1 << 20,
                         configuration: .init(writeback: .init(maximumDirtyAge: nil, dirtyByteLimit: 1 << 20)),
                         expected: .invalidWriteback("a dirty-byte limit needs a maximum dirty age"))
        case .userfaultfdRefusedForTheMapping:
            // What a mapping kind the kernel cannot write-protect gets (a
            // hugetlbfs file, say), made here by failing the registration.
            return Setup(path: file, length: 1 << 20, configuration: .init(tracking: .userfaultfd),
                         expected: .trackingUnavailable(.mappingRefused(.invalidArgument)),
                         injected: [InjectedFailure(syscall: .userfaultfdRegister, errno: .invalidArgument)])
        case .userfaultfdSetUpFailing:
            return Setup(path: file, length: 1 << 20, configuration: .init(tracking: .userfaultfd),
                         expected: .system(.tooManyOpenFiles, operation: "userfaultfd"),
                         injected: [InjectedFailure(syscall: .userfaultfd, errno: .tooManyOpenFiles)])
        }
    }

    static func run(_ tool: String, _ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        guard waitForExit(process, "\(tool) to exit"), process.terminationStatus == 0 else { throw PmemTrackError.system(.ioError, operation: tool) }
    }

    static func badOpen(_ c: OpenCase, _ scratch: String) throws {
        if (c == .userfaultfdRefusedForTheMapping || c == .userfaultfdSetUpFailing) && !Backends.userfaultfdAvailable { return }
        let setup = try Self.setup(c, scratch)
        defer { setup.cleanup(); if setup.path.hasPrefix("/dev/shm/") { unlink(setup.path) } }
        let before = DiskState(setup.path)
        #expect(throws: setup.expected) {
            try System.withInjectedFailures(setup.injected) { () throws(PmemTrackError) in
                try TrackedMapping(path: setup.path, length: setup.length, options: setup.options, configuration: setup.configuration)
            }
        }
        #expect(DiskState(setup.path) == before)
    }

    // MARK: The tool's arguments

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

    // MARK: The crash lab's arguments

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

    @Test("a file truncated after mapping: syncs over the lost part throw fileTruncated and change nothing")
    func truncatedAfterMapping() throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher)
        defer { try? map.close() }
        map.bytes[0] = 1
        map.bytes[600 << 10] = 2
        truncate(file.path, 8192)
        #expect(throws: PmemTrackError.fileTruncated(length: 8192)) { try map.sync() }
        #expect(throws: PmemTrackError.fileTruncated(length: 8192)) { try map.sync(offset: 600 << 10, length: 1) }
        #expect(flusher.takeRuns().isEmpty)
        #expect(map.dirtyRanges() == [0..<4096, (600 << 10)..<((600 << 10) + 4096)])
        // A range the file still covers syncs normally.
        try map.sync(offset: 0, length: 8192)
        #expect(flusher.takeRuns() == [0..<4096])
    }

    @Test("close racing with syncs: each sync succeeds or throws closed; nothing crashes")
    func closeRacingSync() throws {
        for _ in 0..<50 {
            let file = TemporaryFile(in: "/dev/shm")
            let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
            for block in 0..<64 { map.bytes[block * 4096 * 4] = 1 }
            let outcomes = Mutex<[String]>([])
            let syncers = (0..<2).map { _ in
                Thread {
                    for _ in 0..<20 {
                        do { try map.sync() } catch {
                            outcomes.withLock { $0.append("\(error)") }
                            if (error as? PmemTrackError) != .closed { break }
                        }
                    }
                }
            }
            syncers.forEach { $0.start() }
            try map.close()
            join(syncers, what: "the syncing threads to return after the close")
            #expect(outcomes.withLock { $0 }.allSatisfy { $0 == "\(PmemTrackError.closed)" })
            #expect(throws: PmemTrackError.closed) { try map.close() }
        }
    }
}

/// What a bad input must leave as it was, below a path: for each file,
/// directory, link or device, its type and mode; for files, directories and
/// links also the size and modification time (nanoseconds); for files the
/// bytes; for directories their entries, recursively. A device's times are
/// not its own to keep (anyone may write /dev/null).
struct DiskState: Equatable, CustomStringConvertible {
    private var entries: [String: String] = [:]
    private var contents: [String: Data] = [:]

    /// - Parameter rootModificationTime: Whether the modification time of
    ///   `path` itself counts (a directory's changes when an entry is made
    ///   and removed again).
    init(_ path: String, rootModificationTime: Bool = true) {
        capture(path, as: ".", times: rootModificationTime)
    }

    private mutating func capture(_ path: String, as name: String, times: Bool = true) {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            entries[name] = "absent"
            return
        }
        let type = status.st_mode & S_IFMT
        var entry = "mode \(String(status.st_mode, radix: 8))"
        if type == S_IFREG || type == S_IFDIR || type == S_IFLNK {
            entry += " size \(status.st_size)"
            if times {
                let nanoseconds = String(status.st_mtim.tv_nsec)
                entry += " modified \(status.st_mtim.tv_sec).\(String(repeating: "0", count: 9 - nanoseconds.count) + nanoseconds)"
            }
        }
        entries[name] = entry
        if type == S_IFREG {
            contents[name] = FileManager.default.contents(atPath: path)
        } else if type == S_IFDIR {
            for child in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                capture(path + "/" + child, as: name + "/" + child)
            }
        }
    }

    var description: String {
        entries.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" + (contents[$0.key].map { ", \($0.count) bytes" } ?? "") }
            .joined(separator: "; ")
    }
}
