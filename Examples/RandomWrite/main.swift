// fio-style random 4 KiB writes with a sync every 32 writes, then a check
// that the last write to each slot is intact.
//
//     swift run RandomWriteExample [PATH]        (default: a temporary file)
import ExampleWorkloads
import Foundation
import PmemTrack

let path = CommandLine.arguments.dropFirst().first ?? NSTemporaryDirectory() + "pmemtrack-example-\(getpid()).dat"

do {
    let map = try TrackedMapping(path: path, length: 256 << 20, options: [.create])
    defer {
        try? map.close()
        if CommandLine.arguments.count < 2 { unlink(path) }
    }
    var writer = RandomWriter(mapping: map)
    var random = SystemRandomNumberGenerator()
    var last: [Int: UInt64] = [:]
    let start = ContinuousClock.now
    for n in 1...5_000 {
        let slot = writer.writeRandomBlock(using: &random)
        last[slot] = writer.writes
        if n % 32 == 0 { try map.sync() }
    }
    try map.sync()
    let elapsed = ContinuousClock.now - start
    let intact = last.allSatisfy { writer.verify(slot: $0.key) == $0.value }
    let stats = map.statistics
    print("5000 random 4 KiB writes to \(last.count) slots in \(elapsed): \(stats.syncs) syncs, \(stats.writeFaults) faults")
    print("flushed \(stats.bytesFlushed >> 20) MiB in all; every slot holds its last write: \(intact)")
    if !intact { exit(1) }
} catch {
    print("error: \(error)")
    exit(1)
}
