// A hash table in a tracked mapping: random updates, a commit every 100.
//
//     swift run KeyValueStoreExample [PATH]      (default: a file in /tmp, kept between runs)
import ExampleWorkloads
import Foundation
import PmemTrack

let path = CommandLine.arguments.dropFirst().first ?? NSTemporaryDirectory() + "pmemtrack-example.kv"

do {
    // A hash table is read and written at random: .randomAccess turns off
    // readahead, so that on an ordinary file each commit writes back the
    // pages it changed, not the large folios a scan would have read in.
    var options: TrackedMapping.Options = [.randomAccess]
    if !FileManager.default.fileExists(atPath: path) { options.insert(.create) }
    let map = try TrackedMapping(path: path, length: 64 << 20, options: options)
    defer { try? map.close() }
    let store = try KeyValueStore(mapping: map)
    print("\(path): \(store.count) keys in \(store.slotCount) slots, \(store.damagedSlots) damaged")

    var random = SystemRandomNumberGenerator()
    let before = map.statistics
    for update in 1...10_000 {
        let key = UInt64.random(in: 1...50_000, using: &random)
        try store.put(key, Array("value of \(key) at update \(update)".utf8))
        if update % 100 == 0 { try store.commit() }
    }
    let stats = map.statistics
    let commits = stats.syncs - before.syncs
    print("10000 updates, \(commits) commits: \((stats.blocksFlushed - before.blocksFlushed) / commits) blocks per commit of \(map.bytes.count / map.blockSize)")
    if let value = store.get(7) { print("key 7: \(String(decoding: value, as: UTF8.self))") }
} catch {
    print("error: \(error)")
    exit(1)
}
