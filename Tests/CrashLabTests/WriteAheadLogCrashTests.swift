import CrashZoo
import ExampleWorkloads
import PmemTrack
import PmemTrackCrashLab
import Testing
import Glibc

/// The example write-ahead log under the crash lab: its recovery keeps every
/// acknowledged record and invents none, in every image of every model.
@Suite struct WriteAheadLogCrashTests {
    static func payload(_ lsn: UInt64) -> [UInt8] { WriteAheadLogScenario.payload(lsn) }
    static func workload(records: Int) -> (TrackedMapping, Promises<UInt64>) throws -> Void {
        WriteAheadLogScenario.workload(records: records)
    }
    static func check(_ image: CrashImage<UInt64>) throws { try WriteAheadLogScenario.check(image) }

    @Test(arguments: [CrashModel.adr, .adrTornWords, .eadr, .pageCache(), .pageCache(sector: 512), .processCrash], LabBackends.all)
    func recoversFromEveryImage(model: CrashModel, tracking: TrackedMapping.TrackingMode) throws {
        let lab = try CrashLab<UInt64>(length: 1 << 20, configuration: .init(tracking: tracking))
        try lab.record(Self.workload(records: 40))
        let report = try lab.explore(model: model, check: Self.check)
        report.recordIssues()
        #expect(report.verdict == .passed)
        #expect(report.imagesChecked > 0)
    }

    @Test("The key-value store keeps every acknowledged value not overwritten in flight", .tags(.stress),
          arguments: [CrashModel.adr, .adrTornWords, .eadr, .pageCache(), .pageCache(sector: 512)], LabBackends.all)
    func keyValueStore(model: CrashModel, tracking: TrackedMapping.TrackingMode) throws {
        let lab = try CrashLab<UInt64>(length: CrashScenario.kv.length, configuration: .init(tracking: tracking))
        try lab.record(CrashScenario.kv.workload)
        let report = try lab.explore(model: model, check: CrashScenario.kv.check)
        report.recordIssues()
        #expect(report.verdict == .passed)
        #expect(report.imagesChecked > 0)
    }

    /// Group commits of six records each: 15 to 20 uncertain lines per
    /// crash point, beyond the exhaustive limit.
    static func groupCommits(_ mapping: TrackedMapping, _ promises: Promises<UInt64>) throws {
        let log = try WriteAheadLog(mapping: mapping)
        for _ in 0..<30 {
            var group: [UInt64] = []
            for _ in 0..<6 {
                let lsn = try log.append(payload(log.nextLSN) + Array(repeating: 0xA5, count: 100))
                promises.begin(lsn)
                group.append(lsn)
            }
            try log.commit()
            for lsn in group { promises.acknowledge(lsn) }
        }
    }

    @Test("The write-ahead log recovers from at least 10,000 distinct crash images", .tags(.stress))
    func tenThousandImages() throws {
        let lab = try CrashLab<UInt64>(length: 1 << 20)
        try lab.record(Self.groupCommits)
        let report = try lab.explore(model: .adr) { image in
            let log = try WriteAheadLog(mapping: image.mapping)
            for lsn in image.acknowledged { try image.require(lsn < log.nextLSN, "acknowledged record \(lsn) lost") }
            try image.require(log.nextLSN <= (image.acknowledged + image.inFlight).max().map { $0 + 1 } ?? 1, "a record nobody appended")
        }
        report.recordIssues()
        #expect(report.verdict == .passed)
        #expect(report.imagesChecked >= 10_000, "\(report)")
        print(report)
    }

    /// The cache-flush path needs libpmem to take /dev/shm for persistent
    /// memory, which it decides once per process: an exit test.
    @Test("On the cache-flush path, mprotect: the log passes and a seeded bug is caught", .tags(.exitTest))
    func cacheFlushPath() async {
        await #expect(processExitsWith: .success) { try Self.cacheFlushPath(tracking: .mprotect) }
    }

    @Test("On the cache-flush path, userfaultfd: the log passes and a seeded bug is caught",
          .enabled(if: LabBackends.all.contains(.userfaultfd)), .tags(.exitTest))
    func userfaultfdCacheFlushPath() async {
        await #expect(processExitsWith: .success) { try Self.cacheFlushPath(tracking: .userfaultfd) }
    }

    static func cacheFlushPath(tracking: TrackedMapping.TrackingMode) throws {
        // libpmem reads this once, at its first pmem_is_pmem call, which has
        // not happened yet in this fresh process.
        setenv("PMEM_IS_PMEM_FORCE", "1", 1)
        let configuration = TrackedMapping.Configuration(flushMode: .cacheFlush, tracking: tracking)
        let lab = try CrashLab<UInt64>(length: 1 << 20, configuration: configuration, directory: "/dev/shm")
        try lab.record(workload(records: 20))
        let report = try lab.explore(model: .adr, check: check)
        #expect(report.verdict == .passed)
        let zoo = try CrashLab<UInt64>(length: 64 << 10, configuration: configuration, directory: "/dev/shm")
        try zoo.record(ZooBug.acknowledgeBeforeSync.workload(buggy: true))
        let caught = try zoo.explore(model: .adr) { try ZooBug.acknowledgeBeforeSync.check(buggy: true, $0) }
        #expect(caught.verdict == .failed)
        guard report.verdict == .passed, caught.verdict == .failed else { exit(1) }
    }
}
