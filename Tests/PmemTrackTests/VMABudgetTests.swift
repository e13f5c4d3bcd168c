import CPmemTrack
import Foundation
import SystemPackage
import Testing
@testable import PmemTrack

/// The VMA limit: however scattered the writes, PmemTrack's writable islands
/// stay within its budget (a quarter of vm.max_map_count), coarsening under
/// pressure, and nothing is lost. Exit tests: the budget is process-wide.
@Suite("VMA budget", .tags(.exitTest, .stress))
struct VMABudgetTests {
    /// Writes `pages` (4 KiB page indexes) of each mapping with a stamp per
    /// round, checks the process's VMAs against the budget, syncs, and
    /// checks every stamp reached the media image.
    /// With `exact`, the pages of a round are ascending, so no page is
    /// written after coarsening made it dirty, and the flush count is exact.
    static func run(_ maps: [(TrackedMapping, MediaImage)], pages: (Int) -> [Int], rounds: Int = 2, exact: Bool = false) throws {
        let bound = vmaBound(mappings: maps.count)
        // Only the mappings' own VMAs: the budget is about the islands
        // PmemTrack makes, not about whatever else the process maps.
        let buffers = maps.map { $0.0.bytes }
        let baseline = ProcessMaps.vmaCount(within: buffers)
        for round in 1...rounds {
            let before = maps.map { $0.0.statistics }
            for (m, (map, _)) in maps.enumerated() {
                for page in pages(m) {
                    map.bytes.storeBytes(of: UInt64(round << 40 | m << 32 | page), toByteOffset: page * 4096 + 8 * round, as: UInt64.self)
                }
            }
            let vmas = ProcessMaps.vmaCount(within: buffers) - baseline
            #expect(vmas <= bound, "round \(round): \(vmas) VMAs over the baseline, bound \(bound)")
            for (map, _) in maps { try map.sync() }
            for (m, (map, image)) in maps.enumerated() {
                #expect(map.dirtyRanges().isEmpty)
                // Coarsening extends a stretch only to the nearest dirty
                // block, so the sync flushed the pages written plus at most
                // the blocks coarsening counted (exactly that many when no
                // page is written after coarsening dirtied it).
                let after = map.statistics
                let written = UInt64(Set(pages(m)).count)
                let extra = after.mprotect!.coarsenedBlocks - before[m].mprotect!.coarsenedBlocks
                let flushed = after.blocksFlushed - before[m].blocksFlushed
                #expect(exact ? flushed == written + extra : (written...(written + extra)).contains(flushed),
                        "round \(round): flushed \(flushed) blocks for \(written) written and \(extra) coarsened")
                let lost = image.withStableImage { media in
                    pages(m).first { page in
                        media.load(fromByteOffset: page * 4096 + 8 * round, as: UInt64.self) != UInt64(round << 40 | m << 32 | page)
                    }
                }
                #expect(lost == nil, "lost: mapping \(m) page \(lost ?? -1) round \(round)")
            }
        }
        let stats = maps.map { $0.0.statistics }
        #expect(stats.reduce(0) { $0 + $1.mprotect!.coarsenedBlocks } > 0, "expected coarsening")
        #expect(stats.allSatisfy { $0.mprotect!.degradedEvents == 0 }, "the budget should keep mprotect from failing")
    }

    /// The most VMAs the tracked mappings may add over their own one each:
    /// the budget, plus the one island that a region without a dirty block
    /// still opens once the budget is reached (see pmt_region.h), at two
    /// VMAs per island (the island and the read-only rest it splits off).
    static func vmaBound(mappings: Int) -> Int {
        Int(pmt_vma_budget()) + 2 * mappings
    }

    static func mappings(_ count: Int, length: Int) throws -> [(TrackedMapping, MediaImage, TemporaryFile)] {
        try (0..<count).map { _ in
            let file = TemporaryFile(in: "/dev/shm")
            let image = try MediaImage(length: length)
            let map = try TrackedMapping.forTesting(path: file.path, length: length, flusher: image)
            // The child process may be killed (OOM, watchdog) before its
            // deinitializers run; an unlinked file cannot be left behind.
            unlink(file.path)
            return (map, image, file)
        }
    }

    @Test("1 GiB, every other 4 KiB page written between syncs")
    func everyOtherPage() async {
        await #expect(processExitsWith: .success) {
            let maps = try Self.mappings(1, length: 1 << 30)
            try Self.run(maps.map { ($0.0, $0.1) }, pages: { _ in Array(stride(from: 0, to: 262_144, by: 2)) }, exact: true)
        }
    }

    /// 16 mappings of 1 GiB, every other page of each: 8 GiB written per
    /// round. A full media image of 16 GiB would not fit in memory, so the
    /// oracle here records, at each flush, only the stamp words of the pages
    /// written (which is all the check reads).
    @Test("16 mappings of 1 GiB at once, every other page of each")
    func sixteenMappings() async {
        await #expect(processExitsWith: .success) {
            let pages = 262_144
            let files = (0..<16).map { _ in TemporaryFile(in: "/dev/shm") }
            let samples = (0..<16).map { _ in StampSampler(pages: pages) }
            let maps = try (0..<16).map { m in
                try TrackedMapping.forTesting(path: files[m].path, length: 1 << 30, flusher: samples[m])
            }
            // As in `mappings`: nothing is left in /dev/shm if the child dies.
            for file in files { unlink(file.path) }
            let bound = Self.vmaBound(mappings: maps.count)
            let buffers = maps.map(\.bytes)
            let baseline = ProcessMaps.vmaCount(within: buffers)
            for round in 1...2 {
                for (m, map) in maps.enumerated() {
                    for page in stride(from: 0, to: pages, by: 2) {
                        map.bytes.storeBytes(of: UInt64(round << 40 | m << 32 | page), toByteOffset: page * 4096 + 8 * round, as: UInt64.self)
                    }
                }
                let vmas = ProcessMaps.vmaCount(within: buffers) - baseline
                #expect(vmas <= bound, "round \(round): \(vmas) VMAs over the baseline, bound \(bound)")
                for map in maps { try map.sync() }
                for (m, map) in maps.enumerated() {
                    #expect(map.dirtyRanges().isEmpty)
                    let lost = stride(from: 0, to: pages, by: 2).first { page in
                        samples[m].sample(page: page, round: round) != UInt64(round << 40 | m << 32 | page)
                    }
                    #expect(lost == nil, "lost: mapping \(m) page \(lost ?? -1) round \(round)")
                }
            }
            #expect(maps.reduce(0) { $0 + $1.statistics.mprotect!.coarsenedBlocks } > 0, "expected coarsening")
            #expect(maps.allSatisfy { $0.statistics.mprotect!.degradedEvents == 0 })
            for map in maps { try map.close() }
        }
    }

    @Test("random scattered pages")
    func randomScattered() async {
        await #expect(processExitsWith: .success) {
            let maps = try Self.mappings(1, length: 1 << 30)
            var random = FastRandom(seed: 42)
            let pages = (0..<60_000).map { _ in Int.random(in: 0..<262_144, using: &random) }
            try Self.run(maps.map { ($0.0, $0.1) }) { _ in pages }
        }
    }
}

/// A partial media image: at each flush, the words at offsets 8 and 16 of
/// every even page in the run (the stamps the VMA tests write), as they are
/// at that moment. Odd pages are never read, so their holes stay unallocated.
final class StampSampler: Flusher, @unchecked Sendable {
    private let lock = NSLock()
    private var words: [UInt64]

    init(pages: Int) { words = [UInt64](repeating: 0, count: pages) }

    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        let first = (run.offset / 4096 + 1) / 2 * 2
        lock.withLock {
            for page in stride(from: first, to: run.range.upperBound / 4096, by: 2) {
                for round in 1...2 {
                    words[page + round - 1] = run.bytes.load(fromByteOffset: page * 4096 - run.offset + 8 * round, as: UInt64.self)
                }
            }
        }
        return MsyncFlusher().flush(run)
    }

    func drain() -> Result<Void, Errno> { .success(()) }

    func sample(page: Int, round: Int) -> UInt64 { lock.withLock { words[page + round - 1] } }
}
