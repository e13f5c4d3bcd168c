// A write-ahead log on a tracked mapping: recover what the last run left,
// append records with group commit, then truncate after a checkpoint.
//
//     swift run WriteAheadLogExample [PATH]      (default: a file in /tmp, kept between runs)
import ExampleWorkloads
import Foundation
import PmemTrack

let path = CommandLine.arguments.dropFirst().first ?? NSTemporaryDirectory() + "pmemtrack-example.wal"

do {
    // Map the log file; PmemTrack tracks every store into it from here on.
    let map = try TrackedMapping(path: path, length: 16 << 20, options: FileManager.default.fileExists(atPath: path) ? [] : [.create])
    defer { try? map.close() }
    let log = try WriteAheadLog(mapping: map)
    print("\(path): recovered \(log.recoveredRecords) records (LSN \(log.firstLSN)..<\(log.nextLSN))")

    // Group commit: ten records per sync. Each commit flushes only the
    // blocks the ten records touched.
    for group in 0..<10 {
        for n in 0..<10 {
            try log.append(Array("set key\(group * 10 + n) = \(Date().timeIntervalSince1970)".utf8))
        }
        try log.commit()
    }
    let stats = map.statistics
    print("appended 100 records in 10 commits: \(stats.blocksFlushed) blocks flushed, \(stats.bytesFlushed) bytes")

    // After a checkpoint, keep only the last 5 records.
    try log.truncate(before: log.nextLSN - 5)
    var kept: [String] = []
    log.forEachRecord { lsn, payload in kept.append("\(lsn): \(String(decoding: payload, as: UTF8.self))") }
    print("after truncate: \(kept.count) records\n  " + kept.joined(separator: "\n  "))
} catch {
    print("error: \(error)")
    exit(1)
}
