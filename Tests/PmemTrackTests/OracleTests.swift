import Foundation
import Testing
@testable import PmemTrack

/// The persistence oracle under stress: the correct protocol loses nothing,
/// and each broken variant is caught.
///
/// `PMEMTRACK_SOAK_SECONDS=N swift test --filter OracleTests` runs each
/// stress for at least N seconds (a long soak) instead of the bounded run.
@Suite("Persistence oracle", .serialized)
struct OracleTests {
    static var soakSeconds: Double {
        ProcessInfo.processInfo.environment["PMEMTRACK_SOAK_SECONDS"].flatMap(Double.init) ?? 0
    }

    @Test("4 writers, 2 syncers: every store that completed before a sync is in the media image", arguments: [4096, 65536])
    func stress(blockSize: Int) throws {
        let stress = try OracleStress(.init(blockSize: blockSize, stores: 1_000_000, minimumSeconds: Self.soakSeconds))
        let report = stress.run()
        print("oracle stress: \(report)")
        #expect(report.lost.isEmpty, "\(report.lost.prefix(3))")
        #expect(report.stores >= 1_000_000)
        #expect(report.syncs >= 10)
        try stress.map.sync()
        #expect(stress.map.dirtyRanges().isEmpty)
    }

    @Test("with the perturbation the mutant runs use, the correct protocol still loses nothing")
    func perturbedStress() throws {
        let stress = try OracleStress(.init(stores: 200_000, perturb: true))
        let report = stress.run()
        print("oracle stress, perturbed: \(report)")
        #expect(report.lost.isEmpty, "\(report.lost.prefix(3))")
    }

    /// Drains shared by many runs, as on ordinary files (FileSyncFlusher):
    /// each run stays locked and protected until the drain that makes it
    /// durable; with failures, a failed drain fails every run it covered.
    @Test("batched drains: no store lost, with perturbation and with failing drains")
    func batchedDrains() throws {
        for configuration in [
            OracleStress.Configuration(stores: 500_000, runsPerDrain: 64),
            OracleStress.Configuration(stores: 200_000, perturb: true, runsPerDrain: 8),
            OracleStress.Configuration(stores: 200_000, flushFailurePercent: 10, runsPerDrain: 16),
        ] {
            let stress = try OracleStress(configuration)
            let report = stress.run()
            print("oracle stress, batched drains: \(report)")
            #expect(report.lost.isEmpty, "\(report.lost.prefix(3))")
            #expect(report.malformedFailures.isEmpty, "\(report.malformedFailures.prefix(3))")
            #expect(report.syncs > report.failedSyncs)
        }
    }

    /// Each broken protocol must lose a store, and the oracle must see it,
    /// within a bounded number of stores.
    @Test("the oracle catches each broken protocol", arguments: ProtocolMutant.allCases)
    func catchesMutant(mutant: ProtocolMutant) throws {
        let bound = 2_000_000
        let stress = try OracleStress(.init(stores: bound, stopAtFirstLoss: true, perturb: true, mutant: mutant))
        let report = stress.run()
        print("oracle vs mutant \(mutant): \(report)")
        let first = try #require(report.lost.first, "mutant \(mutant) survived \(report.stores) stores")
        print("oracle vs mutant \(mutant): first lost store: \(first)")
        #expect(report.stores <= bound + 10_000)
    }

    /// Random flush failures: each reaches its caller with the errno and the
    /// range, and loses no DIRTY bit, because every later successful sync
    /// still finds every earlier store in the media image.
    @Test("random EIO and ENOSPC flush failures lose no store and are reported with errno and range")
    func randomFlushFailures() throws {
        let stress = try OracleStress(.init(stores: 300_000, flushFailurePercent: 10))
        let report = stress.run()
        print("oracle stress, 10% flush failures: \(report)")
        #expect(report.lost.isEmpty, "\(report.lost.prefix(3))")
        #expect(report.malformedFailures.isEmpty, "\(report.malformedFailures.prefix(3))")
        #expect(report.failedSyncs > 0)
        #expect(report.syncs > report.failedSyncs, "some syncs succeeded and were checked")
    }
}
