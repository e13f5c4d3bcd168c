import ExampleWorkloads
import Glibc
import CrashZoo
import PmemTrack
@testable import PmemTrackCrashLab
import Testing

/// The tracking backends this machine offers (userfaultfd where the kernel has it).
enum LabBackends {
    static let all: [TrackedMapping.TrackingMode] =
        TrackedMapping.TrackingMode.automaticChoice(forPath: "/tmp").mode == .userfaultfd ? [.mprotect, .userfaultfd] : [.mprotect]
}

/// What each model generates, and the lab's bookkeeping: replay IDs,
/// budgets, minimisation, bad input.
@Suite struct CrashLabTests {
    /// Five values in five lines of one page, written and never synced, then
    /// a marker: five uncertain lines at the marker.
    static func fiveLines(_ mapping: TrackedMapping, _ promises: Promises<UInt64>) throws {
        for i in 0..<5 { mapping.bytes.storeBytes(of: UInt64(i + 1) * 0x0101_0101, toByteOffset: i * 64 + 8, as: UInt64.self) }
        mapping.crashPoint("five lines")
    }

    static func lines(_ image: CrashImage<UInt64>) -> [UInt64] {
        (0..<5).map { image.bytes.load(fromByteOffset: $0 * 64 + 8, as: UInt64.self) }
    }

    @Test("ADR, exhaustive: every one of the 2^5 subsets of five lines, each line durable or current", arguments: LabBackends.all)
    func exhaustiveGeneratesEverySubset(tracking: TrackedMapping.TrackingMode) throws {
        let lab = try CrashLab<UInt64>(length: 64 << 10, configuration: .init(tracking: tracking))
        try lab.record(Self.fiveLines)
        var seen = Set<[UInt64]>()
        let report = try lab.explore(model: .adr, strategy: .exhaustive()) { image in
            let values = Self.lines(image)
            for (i, value) in values.enumerated() { #expect(value == 0 || value == UInt64(i + 1) * 0x0101_0101) }
            if case .marker = image.point.kind { seen.insert(values) }
        }
        #expect(seen.count == 32)
        #expect(report.verdict == .passed)
        #expect(report.coverage.first { $0.point.kind == .marker("five lines") }?.units == 5)
        // The end of the workload allows the same images: all skipped.
        #expect(report.coverage.last?.imagesChecked == 0 && report.coverage.last?.duplicatesSkipped == 32)
    }

    @Test("Whatever a check writes, synced or not, is gone before the next image", arguments: LabBackends.all)
    func checksDoNotLeak(tracking: TrackedMapping.TrackingMode) throws {
        let lab = try CrashLab<UInt64>(length: 64 << 10, configuration: .init(tracking: tracking))
        try lab.record(Self.fiveLines)
        let report = try lab.explore(model: .adr) { image in
            for offset in [4096, 8192, 40960] {
                try image.require(image.bytes[offset] == 0, "a previous check's write at \(offset) leaked")
                image.bytes[offset] = 0xEE
            }
            image.bytes[8] = 0xEE   // over a unit the image applied, or not
            try image.mapping.sync(offset: 8192, length: 1)
        }
        #expect(report.verdict == .passed)
        #expect(report.imagesChecked == 32)
    }

    @Test("A ranged sync's crash points see writes outside its range too", arguments: LabBackends.all)
    func rangedSyncSeesTheWholeMapping(tracking: TrackedMapping.TrackingMode) throws {
        let lab = try CrashLab<UInt64>(length: 64 << 10, configuration: .init(tracking: tracking))
        try lab.record { mapping, _ in
            mapping.bytes[40960] = 7            // never synced
            mapping.bytes[8] = 1
            try mapping.sync(offset: 0, length: 16)
        }
        var seen: [CrashPointKind: UInt8] = [:]
        _ = try lab.explore(model: .eadr) { image in seen[image.point.kind] = image.bytes[40960] }
        // (Later points show the same image, skipped as duplicates.)
        #expect(seen[.beforeSync] == 7 && seen.values.allSatisfy { $0 == 7 }, "\(seen)")
        // And under ADR that byte is uncertain at each of them.
        let report = try lab.explore(model: .adr, strategy: .exhaustive()) { _ in }
        #expect(report.coverage.filter { $0.point.kind == .beforeSync }.map(\.units) == [2])
    }

    @Test("eADR and process crash: the crash point's snapshot only")
    func snapshotModels() throws {
        let lab = try CrashLab<UInt64>(length: 64 << 10)
        try lab.record(Self.fiveLines)
        for model in [CrashModel.eadr, .processCrash] {
            var images: [[UInt64]] = []
            let report = try lab.explore(model: model) { image in
                if case .marker = image.point.kind { images.append(Self.lines(image)) }
            }
            #expect(images == [(1...5).map { UInt64($0) * 0x0101_0101 }])
            #expect(report.verdict == .passed)
        }
    }

    @Test("An aligned 8-byte word never tears; 8-byte tearing and sectors tear only at their unit", arguments: [
        CrashModel.adr, .adrTornWords, .pageCache(), .pageCache(sector: 512),
    ])
    func unitsAreTheOnlyGranularity(model: CrashModel) throws {
        let lab = try CrashLab<UInt64>(length: 64 << 10)
        var generator = SplitMix64(seed: 7)
        let offsets = (0..<14).map { _ in Int(generator.next() % (16 << 10 / 8)) * 8 }
        try lab.record { mapping, _ in
            for (i, offset) in offsets.enumerated() { mapping.bytes.storeBytes(of: UInt64(i + 1) << 32 | 0xFFFF, toByteOffset: offset, as: UInt64.self) }
            try mapping.sync(offset: 0, length: 4096)
            for (i, offset) in offsets.enumerated() { mapping.bytes.storeBytes(of: UInt64(i + 101) << 32 | 0xEEEE, toByteOffset: offset, as: UInt64.self) }
        }
        let report = try lab.explore(model: model, strategy: .default, budget: .images(3000)) { image in
            for offset in offsets {
                let word = image.bytes.load(fromByteOffset: offset, as: UInt64.self)
                let low = word & 0xFFFF_FFFF
                #expect(low == 0 || low == 0xFFFF || low == 0xEEEE, "torn word at \(offset) under \(model)")
            }
            // Every unit is the durable one or the current one as a whole.
            guard model.unitSize >= 512 else { return }
            for unit in stride(from: 0, to: 16 << 10, by: model.unitSize) {
                let words = offsets.filter { $0 / model.unitSize * model.unitSize == unit }
                let states = Set(words.map { image.bytes.load(fromByteOffset: $0, as: UInt64.self) & 0xFFFF_FFFF })
                #expect(states.count <= 1, "unit at \(unit) is partly written under \(model)")
            }
        }
        #expect(report.failures.isEmpty)
        #expect(report.imagesChecked > 1)
    }

    @Test("A minimal failure names exactly the commit word's line present and the redo record's line absent, and its replay ID reproduces it")
    func minimisationAndReplay() throws {
        let lab = try CrashLab<UInt64>(length: 64 << 10)
        try lab.record(ZooBug.commitInSameWindow.workload(buggy: true))
        let check = { (image: CrashImage<UInt64>) throws in try ZooBug.commitInSameWindow.check(buggy: true, image) }
        let report = try lab.explore(model: .adr, check: check)
        let failure = try #require(report.failures.first)
        // The store's commit word (offset 504) is durable, the first slot
        // image of the redo record it commits (1024) is not: batch 1.
        #expect(failure.present.map(\.range) == [448..<512])
        #expect(failure.absent.map(\.range) == [1024..<1088])
        #expect(failure.inFlight == [1])

        let id = try #require(CrashStateID(failure.replayID.description))
        #expect(id == failure.replayID)
        var replayed: (any Error)?
        let elapsed = try ContinuousClock().measure { replayed = try lab.replay(id, check: check) }
        print("replay of \(id) took \(elapsed)")
        #expect("\(try #require(replayed))" == failure.message)

        // Nothing present: the durable image alone passes. (IDs this
        // recording does not have are rows of the bad-input table,
        // PmemTrackTests/BadInputTests.swift.)
        let empty = CrashStateID(model: id.model, point: id.point, fingerprint: id.fingerprint, present: [])
        #expect(try lab.replay(empty, check: check) == nil)
    }

    @Test("Replay IDs parse only in their own format", arguments: [
        "", "adr", "adr/p1/0000000a", "adr/p1/000000a/+", "adr/px/0000000a/+", "foo/p1/0000000a/+",
        "adr/p1/0000000a/+3-1", "adr/p1/0000000a/+5,2", "adr/p-1/0000000a/+", "adr/p1/0000000a/+1-99999999999",
    ])
    func malformedReplayIDs(text: String) {
        #expect(CrashStateID(text) == nil)
    }

    @Test func replayIDRoundTrip() throws {
        for text in ["adr/p0/00000000/+", "page-cache-512/p12/deadbeef/+1,3-5,9", "eadr/p3/0000ffff/+", "adr-words/p7/12345678/+0-2"] {
            #expect(CrashStateID(text)?.description == text)
        }
    }

    @Test("A budget cut is reported as not measured, never as a pass")
    func budgetCut() throws {
        let lab = try CrashLab<UInt64>(length: 1 << 20)
        try lab.record(WriteAheadLogCrashTests.workload(records: 20))
        let report = try lab.explore(model: .adr, budget: .images(5), check: WriteAheadLogCrashTests.check)
        #expect(report.verdict == .notMeasured)
        #expect(report.imagesChecked == 5)
        #expect(report.budgetCut != nil)
        #expect(report.coverage.last?.cut == true)
        withKnownIssue { report.recordIssues() }

        // A strategy that covers nothing at a crash point is not a pass either.
        let limited = try lab.explore(model: .adr, strategy: .exhaustive(limit: 0), check: WriteAheadLogCrashTests.check)
        #expect(limited.verdict == .notMeasured)
    }

    @Test("Failures are recorded as Swift Testing issues")
    func recordsIssues() throws {
        let lab = try CrashLab<UInt64>(length: 64 << 10)
        try lab.record(ZooBug.pointerBeforeTarget.workload(buggy: true))
        let report = try lab.explore(model: .pageCache()) { try ZooBug.pointerBeforeTarget.check(buggy: true, $0) }
        #expect(report.verdict == .failed)
        withKnownIssue { report.recordIssues() }
    }

    /// Bad arguments (lengths, models, strategies, budgets, configurations,
    /// replay IDs of another recording) are rows of the bad-input table:
    /// PmemTrackTests/BadInputTests.swift.
    @Test("Model names parse to the models they name")
    func modelNames() throws {
        #expect(try CrashModel(parsing: "page-cache-512") == .pageCache(sector: 512))
        for name in ["adr", "adr-words", "eadr", "page-cache", "page-cache-512", "process-crash"] {
            #expect(try CrashModel(parsing: name).description == name)
        }
    }

    @Test("A failed drain makes nothing durable: its runs stay uncertain")
    func failedDrainCommitsNothing() throws {
        let promises = Promises<UInt64>()
        let recorder = Recorder(length: 8192, blockSize: 4096, promiseEvents: { promises.count })
        let bytes: [UInt8] = Array(repeating: 9, count: 4096)
        bytes.withUnsafeBytes { recorder.didFlush(0..<4096, bytes: $0) }
        recorder.didDrain([0..<4096], succeeded: false)
        #expect(recorder.recording(of: promises).commits.isEmpty)
        bytes.withUnsafeBytes { recorder.didFlush(4096..<8192, bytes: $0) }
        recorder.didDrain([4096..<8192], succeeded: true)
        #expect(recorder.recording(of: promises).commits.map(\.offset) == [4096])
    }

    @Test("Strategies generate what they say", arguments: [0, 1, 5, 13, 70])
    func strategies(n: Int) {
        func subsets(_ strategy: CrashStrategy) -> [[Int]] {
            var all: [[Int]] = []
            strategy.forEachSubset(units: n, point: 0) { all.append($0); return true }
            return all
        }
        #expect(Set(subsets(.exhaustive())).count == (n <= 12 ? 1 << n : 0))
        #expect(subsets(.prefixes) == (0...n).map { Array(0..<$0) })
        #expect(subsets(.reversePrefixes) == (0...n).map { Array((n - $0)..<n) })
        #expect(subsets(.omitOne).count == n && subsets(.omitOne).allSatisfy { $0.count == n - 1 })
        let bounded = Set(subsets(.bounded(k: 2)))
        let expected = n <= 4 ? 1 << n : 2 * (1 + n + n * (n - 1) / 2)
        #expect(bounded.count == expected)
        #expect(bounded.allSatisfy { $0.count <= 2 || $0.count >= n - 2 })
        #expect(subsets(.random(count: 10, seed: 3)) == subsets(.random(count: 10, seed: 3)))
        #expect(subsets(.random(count: 10, seed: 3)).count == 10)
    }
}
