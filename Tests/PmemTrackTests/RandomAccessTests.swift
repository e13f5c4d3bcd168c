import Foundation
import Testing
@testable import PmemTrack

/// ``TrackedMapping/Options/randomAccess``: the advice reaches the kernel,
/// survives the VMA splits that tracking makes, and changes nothing else.
@Suite("Random-access advice")
struct RandomAccessTests {
    @Test("randomAccess sets the kernel's random-read flag on the whole mapping; without it the flag is clear")
    func advice() throws {
        let file = TemporaryFile()
        let advised = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create, .randomAccess])
        defer { try? advised.close() }
        let base = UnsafeRawPointer(advised.bytes.baseAddress!)
        #expect(ProcessMaps.vmFlags(at: base)?.contains("rr") == true)

        // Tracking splits the VMA (block 5 writable, the rest read-only);
        // every piece keeps the advice, and the store is tracked as usual.
        advised.bytes[5 * 4096] = 1
        #expect(advised.dirtyRanges() == [5 * 4096..<6 * 4096])
        for page in [0, 5, 6, 255] {
            #expect(ProcessMaps.vmFlags(at: base + page * 4096)?.contains("rr") == true, "page \(page)")
        }
        try advised.sync()
        #expect(advised.dirtyRanges().isEmpty && advised.statistics.blocksFlushed == 1)
        try advised.close()

        let plainFile = TemporaryFile()
        let plain = try TrackedMapping(path: plainFile.path, length: 1 << 20, options: [.create])
        defer { try? plain.close() }
        let flags = ProcessMaps.vmFlags(at: plain.bytes.baseAddress!)
        #expect(flags != nil && !flags!.contains("rr"))
    }

    @Test("reopening an existing file with randomAccess keeps its contents")
    func reopen() throws {
        let file = TemporaryFile()
        do {
            let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
            map.bytes.storeBytes(of: 0x5EED, toByteOffset: 8192, as: UInt64.self)
            try map.sync()
            try map.close()
        }
        let map = try TrackedMapping(path: file.path, options: [.randomAccess])
        defer { try? map.close() }
        #expect(map.bytes.count == 1 << 20)
        #expect(map.bytes.load(fromByteOffset: 8192, as: UInt64.self) == 0x5EED)
        #expect(ProcessMaps.vmFlags(at: map.bytes.baseAddress!)?.contains("rr") == true)
    }
}
