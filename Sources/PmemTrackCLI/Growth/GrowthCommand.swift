import ArgumentParser
import Foundation
import PmemTrack

/// `pmemtrack growth`: how the flush set grows under clean-on-sync,
/// never-clean and flush-everything.
struct GrowthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "growth",
        abstract: "Run the flush-set growth experiment under three policies; write a CSV file and an SVG picture.",
        discussion: """
            Each epoch writes a random working set of blocks, then syncs. clean-on-sync is PmemTrack; \
            never-clean flushes every block ever written again at each sync (the first DAX fsync \
            patch's ever-growing dirty set); flush-everything flushes the whole mapping. Precision is \
            bytes flushed over bytes of the blocks written in the epoch: 1.00 is exact.
            For the cache-flush path without persistent memory, run with PMEM_IS_PMEM_FORCE=1 and \
            --directory /dev/shm.
            """
    )

    @Option(help: "Directory for the scratch files, one per policy, removed afterwards.")
    var directory = NSTemporaryDirectory()

    @Option(help: "Size of each mapping, e.g. 1G.")
    var size = ByteCount(bytes: 1 << 30)

    @Option(help: "Epochs: working sets written, each followed by a sync.")
    var epochs = 40

    @Option(help: "Blocks drawn at random per epoch (repeats count once).")
    var blocksPerEpoch = 1024

    @Option(help: "Tracking block size in bytes.")
    var blockSize = TrackedMapping.pageSize

    @Option(help: "Policies to run, comma-separated.")
    var policies = FlushPolicy.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Where to write the per-epoch results.")
    var csv = "growth.csv"

    @Option(help: "Where to write the picture.")
    var svg = "growth.svg"

    @Option(help: "Seed of the working sets.")
    var seed: UInt64 = 1

    @Option(help: "Clean-on-sync's tracking backend: \(TrackingOption.allCases.map(\.rawValue).joined(separator: ", ")).")
    var tracking = TrackingOption.automatic

    func validate() throws {
        if epochs < 1 { throw ValidationError("--epochs must be at least 1") }
        // Before the division below; the mapping checks the rest of the rule.
        if blockSize < 1 { throw ValidationError("--block-size must be positive") }
        if blocksPerEpoch < 1 || blocksPerEpoch > size.bytes / blockSize {
            throw ValidationError("--blocks-per-epoch must be between 1 and the mapping's \(size.bytes / blockSize) blocks")
        }
        if selectedPolicies() == nil { throw ValidationError("--policies takes \(FlushPolicy.allCases.map(\.rawValue).joined(separator: ", "))") }
    }

    func selectedPolicies() -> [FlushPolicy]? {
        let names = policies.split(separator: ",").map { FlushPolicy(rawValue: String($0)) }
        return names.contains(nil) || names.isEmpty ? nil : names.compactMap { $0 }
    }

    func run() throws {
        let experiment = GrowthExperiment(
            length: size.bytes, blockSize: blockSize, epochs: epochs, blocksPerEpoch: blocksPerEpoch,
            seed: seed, directory: directory, tracking: tracking.mode)
        let sets = experiment.workingSets()
        var samples: [GrowthExperiment.Sample] = []
        var persistentMemory = false
        var trackingInUse: TrackedMapping.TrackingMode?
        for policy in selectedPolicies()! {
            var progress = ProgressLine(label: "growth \(policy.rawValue)", total: epochs << 10)
            let result = try experiment.run(policy, sets: sets) { progress.update(done: $0 << 10) }
            progress.finish()
            samples += result.samples
            persistentMemory = result.isPersistentMemory
            if let mode = result.trackingMode { trackingInUse = mode }
        }
        let flushPath = persistentMemory ? "cache flushes" : "msync"
        try GrowthExperiment.csv(samples).write(toFile: csv, atomically: true, encoding: .utf8)
        let backend = trackingInUse.map { ", \(TrackingOption.name(of: $0)) tracking" } ?? ""
        let title = "Flush-set growth: \(ByteCount.format(size.bytes)) mapping, \(blocksPerEpoch) random \(ByteCount.format(blockSize)) blocks per epoch, \(flushPath)\(backend)"
        try GrowthChart(title: title, samples: samples).svg().write(toFile: svg, atomically: true, encoding: .utf8)

        print("pmemtrack growth: \(title)")
        print(Self.summary(samples))
        print("wrote \(csv) and \(svg)")
        let cleaning = samples.filter { $0.policy == .cleanOnSync }
        if !cleaning.isEmpty && !cleaning.allSatisfy({ $0.bytesFlushed == $0.bytesWritten }) {
            throw ToolError("clean-on-sync flushed other than the blocks written in some epoch; see \(csv)")
        }
    }

    static func summary(_ samples: [GrowthExperiment.Sample]) -> String {
        let rows = FlushPolicy.allCases.compactMap { policy -> [String]? in
            let mine = samples.filter { $0.policy == policy }
            guard let first = mine.first, let last = mine.last else { return nil }
            let precisions = mine.map(\.precision)
            let meanSync = mine.map(\.syncSeconds).reduce(0, +) / Double(mine.count)
            return [
                policy.rawValue, ByteCount.format(first.bytesFlushed), ByteCount.format(last.bytesFlushed),
                String(format: "%.2f-%.2f", precisions.min()!, precisions.max()!),
                Report.duration(first.syncSeconds), Report.duration(last.syncSeconds), Report.duration(meanSync),
            ]
        }
        return Report.grid(
            header: ["policy", "flushed first", "flushed last", "precision", "sync first", "sync last", "sync mean"],
            rows: rows)
    }
}
