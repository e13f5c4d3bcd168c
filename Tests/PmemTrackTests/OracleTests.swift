import Foundation
import Testing
@testable import PmemTrack

/// The persistence oracle under stress: the correct protocol loses nothing,
/// and each broken variant is caught.
///
/// `PMEMTRACK_SOAK_SECONDS=N swift test --filter OracleTests` runs each
/// stress for at least N seconds (a long soak) instead of the bounded run.
@Suite("Persistence oracle", .serialized, .tags(.stress))
struct OracleTests {
    static var soakSeconds: Double {
        ProcessInfo.processInfo.environment["PMEMTRACK_SOAK_SECONDS"].flatMap(Double.init) ?? 0
    }

    @Test("4 writers, 2 syncers: every store that completed before a sync is in the media image", arguments: [4096, 65536])
    func stress(blockSize: Int) throws {
        let stress = try OracleStress(.init(blockSize: blockSize, stores: 1_000_000, minimumSeconds: Self.soakSeconds))
        try Self.expectNothingLost(stress)
    }

    /// The userfaultfd backend on each flush path: an ordinary file written
    /// back by msync, and a tmpfs file written back by cache-line flushes.
    @Test(
        "userfaultfd: 4 writers, 2 syncers, each flush path: every store that completed before a sync is in the media image",
        .enabled(if: Backends.userfaultfdAvailable), arguments: OracleStress.FlushPath.allCases)
    func userfaultfdStress(flushPath: OracleStress.FlushPath) throws {
        let stress = try OracleStress(.init(
            stores: 1_000_000, minimumSeconds: Self.soakSeconds, tracking: .userfaultfd, flushPath: flushPath))
        try Self.expectNothingLost(stress)
        #expect(stress.map.trackingMode == .userfaultfd)
    }

    static func expectNothingLost(_ stress: OracleStress) throws {
        let report = stress.run()
        print("oracle stress: \(report)")
        #expect(report.lost.isEmpty, "\(report.lost.prefix(3))")
        #expect(report.stores >= 1_000_000)
        #expect(report.syncs >= 10)
        try stress.map.sync()
        #expect(stress.map.dirtyRanges().isEmpty)
    }

    @Test("with the perturbation the mutant runs use, the correct protocol still loses nothing", arguments: Backends.all)
    func perturbedStress(tracking: TrackedMapping.TrackingMode) throws {
        let stress = try OracleStress(.init(stores: 200_000, perturb: true, tracking: tracking))
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
    /// The stress the mutant runs use, perturbed. userfaultfd's races need
    /// collects close together, and a page left unwritten between them (a
    /// later store to the page makes the next collect flush it whole, which
    /// hides the loss): on that backend it is a small mapping, whose checks
    /// are quick, four syncers, slow writers and the faster cache-flush path.
    static func mutantConfiguration(
        _ tracking: TrackedMapping.TrackingMode, mutant: ProtocolMutant?, stores: Int
    ) -> OracleStress.Configuration {
        let userfaultfd = tracking == .userfaultfd
        return .init(
            length: userfaultfd ? 256 << 10 : 4 << 20, syncers: userfaultfd ? 4 : 2,
            stores: stores, stopAtFirstLoss: mutant != nil, perturb: true, mutant: mutant,
            writerPauseMicroseconds: userfaultfd ? 50 : 0, tracking: tracking,
            flushPath: userfaultfd ? .cacheFlush : .msync)
    }

    @Test("userfaultfd: the correct protocol loses nothing under the stress that catches its mutants",
          .enabled(if: Backends.userfaultfdAvailable))
    func userfaultfdRaceStress() throws {
        let stress = try OracleStress(Self.mutantConfiguration(.userfaultfd, mutant: nil, stores: 100_000))
        let report = stress.run()
        print("oracle stress, userfaultfd races: \(report)")
        #expect(report.lost.isEmpty, "\(report.lost.prefix(3))")
        #expect(report.syncs >= 1000)
    }

    /// Every mutant on every backend whose code it changes.
    static let mutantCases: [(ProtocolMutant, TrackedMapping.TrackingMode)] = ProtocolMutant.allCases.flatMap { mutant in
        mutant.backends.filter(Backends.all.contains).map { (mutant, $0) }
    }

    @Test("the oracle catches each broken protocol", arguments: mutantCases)
    func catchesMutant(mutant: ProtocolMutant, tracking: TrackedMapping.TrackingMode) throws {
        let bound = 2_000_000
        let stress = try OracleStress(Self.mutantConfiguration(tracking, mutant: mutant, stores: bound))
        let report = stress.run()
        print("oracle vs mutant \(mutant) (\(tracking)): \(report)")
        let first = try #require(report.lost.first, "mutant \(mutant) (\(tracking)) survived \(report.stores) stores")
        print("oracle vs mutant \(mutant) (\(tracking)): first lost store: \(first)")
        #expect(report.stores <= bound + 10_000)
    }

    /// Random flush failures: each reaches its caller with the errno and the
    /// range, and loses no DIRTY bit, because every later successful sync
    /// still finds every earlier store in the media image.
    @Test("random EIO and ENOSPC flush failures lose no store and are reported with errno and range", arguments: Backends.all)
    func randomFlushFailures(tracking: TrackedMapping.TrackingMode) throws {
        let stress = try OracleStress(.init(stores: 300_000, flushFailurePercent: 10, tracking: tracking))
        let report = stress.run()
        print("oracle stress, 10% flush failures: \(report)")
        #expect(report.lost.isEmpty, "\(report.lost.prefix(3))")
        #expect(report.malformedFailures.isEmpty, "\(report.malformedFailures.prefix(3))")
        #expect(report.failedSyncs > 0)
        #expect(report.syncs > report.failedSyncs, "some syncs succeeded and were checked")
    }
}
