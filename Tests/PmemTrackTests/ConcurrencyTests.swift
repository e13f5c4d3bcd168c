import Foundation
import Synchronization
import Testing
@testable import PmemTrack

@Suite("Concurrency smoke test")
struct ConcurrencyTests {
    /// Four writers store at random offsets while a fifth thread syncs.
    /// Nothing crashes, every store lands, and a final sync leaves nothing
    /// dirty and (mprotect) every block read-only.
    @Test("4 writers and a syncing thread", .tags(.stress), arguments: [4096, 65536], Backends.all)
    func writersAndSyncer(blockSize: Int, tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile()
        let length = 16 << 20
        let map = try TrackedMapping(path: file.path, length: length, options: [.create],
                                     configuration: .init(blockSize: blockSize, tracking: tracking))
        defer { try? map.close() }
        // Raw pointers are not Sendable; the writers share the mapping on purpose.
        nonisolated(unsafe) let bytes = map.bytes
        let writersDone = Atomic(0)
        let syncErrors = Atomic(0)
        let syncs = Atomic(0)
        let slots = length / 8 / 4   // each writer owns a quarter of the 8-byte slots

        let writers = (0..<4).map { writer in
            Thread {
                var rng = SystemRandomNumberGenerator()
                for sequence in 1...20_000 {
                    let slot = writer * slots + Int.random(in: 0..<slots, using: &rng)
                    bytes.storeBytes(of: UInt64(writer << 32 | sequence), toByteOffset: slot * 8, as: UInt64.self)
                }
                writersDone.add(1, ordering: .sequentiallyConsistent)
            }
        }
        let syncer = Thread {
            var rng = SystemRandomNumberGenerator()
            while writersDone.load(ordering: .sequentiallyConsistent) < 4 {
                do {
                    if Bool.random(using: &rng) {
                        try map.sync()
                    } else {
                        try map.sync(offset: Int.random(in: 0..<length / 2, using: &rng), length: length / 4)
                    }
                } catch { syncErrors.add(1, ordering: .relaxed) }
                syncs.add(1, ordering: .relaxed)
            }
        }
        writers.forEach { $0.start() }
        syncer.start()
        join(writers + [syncer], what: "the writers to make their stores and the syncer to return", timeout: Bound.work)

        #expect(syncErrors.load(ordering: .relaxed) == 0)
        #expect(syncs.load(ordering: .relaxed) > 0)
        try map.sync()
        #expect(map.dirtyRanges().isEmpty)
        #expect(map.statistics.dirtyBlocks == 0)
        for offset in stride(from: 0, to: length, by: length / 64) where tracking == .mprotect {
            #expect(!ProcessMaps.isWritable(map.bytes, at: offset))
        }
        // The file holds what the mapping holds.
        let contents = try #require(FileManager.default.contents(atPath: file.path))
        #expect(contents.elementsEqual(UnsafeRawBufferPointer(map.bytes)))
    }

    /// The fault handler finds regions in a lock-free registry. Mappings are
    /// opened and closed on some threads while others fault in their own
    /// mappings; every fault must find its own region and nothing else.
    @Test("open and close on some threads while others fault in their own mappings")
    func registryChurn() throws {
        let stop = Atomic(false)
        let churnErrors = Atomic(0)
        let churners = (0..<2).map { _ in
            Thread {
                let file = TemporaryFile(in: "/dev/shm")
                while !stop.load(ordering: .relaxed) {
                    do {
                        let map = try TrackedMapping(path: file.path, length: 256 << 10, options: [.create])
                        map.bytes[4096] = 1
                        if map.dirtyRanges() != [4096..<8192] { churnErrors.add(1, ordering: .relaxed) }
                        try map.close()
                    } catch { churnErrors.add(1, ordering: .relaxed) }
                }
            }
        }
        churners.forEach { $0.start() }
        // tmpfs: the point is faults and registry churn, not disk writeback.
        let files = (0..<2).map { _ in TemporaryFile(in: "/dev/shm") }
        let maps = try files.map { try TrackedMapping(path: $0.path, length: 4 << 20, options: [.create]) }
        let writers = maps.map { map in
            Thread {
                for round in 0..<20 {
                    for block in stride(from: round % 2, to: 1024, by: 2) { map.bytes[block * 4096] = UInt8(round) }
                    try! map.sync()
                }
            }
        }
        writers.forEach { $0.start() }
        join(writers, what: "the writers to make 20 rounds of stores and syncs", timeout: Bound.work)
        stop.store(true, ordering: .relaxed)
        join(churners, what: "the churning threads to stop")

        #expect(churnErrors.load(ordering: .relaxed) == 0)
        for map in maps {
            #expect(map.statistics.writeFaults == 20 * 512)
            #expect(map.dirtyRanges().isEmpty)
            try map.close()
        }
    }
}
