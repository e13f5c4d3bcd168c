import Foundation
import FoundationXML
import PmemTrack
import Testing
@testable import PmemTrackCLI

@Suite("pmemtrack tool")
struct CommandTests {
    /// Sizes the tool refuses are rows of the bad-input table
    /// (PmemTrackTests/BadInputTests.swift), run through the built tool.
    @Test("sizes parse with binary suffixes")
    func byteCounts() {
        #expect(ByteCount(argument: "4096")?.bytes == 4096)
        #expect(ByteCount(argument: "256M")?.bytes == 256 << 20)
        #expect(ByteCount(argument: "1GiB")?.bytes == 1 << 30)
        #expect(ByteCount(argument: "64k")?.bytes == 64 << 10)
        #expect(ByteCount.format(3 << 29) == "1.5 GiB")
    }

    @Test("each workload runs, syncs every N operations and flushes only what it wrote", arguments: WorkloadKind.allCases)
    func workloads(kind: WorkloadKind) throws {
        let scratch = try ScratchMapping(length: 8 << 20)
        let result = try WorkloadRunner(kind: kind, operations: 1000, syncEvery: 10, seed: 7).run(on: scratch.map)
        #expect(result.syncLatencies.count == 100)
        #expect(result.syncLatencies == result.syncLatencies.sorted())
        #expect(result.faults > 0)
        #expect(scratch.map.statistics.dirtyBlocks == 0, "the last operation was synced")
        // Each sync flushes at most the blocks the 10 operations before it
        // touched (a record or a 4 KiB write spans at most two blocks; the
        // log's header block adds one when it rewinds).
        #expect(result.blocksFlushed <= 100 * 21)
        #expect(result.table.contains("sync latency p99"))
    }

    @Test("growth: clean-on-sync flushes exactly the blocks written; never-clean grows; flush-everything flushes all")
    func growth() throws {
        let experiment = GrowthExperiment(
            length: 16 << 20, blockSize: 4096, epochs: 12, blocksPerEpoch: 200, seed: 3, directory: NSTemporaryDirectory())
        let sets = experiment.workingSets()
        let clean = try experiment.run(.cleanOnSync, sets: sets).samples
        let never = try experiment.run(.neverClean, sets: sets).samples
        let everything = try experiment.run(.flushEverything, sets: sets).samples
        #expect(clean.allSatisfy { $0.precision == 1.0 })
        // Never-clean flushes the union of all epochs so far.
        var union = Set<Int>()
        for (epoch, set) in sets.enumerated() {
            union.formUnion(set)
            #expect(never[epoch].bytesFlushed == union.count * 4096)
        }
        #expect(never.last!.precision > 5)
        #expect(everything.allSatisfy { $0.bytesFlushed == 16 << 20 })

        let csv = GrowthExperiment.csv(clean + never + everything)
        #expect(csv.split(separator: "\n").count == 1 + 36)
        let svg = GrowthChart(title: "test <&>", samples: clean + never + everything).svg()
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "the picture is well-formed XML")
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 6, "three policies in two panels")
    }

    @Test("doctor reports every item, for a directory and for a file")
    func doctor() throws {
        let scratch = try ScratchMapping(length: 1 << 20)
        for path in [NSTemporaryDirectory(), scratch.path] {
            let report = try SystemReport(path: path)
            let keys = Set(report.rows.map(\.0))
            for key in ["persistent memory", "page size", "cache flush", "vm.max_map_count", "VMAs in this process", "userfaultfd", "PAGEMAP_SCAN", "tracking (automatic)"] {
                #expect(keys.contains(key), "\(key) for \(path)")
            }
            // The choice names a backend and gives a reason.
            let choice = report.rows.first { $0.0 == "tracking (automatic)" }?.1 ?? ""
            #expect(choice.hasPrefix("userfaultfd: ") || choice.hasPrefix("mprotect: "), "\(choice)")
        }

        // The whole maps file is counted, not the ~4 KiB that one read gives
        // (at least 45 bytes a line: at most 91 lines). This test process maps
        // far more: a handful of VMAs for each of its dozens of libraries.
        let report = try SystemReport(path: scratch.path)
        let vmas = report.rows.first { $0.0 == "VMAs in this process" }.flatMap { Int($0.1) }
        #expect(vmas.map { $0 > 91 } == true, "\(vmas as Any)")
    }

    @Test("--tracking picks the backend of workload and growth; automatic by default")
    func trackingOption() throws {
        #expect(try WorkloadCommand.parse([]).tracking == .automatic)
        #expect(try WorkloadCommand.parse(["--tracking", "mprotect"]).tracking.mode == .mprotect)
        #expect(try GrowthCommand.parse(["--tracking", "userfaultfd"]).tracking.mode == .userfaultfd)
        let experiment = GrowthExperiment(
            length: 1 << 20, blockSize: 4096, epochs: 2, blocksPerEpoch: 10, seed: 1,
            directory: NSTemporaryDirectory(), tracking: .mprotect)
        let result = try experiment.run(.cleanOnSync, sets: experiment.workingSets())
        #expect(result.trackingMode == .mprotect)
        #expect(result.samples.allSatisfy { $0.precision == 1.0 })
    }

    @Test("kv maps with random access unless told not to; the other workloads only when told")
    func randomAccessDefault() throws {
        #expect(WorkloadKind.allCases.filter(\.accessesAtRandom) == [.kv])
        #expect(try WorkloadCommand.parse(["kv"]).randomAccess == nil)
        #expect(try WorkloadCommand.parse(["kv", "--no-random-access"]).randomAccess == false)
        #expect(try WorkloadCommand.parse(["wal", "--random-access"]).randomAccess == true)
    }
}
