import ExampleWorkloads
import PmemTrack
import PmemTrackCrashLab
import Testing

/// The example write-ahead log under the crash lab: its recovery keeps every
/// acknowledged record and invents none, in every image of every model.
@Suite struct WriteAheadLogCrashTests {
    static func payload(_ lsn: UInt64) -> [UInt8] { Array("record \(lsn) ".utf8) + Array(repeating: UInt8(truncatingIfNeeded: lsn), count: Int(lsn % 90)) }

    /// Appends and commits `records` records, one commit each, with a
    /// truncation half-way: the lab sees header updates as well as appends.
    static func workload(records: Int) -> (TrackedMapping, Promises<UInt64>) throws -> Void {
        { mapping, promises in
            let log = try WriteAheadLog(mapping: mapping)
            for _ in 0..<records {
                let lsn = try log.append(payload(log.nextLSN))
                promises.begin(lsn)
                try log.commit()
                promises.acknowledge(lsn)
                if lsn == UInt64(records / 2) { try log.truncate(before: lsn - 2) }
            }
        }
    }

    /// Recovery's promises: every acknowledged record is there, every record
    /// there was acknowledged or in flight, and each holds what was appended.
    static func check(_ image: CrashImage<UInt64>) throws {
        let log = try WriteAheadLog(mapping: image.mapping)
        var found: [UInt64] = []
        log.forEachRecord { lsn, bytes in found.append(lsn) ; _ = bytes }
        let promised = Set(image.acknowledged).union(image.inFlight)
        for lsn in image.acknowledged where lsn >= log.firstLSN {
            try image.require(lsn < log.nextLSN, "acknowledged record \(lsn) lost")
        }
        try image.require(found.allSatisfy { promised.contains($0) }, "a record nobody appended")
        try log.forEachRecord { lsn, bytes in
            try image.require(Array(bytes) == payload(lsn), "record \(lsn) holds other bytes")
        }
    }

    @Test(arguments: [CrashModel.adr, .adrTornWords, .eadr, .pageCache(), .pageCache(sector: 512), .processCrash])
    func recoversFromEveryImage(model: CrashModel) throws {
        let lab = try CrashLab<UInt64>(length: 1 << 20, configuration: .init(tracking: .mprotect))
        try lab.record(Self.workload(records: 40))
        let report = try lab.explore(model: model, check: Self.check)
        report.recordIssues()
        #expect(report.verdict == .passed)
        #expect(report.imagesChecked > 0)
    }
}
