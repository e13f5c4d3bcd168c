#if Metrics
import Metrics
import PmemTrack

/// Reports a ``TrackedMapping``'s syncs to swift-metrics: counters of what
/// they flushed, a gauge of the blocks left dirty, and a timer of their
/// duration.
///
/// ```swift
/// let map = try TrackedMapping(path: path, length: length, options: [.create])
/// let metrics = MappingMetrics(map, dimensions: [("file", "journal")])
/// try map.sync()   // recorded
/// ```
///
/// It installs itself as the mapping's sync handler
/// (`TrackedMapping.setSyncHandler(_:)`), so it sees every sync: foreground,
/// `async` and background writeback. ``detach()`` removes it. It reads
/// nothing from the mapping but each sync's `SyncReport`.
///
/// ## Labels
/// Every metric carries the dimensions given to ``init(_:label:dimensions:factory:)``;
/// `<label>` defaults to `pmemtrack`.
///
/// | label | kind | unit | what |
/// | --- | --- | --- | --- |
/// | `<label>.syncs` | counter | syncs | syncs that returned, with the dimension `result`: `success` or `failure` |
/// | `<label>.sync.duration` | timer | nanoseconds | the duration of each successful sync |
/// | `<label>.flushed.blocks` | counter | blocks | blocks made durable |
/// | `<label>.flushed.bytes` | counter | bytes | their bytes |
/// | `<label>.flushed.runs` | counter | runs | runs of adjacent blocks flushed, one flush call each |
/// | `<label>.drains` | counter | drains | fences or `fdatasync`/`msync` calls waited for |
/// | `<label>.flushed_by_concurrent_syncs` | counter | blocks | blocks a sync found already flushed by a concurrent one |
/// | `<label>.dirty.blocks` | gauge | blocks | blocks still dirty when the last sync ended |
public final class MappingMetrics: Sendable {
    private struct Instruments: Sendable {
        let successes: Counter
        let failures: Counter
        let duration: Timer
        let blocks: Counter
        let bytes: Counter
        let runs: Counter
        let drains: Counter
        let concurrent: Counter
        let dirty: Gauge
    }

    private let mapping: TrackedMapping
    private let instruments: Instruments

    /// Starts reporting `mapping`'s syncs.
    ///
    /// - Parameters:
    ///   - mapping: The mapping whose syncs to report. Its sync handler is
    ///     replaced.
    ///   - label: The prefix of every metric's label.
    ///   - dimensions: Dimensions added to every metric, to tell mappings apart.
    ///   - factory: Where the metrics go; the bootstrapped `MetricsSystem` by default.
    public init(
        _ mapping: TrackedMapping, label: String = "pmemtrack", dimensions: [(String, String)] = [],
        factory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.mapping = mapping
        let instruments = Instruments(
            successes: Counter(label: "\(label).syncs", dimensions: dimensions + [("result", "success")], factory: factory),
            failures: Counter(label: "\(label).syncs", dimensions: dimensions + [("result", "failure")], factory: factory),
            duration: Timer(label: "\(label).sync.duration", dimensions: dimensions, factory: factory),
            blocks: Counter(label: "\(label).flushed.blocks", dimensions: dimensions, factory: factory),
            bytes: Counter(label: "\(label).flushed.bytes", dimensions: dimensions, factory: factory),
            runs: Counter(label: "\(label).flushed.runs", dimensions: dimensions, factory: factory),
            drains: Counter(label: "\(label).drains", dimensions: dimensions, factory: factory),
            concurrent: Counter(label: "\(label).flushed_by_concurrent_syncs", dimensions: dimensions, factory: factory),
            dirty: Gauge(label: "\(label).dirty.blocks", dimensions: dimensions, factory: factory))
        self.instruments = instruments
        mapping.setSyncHandler { outcome in Self.record(outcome, in: instruments) }
    }

    /// Stops reporting: removes the mapping's sync handler.
    public func detach() {
        mapping.setSyncHandler(nil)
    }

    private static func record(_ outcome: Result<SyncReport, PmemTrackError>, in instruments: Instruments) {
        switch outcome {
        case .success(let report):
            instruments.successes.increment()
            instruments.duration.recordNanoseconds(report.duration.nanoseconds)
            if report.blocks > 0 { instruments.blocks.increment(by: report.blocks) }
            if report.bytes > 0 { instruments.bytes.increment(by: report.bytes) }
            if report.runs > 0 { instruments.runs.increment(by: report.runs) }
            if report.drains > 0 { instruments.drains.increment(by: report.drains) }
            if report.flushedByConcurrentSyncs > 0 { instruments.concurrent.increment(by: report.flushedByConcurrentSyncs) }
            if let dirty = report.dirtyBlocks { instruments.dirty.record(dirty) }
        case .failure:
            instruments.failures.increment()
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
#endif
