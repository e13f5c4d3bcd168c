// Maps a temporary file, writes a few scattered records with plain stores,
// syncs, and prints what PmemTrack flushed.
//
//     swift run QuickStart [PATH]
import Foundation
import PmemTrack

let path = CommandLine.arguments.dropFirst().first
    ?? FileManager.default.temporaryDirectory.appendingPathComponent("pmemtrack-quickstart-\(getpid())").path
let length = 64 << 20

do {
    let map = try TrackedMapping(path: path, length: length, options: [.create])
    defer { if CommandLine.arguments.count < 2 { unlink(path) } }
    print("mapped \(length >> 20) MiB at \(path)")
    print("persistent memory: \(map.isPersistentMemory), flush mode: \(map.flushMode), block size: \(map.blockSize)")

    // Ten 64-byte records, one every 4 MiB: ten blocks become dirty.
    for record in 0..<10 {
        let offset = record * (4 << 20)
        for word in 0..<8 {
            map.bytes.storeBytes(of: UInt64(record * 8 + word), toByteOffset: offset + word * 8, as: UInt64.self)
        }
    }
    print("dirty before sync: \(map.dirtyRanges().count) ranges, \(map.statistics.dirtyBlocks) blocks")

    try map.sync()
    let stats = map.statistics
    print("synced: \(stats.blocksFlushed) blocks, \(stats.bytesFlushed) bytes in \(stats.flushCalls) flush calls")
    print("write faults: \(stats.writeFaults), dirty after sync: \(stats.dirtyBlocks)")
    print("flushed \(stats.bytesFlushed) of \(length) bytes (\(String(format: "%.4f", Double(stats.bytesFlushed) / Double(length) * 100))%)")
    try map.close()
} catch {
    print("error: \(error)")
    exit(1)
}
