import Foundation
import Testing
@testable import PmemTrack

/// Writers that cannot fault: the kernel and devices.
@Suite("Pins")
struct PinTests {
    static let block = 4096

    /// A file of `count` bytes with a known pattern, open for reading.
    static func source(_ file: TemporaryFile, count: Int) -> Int32 {
        let data = Data((0..<count).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) })
        precondition(FileManager.default.createFile(atPath: file.path, contents: data))
        return open(file.path, O_RDONLY)
    }

    @Test("the contract: read(2) into a clean, unpinned tracked block fails with EFAULT and changes nothing")
    func readIntoUnpinnedFails() throws {
        let file = TemporaryFile(), input = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
        defer { try? map.close() }
        let fd = Self.source(input, count: 8192)
        defer { close(fd) }
        let n = read(fd, map.bytes.baseAddress! + Self.block, 100)
        #expect(n == -1 && errno == EFAULT)
        #expect(map.dirtyRanges().isEmpty && map.bytes[Self.block] == 0)
    }

    @Test("read(2) into a pinned range works, and sync makes it durable while it stays dirty", arguments: Backends.all)
    func readIntoPinned(tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile(), input = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher, tracking: tracking)
        defer { try? map.close() }
        let fd = Self.source(input, count: 3 * Self.block)
        defer { close(fd) }

        try map.pin(offset: Self.block + 100, length: 2 * Self.block)      // blocks 1, 2, 3
        #expect(map.dirtyRanges() == [Self.block..<4 * Self.block])
        #expect(map.statistics.pinnedBlocks == 3)
        #expect(read(fd, map.bytes.baseAddress! + Self.block + 100, 2 * Self.block) == 2 * Self.block)

        try map.sync()
        #expect(flusher.takeRuns() == [Self.block..<4 * Self.block])
        // Flushed but not cleaned or protected: the kernel may write again.
        #expect(map.dirtyRanges() == [Self.block..<4 * Self.block])
        #expect(ProcessMaps.isWritable(map.bytes, at: Self.block))
        let contents = try #require(FileManager.default.contents(atPath: file.path))
        let expected = try #require(FileManager.default.contents(atPath: input.path))
        #expect(contents[(Self.block + 100)..<(3 * Self.block + 100)] == expected[0..<2 * Self.block])

        // A second kernel write while still pinned is in the next sync too.
        #expect(pread(fd, map.bytes.baseAddress! + Self.block, 10, 0) == 10)
        try map.sync()
        #expect(flusher.takeRuns() == [Self.block..<4 * Self.block])

        // Unpinning leaves the blocks dirty; the next sync cleans them.
        try map.unpin(offset: Self.block + 100, length: 2 * Self.block)
        #expect(map.statistics.pinnedBlocks == 0)
        #expect(map.dirtyRanges() == [Self.block..<4 * Self.block])
        try map.sync()
        #expect(flusher.takeRuns() == [Self.block..<4 * Self.block])
        #expect(map.dirtyRanges().isEmpty)
        #expect(tracking != .mprotect || !ProcessMaps.isWritable(map.bytes, at: Self.block))
    }

    @Test("nested and overlapping pins keep a block pinned until the last unpin", arguments: Backends.all)
    func nestedAndOverlapping(tracking: TrackedMapping.TrackingMode) throws {
        let file = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher, tracking: tracking)
        defer { try? map.close() }
        let b = Self.block
        try map.pin(offset: 0, length: 3 * b)          // blocks 0, 1, 2
        try map.pin(offset: 2 * b, length: 3 * b)      // blocks 2, 3, 4
        try map.pin(offset: 2 * b, length: 1)          // block 2 again
        #expect(map.statistics.pinnedBlocks == 5)

        try map.unpin(offset: 0, length: 3 * b)        // 0, 1 free; 2 still pinned twice
        try map.sync()
        #expect(flusher.takeRuns() == [0..<2 * b, 2 * b..<5 * b], "unpinned and pinned parts are flushed separately")
        #expect(map.dirtyRanges() == [2 * b..<5 * b], "blocks 0 and 1 cleaned; 2 to 4 still pinned")

        try map.unpin(offset: 2 * b, length: 3 * b)
        #expect(map.statistics.pinnedBlocks == 1)
        try map.sync()
        #expect(map.dirtyRanges() == [2 * b..<3 * b])
        try map.unpin(offset: 2 * b, length: 1)
        try map.sync()
        #expect(map.dirtyRanges().isEmpty && map.statistics.pinnedBlocks == 0)
    }

    @Test("unpinning what is not pinned is a typed error and changes nothing")
    func unpinErrors() throws {
        let file = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
        defer { try? map.close() }
        try map.pin(offset: 0, length: Self.block)
        #expect(throws: PmemTrackError.notPinned(offset: 0, length: 2 * Self.block)) {
            try map.unpin(offset: 0, length: 2 * Self.block)
        }
        #expect(map.statistics.pinnedBlocks == 1)
        #expect(throws: PmemTrackError.rangeOutOfBounds(offset: -1, length: 1, mappingLength: 1 << 20)) {
            try map.pin(offset: -1, length: 1)
        }
        try map.close()
        #expect(throws: PmemTrackError.closed) { try map.pin(offset: 0, length: 1) }
    }

    @Test("withPinnedRange unpins after the body, also when it throws")
    func withPinnedRange() throws {
        let file = TemporaryFile(), input = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
        defer { try? map.close() }
        let fd = Self.source(input, count: 100)
        defer { close(fd) }
        let n = try map.withPinnedRange(offset: 5000, length: 100) { buffer in
            read(fd, buffer.baseAddress, buffer.count)
        }
        #expect(n == 100 && map.bytes[5000] == 3)
        #expect(map.statistics.pinnedBlocks == 0)
        struct Stop: Error {}
        #expect(throws: Stop.self) { try map.withPinnedRange(offset: 0, length: 10) { _ in throw Stop() } }
        #expect(map.statistics.pinnedBlocks == 0)
        try map.sync()
        #expect(map.dirtyRanges().isEmpty)
    }
}
