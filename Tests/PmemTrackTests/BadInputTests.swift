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

    // MARK: A mapping already open

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
