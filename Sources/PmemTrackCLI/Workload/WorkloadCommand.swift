import ArgumentParser
import Foundation
import PmemTrack

/// `pmemtrack workload [wal|kv|random]`: runs an example workload on a
/// tracked mapping and prints what it cost.
struct WorkloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload",
        abstract: "Run an example fsync workload and report throughput, flushes and sync latency.",
        discussion: """
            Without --file the workload runs on a new file in the temporary directory, removed \
            afterwards. An existing --file is opened as it is (the log and the table recover what \
            they find); a new one is created with --size.
            For the cache-flush path without persistent memory, run with PMEM_IS_PMEM_FORCE=1 and \
            a file in /dev/shm.
            """
    )

    @Argument(help: "The workload: wal, kv or random.")
    var kind: WorkloadKind = .random

    @Option(help: "The data file. Default: a temporary file.")
    var file: String?

    @Option(help: "Size of a new file, e.g. 256M or 1G.")
    var size = ByteCount(bytes: 256 << 20)

    @Option(help: "Operations between syncs (commits). Default: wal 16, kv 256, random 32.")
    var syncEvery: Int?

    @Option(help: "Operations in all. Default: wal 100000, kv 51200, random 10000.")
    var ops: Int?

    @Option(help: "Tracking block size in bytes, a power of two multiple of the page size.")
    var blockSize = TrackedMapping.pageSize

    @Option(help: "Tracking backend: \(TrackingOption.allCases.map(\.rawValue).joined(separator: ", ")).")
    var tracking = TrackingOption.automatic

    @Option(help: "Seed of the random choices.")
    var seed: UInt64 = 1

    @Flag(inversion: .prefixedNo, help: """
        Map with the randomAccess option (madvise MADV_RANDOM: no readahead, so ordinary-file \
        writeback writes single pages, not large folios). Default: on for kv, off otherwise.
        """)
    var randomAccess: Bool?

    func validate() throws {
        if let syncEvery, syncEvery < 1 { throw ValidationError("--sync-every must be at least 1") }
        if let ops, ops < 1 { throw ValidationError("--ops must be at least 1") }
    }

    func run() throws {
        let operations = ops ?? kind.defaultOperations
        let interval = syncEvery ?? kind.defaultSyncEvery
        let target = ScratchFile(named: file, prefix: "pmemtrack-workload")
        defer { target.removeIfTemporary() }

        let random = randomAccess ?? kind.accessesAtRandom
        var options: TrackedMapping.Options = target.exists ? [] : [.create]
        if random { options.insert(.randomAccess) }
        let map: TrackedMapping
        do {
            map = try TrackedMapping(
                path: target.path, length: target.exists ? nil : size.bytes,
                options: options, configuration: .init(blockSize: blockSize, tracking: tracking.mode))
        } catch {
            throw ToolError("cannot map \(target.path): \(error)")
        }
        defer { try? map.close() }

        let result = try WorkloadRunner(kind: kind, operations: operations, syncEvery: interval, seed: seed).run(on: map)
        print("pmemtrack workload \(kind.rawValue): \(kind.summary), sync every \(interval)")
        print("file \(target.path)\(target.isTemporary ? " (temporary)" : ""): \(ByteCount.format(map.bytes.count)), "
            + "\(map.isPersistentMemory ? "persistent memory, cache flushes" : "not persistent memory, msync"), "
            + "\(TrackingOption.name(of: map.trackingMode)) tracking, block \(ByteCount.format(map.blockSize))\(random ? ", random access" : "")")
        print(result.table)
    }
}

/// A failure the tool reports in one line, exiting with status 1.
struct ToolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
