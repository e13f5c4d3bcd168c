import Foundation
import PmemTrack
import PmemTrackCrashLab

/// The flush-set growth experiment: over `epochs` epochs, write a random
/// working set of `blocksPerEpoch` blocks, then sync; the same working sets
/// under each policy. Records, per epoch, the bytes each sync flushed, the
/// bytes of the distinct blocks written, and the sync's duration.
struct GrowthExperiment {
    var length: Int
    var blockSize: Int
    var epochs: Int
    var blocksPerEpoch: Int
    var seed: UInt64
    var directory: String
    /// Clean-on-sync's tracking backend.
    var tracking: TrackedMapping.TrackingMode = .automatic

    struct Sample {
        var epoch: Int
        var policy: FlushPolicy
        var blocksWritten: Int
        var bytesFlushed: Int
        var syncSeconds: Double
        var bytesWritten: Int
        /// Bytes flushed over bytes of blocks written in the epoch; 1.00 is exact.
        var precision: Double { Double(bytesFlushed) / Double(bytesWritten) }
    }

    /// The distinct blocks written in each epoch; the same for every policy.
    func workingSets() -> [[Int]] {
        var random = SplitMix64(seed: seed)
        let blocks = length / blockSize
        return (0..<epochs).map { _ in
            Array(Set((0..<blocksPerEpoch).map { _ in Int.random(in: 0..<blocks, using: &random) })).sorted()
        }
    }

    /// The samples, whether the file was persistent memory, and the
    /// tracking backend in use (nil for the untracked policies).
    func run(
        _ policy: FlushPolicy, sets: [[Int]], progress: (Int) -> Void = { _ in }
    ) throws -> (samples: [Sample], isPersistentMemory: Bool, trackingMode: TrackedMapping.TrackingMode?) {
        let path = (directory as NSString).appendingPathComponent("pmemtrack-growth-\(getpid())-\(policy.rawValue)")
        unlink(path)
        let subject: any GrowthSubject
        do {
            subject = try policy.subject(path: path, length: length, blockSize: blockSize, tracking: tracking)
        } catch {
            // The path names the directory, which the error alone does not.
            throw ToolError("cannot map \(path): \(error)")
        }
        // The file is only scratch space; unlinked, it goes when unmapped.
        unlink(path)
        defer { subject.close() }
        let clock = ContinuousClock()
        var samples: [Sample] = []
        for (epoch, set) in sets.enumerated() {
            for block in set { subject.write(block: block, stamp: UInt64(epoch + 1) << 32 | UInt64(block)) }
            let start = clock.now
            try subject.sync()
            let seconds = (clock.now - start).seconds
            let flushed = subject.takeBytesFlushed()
            samples.append(Sample(
                epoch: epoch + 1, policy: policy, blocksWritten: set.count, bytesFlushed: flushed,
                syncSeconds: seconds, bytesWritten: set.count * blockSize))
            progress(epoch + 1)
        }
        return (samples, subject.isPersistentMemory, subject.trackingMode)
    }

    static func csv(_ samples: [Sample]) -> String {
        "epoch,policy,blocks_written,bytes_written,bytes_flushed,precision,sync_seconds\n" + samples.map {
            "\($0.epoch),\($0.policy.rawValue),\($0.blocksWritten),\($0.bytesWritten),\($0.bytesFlushed),"
                + String(format: "%.4f,%.6f", $0.precision, $0.syncSeconds)
        }.joined(separator: "\n") + "\n"
    }
}
