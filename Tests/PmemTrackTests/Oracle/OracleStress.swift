import CPmemTrack
import Foundation
import Synchronization
import Testing
@testable import PmemTrack

/// Writers store stamped words at random places; syncers call `sync()` and
/// `sync(offset:length:)` at random; after each sync the oracle checks the
/// media image.
///
/// The check, for a sync over bytes R: take a snapshot of the ledger (the
/// newest stamp each writer has *completed* in each word of R) before the
/// call; after it returns, each word of R in the media image must hold that
/// stamp or a newer one of the same writer. The ledger is written after the
/// store, so the snapshot never claims a store that had not completed.
final class OracleStress: @unchecked Sendable {
    struct Configuration {
        var blockSize = 4096
        var length = 4 << 20
        var writers = 4
        var syncers = 2
        /// Stop when the writers have made this many stores...
        var stores = 1_000_000
        /// ...and at least this many seconds have passed (0 for none).
        var minimumSeconds = 0.0
        /// Stop at the first lost store instead of finishing the run.
        var stopAtFirstLoss = false
        /// Yield the CPU at protocol steps, to make rare interleavings common.
        var perturb = false
        var mutant: ProtocolMutant?
        /// Percentage of flushes that fail (EIO or ENOSPC) without reaching
        /// the media image.
        var flushFailurePercent = 0
        /// Runs a sync flushes before one drain (FileSyncFlusher batches).
        var runsPerDrain = 1
        /// Each writer sleeps this long after each store (0: never): a slow
        /// write rate leaves pages unwritten between two collects, which the
        /// userfaultfd races need to become visible.
        var writerPauseMicroseconds: UInt32 = 0
        var tracking: TrackedMapping.TrackingMode = .mprotect
        var flushPath: FlushPath = .msync
    }

    /// Where the mapped file lives and what writes it back after the media
    /// image has taken its copy: the two paths a real mapping takes.
    enum FlushPath: CaseIterable, CustomStringConvertible {
        /// An ordinary file on the disk's file system, msync per run.
        case msync
        /// A tmpfs file written back with cache-line flushes and a fence, as
        /// on persistent memory (the instructions run; tmpfs needs none).
        case cacheFlush

        var directory: String { self == .msync ? NSTemporaryDirectory() : "/dev/shm" }
        var flusher: any Flusher { self == .msync ? MsyncFlusher() : CacheLineFlusher() }
        var description: String { self == .msync ? "msync" : "cache flush" }
    }

    struct Report: CustomStringConvertible {
        var backend: String
        var blockSize: Int
        var stores: Int
        var syncs: Int
        var seconds: Double
        var lost: [LostStore]
        /// Syncs that reported a flush failure, and failures reported wrongly
        /// (not EIO or ENOSPC, or a range outside the sync's blocks).
        var failedSyncs = 0
        var malformedFailures: [String] = []

        var description: String {
            let rates = String(format: "%.0f stores/s, %.0f syncs/s", Double(stores) / seconds, Double(syncs) / seconds)
            return "\(backend), block \(blockSize): \(stores) stores, \(syncs) syncs (\(failedSyncs) failed) in \(String(format: "%.2f", seconds)) s (\(rates)); lost stores: \(lost.count)"
        }
    }

    let configuration: Configuration
    let map: TrackedMapping
    let image: MediaImage
    private let file: TemporaryFile
    private let words: Int
    /// Newest completed stamp per word, written by the word's owner after the store.
    private let ledger: UnsafeMutablePointer<Atomic<UInt64>>
    private let storesMade = Atomic(0)
    private let syncsMade = Atomic(0)
    private let stop = Atomic(false)
    private let losses = Mutex<[LostStore]>([])
    private let failedSyncs = Atomic(0)
    private let malformed = Mutex<[String]>([])

    init(_ configuration: Configuration) throws {
        self.configuration = configuration
        file = TemporaryFile(in: configuration.flushPath.directory)
        image = try MediaImage(
            length: configuration.length, failurePercent: configuration.flushFailurePercent,
            runsPerDrain: configuration.runsPerDrain, underlying: configuration.flushPath.flusher)
        words = configuration.length / 8
        ledger = .allocate(capacity: words)
        for i in 0..<words { (ledger + i).initialize(to: Atomic(0)) }
        let perturbation = configuration.perturb ? SyncHook { _ in sched_yield() } : nil
        map = try TrackedMapping(
            path: file.path, length: configuration.length, options: [.create],
            configuration: .init(blockSize: configuration.blockSize, flushMode: .msync, tracking: configuration.tracking),
            syncHook: perturbation, mutant: configuration.mutant) { [image] _, _ in image }
        if configuration.perturb { map.tracker.setHook(.yielding) }
    }

    deinit {
        try? map.close()
        ledger.deinitialize(count: words)
        ledger.deallocate()
    }

    func run() -> Report {
        let start = Date()
        let threads = (0..<configuration.writers).map { w in Thread { self.write(as: w) } }
            + (0..<configuration.syncers).map { s in Thread { self.syncLoop(seed: s) } }
        threads.forEach { $0.start() }
        // The threads stop once the writers have made their stores (and the
        // soak time has passed); the bound only turns a hang into a failure.
        let bound = Bound.work + .seconds(configuration.minimumSeconds)
        let what = "the oracle stress's writers and syncers to finish (\(configuration.stores) stores)"
        if !join(threads, what: what, timeout: bound) {
            // Let them go, so that the mapping can be closed.
            stop.store(true, ordering: .relaxed)
            join(threads, what: "the oracle stress's threads to stop")
        }
        return Report(
            backend: "\(map.trackingMode), \(configuration.flushPath)", blockSize: configuration.blockSize, stores: storesMade.load(ordering: .relaxed),
            syncs: syncsMade.load(ordering: .relaxed), seconds: Date().timeIntervalSince(start),
            lost: losses.withLock { $0 }, failedSyncs: failedSyncs.load(ordering: .relaxed),
            malformedFailures: malformed.withLock { $0 })
    }

    private func finished(since start: Date) -> Bool {
        if stop.load(ordering: .relaxed) { return true }
        return storesMade.load(ordering: .relaxed) >= configuration.stores
            && Date().timeIntervalSince(start) >= configuration.minimumSeconds
    }

    // MARK: Writers

    /// Stores of 1, 8, 128 or 1024 words: every word this writer owns in a
    /// stretch of the mapping, so larger stores span several blocks.
    private func write(as writer: Int) {
        let start = Date()
        nonisolated(unsafe) let bytes = map.bytes
        let stride = configuration.writers
        var rng = FastRandom()
        var sequence: UInt64 = 0
        while !finished(since: start) {
            let roll = Int.random(in: 0..<100, using: &rng)
            let count = roll < 50 ? 1 : roll < 75 ? 8 : roll < 90 ? 128 : 1024
            let span = count * stride
            let first = Int.random(in: 0...(words - span) / stride, using: &rng) * stride + writer
            sequence += 1
            let stamp = Stamp(writer: writer, sequence: sequence).raw
            for k in 0..<count {
                let word = first + k * stride
                bytes.storeBytes(of: stamp, toByteOffset: word * 8, as: UInt64.self)
                ledger[word].store(stamp, ordering: .releasing)
            }
            storesMade.add(1, ordering: .relaxed)
            if configuration.writerPauseMicroseconds > 0 { usleep(configuration.writerPauseMicroseconds) }
        }
    }

    // MARK: Syncers

    private func syncLoop(seed: Int) {
        let start = Date()
        var rng = FastRandom()
        var expected = [UInt64](repeating: 0, count: words)
        while !finished(since: start) {
            let whole = Bool.random(using: &rng)
            let offset = whole ? 0 : Int.random(in: 0..<configuration.length / 8, using: &rng) * 8
            let length = whole ? configuration.length : Int.random(in: 1...(configuration.length - offset) / 8, using: &rng) * 8
            let range = (offset / 8)..<((offset + length) / 8)
            for word in range { expected[word] = ledger[word].load(ordering: .acquiring) }
            let name = whole ? "sync()" : "sync(offset: \(offset), length: \(length))"
            do throws(PmemTrackError) {
                if whole { try map.sync() } else { try map.sync(offset: offset, length: length) }
            } catch {
                // A failed sync promises nothing; the next successful one must
                // still cover these stores, which is what the check then shows.
                syncsMade.add(1, ordering: .relaxed)
                failedSyncs.add(1, ordering: .relaxed)
                // The error may be this sync's own or, as with errseq_t, a
                // concurrent sync's failure on bytes that this one needed.
                if case .flushFailed(let errno, let bytes) = error, errno == .ioError || errno == .noSpace,
                   !bytes.isEmpty, bytes.clamped(to: 0..<configuration.length) == bytes {
                    continue
                }
                malformed.withLock { $0.append("\(name): \(error)") }
                continue
            }
            syncsMade.add(1, ordering: .relaxed)
            if let lost = check(range, against: expected, after: name) {
                losses.withLock { $0.append(lost) }
                if configuration.stopAtFirstLoss { stop.store(true, ordering: .relaxed) }
            }
        }
    }

    /// The first word of `range` whose media image is older than expected.
    private func check(_ range: Range<Int>, against expected: [UInt64], after sync: String) -> LostStore? {
        image.withStableImage { media in
            for word in range where expected[word] != 0 {
                let found = media.load(fromByteOffset: word * 8, as: UInt64.self)
                let want = Stamp(raw: expected[word])!
                let got = Stamp(raw: found)
                if got == nil || got!.writer != want.writer || got!.sequence < want.sequence {
                    return LostStore(block: word * 8 / configuration.blockSize, offset: word * 8,
                                     expected: want, found: got, sync: sync)
                }
            }
            return nil
        }
    }
}
