import Foundation
import SystemPackage
import Testing
@testable import PmemTrack

@Suite("Tracking and sync")
struct TrackedMappingTests {
    static let blockSizes = [4096, 65536, 2 << 20]

    @Test("exactly the written blocks are dirty; sync flushes exactly those", arguments: blockSizes, Backends.all)
    func writeSyncRewrite(blockSize: Int, tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(
            path: file.path, length: 64 * blockSize, blockSize: blockSize, flusher: flusher, tracking: tracking)
        defer { try? map.close() }
        // With mprotect, clean blocks are read-only VMAs; with userfaultfd the
        // VMA stays writable and the kernel's page bits hold the state.
        let protects = tracking == .mprotect
        #expect(map.blockSize == blockSize)
        #expect(map.dirtyRanges().isEmpty)
        #expect(!protects || !ProcessMaps.isWritable(map.bytes, at: 0), "clean blocks start read-only")

        // Blocks 3, 4 (adjacent: one run), 10, and 63 (the last).
        let offsets = [3 * blockSize + 17, 4 * blockSize, 10 * blockSize + blockSize - 1, 63 * blockSize + 5]
        for offset in offsets { map.bytes[offset] = 0xA5 }
        let expected = [3 * blockSize..<5 * blockSize, 10 * blockSize..<11 * blockSize, 63 * blockSize..<64 * blockSize]
        #expect(map.dirtyRanges() == expected)
        #expect(map.statistics.writeFaults == 4)
        #expect(map.statistics.dirtyBlocks == 4)
        #expect(ProcessMaps.isWritable(map.bytes, at: 3 * blockSize))

        try map.sync()
        // One flush call per run of adjacent dirty blocks, nothing else.
        #expect(flusher.takeRuns() == expected)
        #expect(map.dirtyRanges().isEmpty)
        for offset in offsets where protects { #expect(!ProcessMaps.isWritable(map.bytes, at: offset), "read-only again") }
        let stats = map.statistics
        #expect(stats.blocksFlushed == 4 && stats.bytesFlushed == UInt64(4 * blockSize) && stats.flushCalls == 3)

        // A sync with nothing dirty flushes nothing.
        try map.sync()
        #expect(flusher.takeRuns().isEmpty)

        // A new write dirties its block again, and only it.
        map.bytes[10 * blockSize] = 1
        #expect(map.dirtyRanges() == [10 * blockSize..<11 * blockSize])
        #expect(map.statistics.writeFaults == 5)
        try map.sync()
        #expect(flusher.takeRuns() == [10 * blockSize..<11 * blockSize])

        // The data reached the file.
        let contents = try #require(FileManager.default.contents(atPath: file.path))
        #expect(contents[3 * blockSize + 17] == 0xA5 && contents[10 * blockSize] == 1)
    }

    @Test("a store that spans two blocks dirties both")
    func straddlingStore() throws {
        let file = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
        defer { try? map.close() }
        map.bytes.storeBytes(of: UInt64.max, toByteOffset: 4096 - 4, as: UInt64.self)
        #expect(map.dirtyRanges() == [0..<8192])
    }

    @Test("sync(offset:length:) flushes only the dirty blocks overlapping the range")
    func rangedSync() throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let block = 4096
        let map = try TrackedMapping.forTesting(path: file.path, length: 32 * block, flusher: flusher)
        defer { try? map.close() }
        for b in [1, 2, 5, 9, 20] { map.bytes[b * block + 100] = UInt8(b) }

        // Bytes 2.5 blocks to 5.0 blocks: touches blocks 2, 3, 4; only 2 is dirty.
        try map.sync(offset: 2 * block + block / 2, length: 2 * block + block / 2)
        #expect(flusher.takeRuns() == [2 * block..<3 * block])
        // One byte inside block 5, partial at both ends.
        try map.sync(offset: 5 * block + 7, length: 1)
        #expect(flusher.takeRuns() == [5 * block..<6 * block])
        // A range that ends exactly at a block boundary does not include the next block.
        try map.sync(offset: 0, length: block)
        #expect(flusher.takeRuns().isEmpty)
        // An empty range flushes nothing.
        try map.sync(offset: 9 * block, length: 0)
        #expect(flusher.takeRuns().isEmpty)
        #expect(map.dirtyRanges() == [block..<2 * block, 9 * block..<10 * block, 20 * block..<21 * block])

        // The whole mapping, as a range.
        try map.sync(offset: 0, length: map.bytes.count)
        #expect(flusher.takeRuns() == [block..<2 * block, 9 * block..<10 * block, 20 * block..<21 * block])
        #expect(map.dirtyRanges().isEmpty)
        #expect(map.statistics.syncs == 5)
    }

    @Test("out-of-range sync arguments are typed errors that change nothing", arguments: [
        (-1, 10), (0, -1), (0, 32 * 4096 + 1), (32 * 4096, 1), (Int.max, 1), (1, Int.max), (Int.min, 0),
    ])
    func rangeErrors(offset: Int, length: Int) throws {
        let file = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 32 * 4096, options: [.create])
        defer { try? map.close() }
        map.bytes[0] = 1
        #expect(throws: PmemTrackError.rangeOutOfBounds(offset: offset, length: length, mappingLength: 32 * 4096)) {
            try map.sync(offset: offset, length: length)
        }
        #expect(map.dirtyRanges() == [0..<4096])
    }

    @Test("invalid block sizes are rejected before anything is mapped", arguments: [0, -4096, 1000, 4096 + 1, 6144, 4 << 20, 1 << 30])
    func blockSizeErrors(blockSize: Int) {
        let file = TemporaryFile()
        #expect(throws: PmemTrackError.invalidBlockSize(blockSize)) {
            try TrackedMapping(path: file.path, length: 1 << 20, options: [.create], configuration: .init(blockSize: blockSize))
        }
        #expect(!FileManager.default.fileExists(atPath: file.path))
    }

    @Test("mapping errors carry the errno and the operation")
    func mappingErrors() throws {
        #expect(throws: PmemTrackError.system(.noSuchFileOrDirectory, operation: "pmem_map_file")) {
            try TrackedMapping(path: "/nonexistent-pmemtrack/x", length: 4096, options: [.create])
        }
        let file = TemporaryFile()
        #expect(throws: PmemTrackError.invalidLength(0)) {
            try TrackedMapping(path: file.path, length: 0, options: [.create])
        }
        #expect(throws: PmemTrackError.invalidLength(0)) {
            try TrackedMapping(path: file.path, options: [.create])
        }
        // Cache flushes are refused where libpmem says they would not be durable.
        #expect(throws: PmemTrackError.cacheFlushUnavailable) {
            try TrackedMapping(path: file.path, length: 4096, options: [.create], configuration: .init(flushMode: .cacheFlush))
        }
    }

    @Test("an existing file maps whole without a length; a wrong length is an error")
    func existingFile() throws {
        let file = TemporaryFile()
        do {
            let map = try TrackedMapping(path: FilePath(file.path), length: 3 << 20, options: [.create])
            map.bytes[12345] = 42
            try map.sync()
            try map.close()
        }
        let reopened = try TrackedMapping(path: FilePath(file.path))
        #expect(reopened.bytes.count == 3 << 20)
        #expect(reopened.bytes[12345] == 42)
        #expect(reopened.dirtyRanges().isEmpty, "reading does not dirty")
        try reopened.close()
        #expect(throws: PmemTrackError.invalidLength(1 << 20)) { try TrackedMapping(path: file.path, length: 1 << 20) }
        #expect(throws: PmemTrackError.system(.fileExists, operation: "pmem_map_file")) {
            try TrackedMapping(path: file.path, length: 4096, options: [.create, .exclusive])
        }
    }

    @Test("a file whose length is not a multiple of the block size has a short last block")
    func shortLastBlock() throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 3 * 65536 + 4096, blockSize: 65536, flusher: flusher)
        defer { try? map.close() }
        map.bytes[map.bytes.count - 1] = 7
        #expect(map.dirtyRanges() == [3 * 65536..<(3 * 65536 + 4096)])
        try map.sync()
        #expect(flusher.takeRuns() == [3 * 65536..<(3 * 65536 + 4096)])
    }

    @Test("tmpfile and sparse options")
    func tmpfileAndSparse() throws {
        let map = try TrackedMapping(path: NSTemporaryDirectory(), length: 1 << 20, options: [.tmpfile])
        map.bytes[100] = 1
        try map.sync()
        #expect(map.dirtyRanges().isEmpty)
        try map.close()

        // Sparse 1 GiB and 64 GiB files, the same 100 blocks written in each:
        // the index of the large one costs about what the small one's does.
        func indexCost(_ length: Int) throws -> Int {
            let file = TemporaryFile()
            let map = try TrackedMapping(path: file.path, length: length, options: [.create, .sparse])
            defer { try? map.close() }
            for i in 0..<100 { map.bytes[i * (10 << 20) + 1] = 1 }
            #expect(map.statistics.dirtyBlocks == 100)
            let resident = map.statistics.indexResidentBytes
            try map.sync()
            #expect(map.dirtyRanges().isEmpty)
            return resident
        }
        let small = try indexCost(1 << 30), large = try indexCost(64 << 30)
        #expect(large <= small + 16 * TrackedMapping.pageSize, "64 GiB: \(large) bytes, 1 GiB: \(small) bytes")
    }

    @Test("several mappings at once track independently")
    func severalMappings() throws {
        let files = (0..<8).map { _ in TemporaryFile() }
        let maps = try files.map { try TrackedMapping(path: $0.path, length: 1 << 20, options: [.create]) }
        for (i, map) in maps.enumerated() { map.bytes[i * 4096] = UInt8(i + 1) }
        for (i, map) in maps.enumerated() {
            let expected: [Range<Int>] = [(i * 4096)..<((i + 1) * 4096)]
            #expect(map.dirtyRanges() == expected)
        }
        try maps[3].sync()
        #expect(maps[3].dirtyRanges().isEmpty && maps[4].dirtyRanges() == [4 * 4096..<5 * 4096])
        for map in maps { try map.close() }
    }

    @Test("use after close and double close are typed errors")
    func closed() throws {
        let file = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
        try map.close()
        #expect(throws: PmemTrackError.closed) { try map.close() }
        #expect(throws: PmemTrackError.closed) { try map.sync() }
        #expect(throws: PmemTrackError.closed) { try map.sync(offset: 0, length: 1) }
        #expect(map.dirtyRanges().isEmpty)
    }
}
