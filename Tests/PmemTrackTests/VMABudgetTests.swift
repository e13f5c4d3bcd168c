import CPmemTrack
import Foundation
import Testing
@testable import PmemTrack

/// The VMA limit: however scattered the writes, PmemTrack's writable islands
/// stay within its budget (a quarter of vm.max_map_count), coarsening under
/// pressure, and nothing is lost. Exit tests: the budget is process-wide.
@Suite("VMA budget")
struct VMABudgetTests {
    /// Writes `pages` (4 KiB page indexes) of each mapping with a stamp per
    /// round, checks the process's VMAs against the budget, syncs, and
    /// checks every stamp reached the media image.
    static func run(_ maps: [(TrackedMapping, MediaImage)], pages: (Int) -> [Int], rounds: Int = 2) throws {
        let budget = Int(pmt_vma_budget())
        let baseline = ProcessMaps.vmaCount
        for round in 1...rounds {
            for (m, (map, _)) in maps.enumerated() {
                for page in pages(m) {
                    map.bytes.storeBytes(of: UInt64(round << 40 | m << 32 | page), toByteOffset: page * 4096 + 8 * round, as: UInt64.self)
                }
            }
            let vmas = ProcessMaps.vmaCount - baseline
            precondition(vmas <= budget, "round \(round): \(vmas) VMAs over the baseline, budget \(budget)")
            for (map, _) in maps { try map.sync() }
            for (m, (map, image)) in maps.enumerated() {
                precondition(map.dirtyRanges().isEmpty)
                image.withStableImage { media in
                    for page in pages(m) {
                        let found = media.load(fromByteOffset: page * 4096 + 8 * round, as: UInt64.self)
                        precondition(found == UInt64(round << 40 | m << 32 | page), "lost: mapping \(m) page \(page) round \(round)")
                    }
                }
            }
        }
        let stats = maps.map { $0.0.statistics }
        precondition(stats.reduce(0) { $0 + $1.coarsenedBlocks } > 0, "expected coarsening")
        precondition(stats.allSatisfy { $0.degradedEvents == 0 }, "the budget should keep mprotect from failing")
    }

    static func mappings(_ count: Int, length: Int) throws -> [(TrackedMapping, MediaImage, TemporaryFile)] {
        try (0..<count).map { _ in
            let file = TemporaryFile(in: "/dev/shm")
            let image = MediaImage(length: length)
            return (try TrackedMapping.forTesting(path: file.path, length: length, flusher: image), image, file)
        }
    }

    @Test("1 GiB, every other 4 KiB page written between syncs")
    func everyOtherPage() async {
        await #expect(processExitsWith: .success) {
            let maps = try Self.mappings(1, length: 1 << 30)
            try Self.run(maps.map { ($0.0, $0.1) }) { _ in Array(stride(from: 0, to: 262_144, by: 2)) }
        }
    }

    @Test("16 mappings at once, every other page of each")
    func sixteenMappings() async {
        await #expect(processExitsWith: .success) {
            let maps = try Self.mappings(16, length: 64 << 20)
            try Self.run(maps.map { ($0.0, $0.1) }) { _ in Array(stride(from: 0, to: 16_384, by: 2)) }
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
