import CLibpmem
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A memory-mapped file whose writes are tracked block by block, so that
/// ``sync(file:line:)-8lk1h`` flushes exactly the blocks written since the last flush.
///
/// ```swift
/// let map = try TrackedMapping(path: "/mnt/pmem/db", length: 1 << 30, options: [.create])
/// map.bytes.storeBytes(of: 42, toByteOffset: 8192, as: UInt64.self)
/// try map.sync(offset: 8192, length: 8)   // flushes the one dirty block
/// try map.close()
/// ```
///
/// Write with plain stores through ``bytes``. The first store to a clean
/// block faults once: with ``TrackingMode/mprotect`` PmemTrack's handler
/// marks the block dirty and lets the store proceed; with
/// ``TrackingMode/userfaultfd`` the kernel resolves the fault and remembers
/// the page, and the next sync collects it. ``sync(file:line:)-8lk1h`` (like fsync) and ``sync(offset:length:file:line:)-5y0hz`` (like
/// msync) write back the dirty blocks, with CPU cache flushes on persistent
/// memory or one fdatasync on ordinary files, and return only when they are durable.
///
/// All methods are safe to call from any thread, concurrently.
///
/// - Important: Do not change the protection of ``bytes`` yourself. With
///   ``TrackingMode/mprotect``, do not pass ``bytes`` to the kernel as a
///   destination (`read(2)`, `recv`) without a pin: the kernel cannot fault
///   on a clean block and fails with `EFAULT`. With
///   ``TrackingMode/userfaultfd`` the kernel's writes are tracked.
public final class TrackedMapping: @unchecked Sendable {
    /// The system page size: the smallest and default block size.
    public static let pageSize = System.pageSize

    /// The whole mapping. Invalid after ``close()``.
    public let bytes: UnsafeMutableRawBufferPointer
    /// Whether libpmem considers the mapping persistent memory, where CPU
    /// cache flushes make stores durable.
    public let isPersistentMemory: Bool
    /// Bytes per tracked block.
    public let blockSize: Int
    /// The flush mode in use: ``FlushMode/cacheFlush`` or ``FlushMode/msync``.
    public let flushMode: FlushMode
    /// The tracking backend in use: ``TrackingMode/userfaultfd`` or
    /// ``TrackingMode/mprotect``, never ``TrackingMode/automatic``.
    public var trackingMode: TrackingMode { tracker.mode }

    let index: DirtyIndex
    let tracker: any WriteTracker
    private let engine: SyncEngine
    private let counters: SyncCounters
    /// A read-only descriptor of the file, to notice truncation; nil for
    /// `.tmpfile` mappings, whose file has no name to truncate it by.
    private let file: Int32?
    let pins = PinTable()
    private let state = ReadWriteLock()
    /// The crash lab's recorder or scratch observer; nil in production.
    let observer: (any DurabilityObserver)?
    /// See ``setSyncHandler(_:)``.
    private let syncHandler = Mutex<(@Sendable (Result<SyncReport, PmemTrackError>) -> Void)?>(nil)
    /// The background writeback thread, if ``Configuration/writeback`` asks for one.
    private(set) var writer: BackgroundWriter?
    /// A background sync's error not yet thrown by a foreground sync.
    private let backgroundError = Mutex<PmemTrackError?>(nil)
    /// Guarded by `state`.
    private var isClosed = false

    /// Maps `path` and starts tracking writes.
    ///
    /// - Parameters:
    ///   - path: The file to map; with ``Options/tmpfile``, a directory.
    ///   - length: The mapping's length in bytes. Required with
    ///     ``Options/create`` or ``Options/tmpfile``. Otherwise the whole file
    ///     is mapped, and a length, if given, must equal the file's.
    ///   - options: How to open the file.
    ///   - configuration: Block size, flush mode and tracking mode.
    /// - Throws: ``PmemTrackError``; nothing stays mapped after a failure.
    public convenience init(
        path: FilePath, length: Int? = nil, options: Options = [], configuration: Configuration = .init()
    ) throws(PmemTrackError) {
        try self.init(path: path.string, length: length, options: options, configuration: configuration)
    }

    /// Maps `path` and starts tracking writes. See
    /// ``init(path:length:options:configuration:)-(FilePath,_,_,_)``.
    public convenience init(
        path: String, length: Int? = nil, options: Options = [], configuration: Configuration = .init()
    ) throws(PmemTrackError) {
        try self.init(path: path, length: length, options: options, configuration: configuration) {
            Self.defaultFlusher($0, $1)
        }
    }

    /// A mapping whose syncs and flushes `observer` sees: the crash lab's
    /// recording and scratch mappings.
    package convenience init(
        path: String, length: Int?, options: Options, configuration: Configuration,
        observer: any DurabilityObserver
    ) throws(PmemTrackError) {
        try self.init(path: path, length: length, options: options, configuration: configuration, observer: observer) {
            Self.defaultFlusher($0, $1)
        }
    }

    /// The flusher of a mapping in `mode` with the read-only descriptor `file`.
    static func defaultFlusher(_ mode: FlushMode, _ file: Int32?) -> any Flusher {
        switch (mode, file) {
        case (.cacheFlush, _): return CacheLineFlusher()
        case (_, let file?): return FileSyncFlusher(descriptor: file)
        // A .tmpfile mapping has no descriptor of ours: msync per run.
        case (_, nil): return MsyncFlusher()
        }
    }

    /// The designated initializer. Tests pass their own flusher, a hook that
    /// can pause syncs between protocol steps, and, to prove that the tests
    /// catch them, a broken protocol variant; the crash lab, an observer.
    init(
        path: String, length: Int?, options: Options, configuration: Configuration,
        syncHook: SyncHook? = nil, mutant: ProtocolMutant? = nil, observer: (any DurabilityObserver)? = nil,
        writebackClock: any WritebackClock = ContinuousWritebackClock(),
        makeFlusher: (FlushMode, _ file: Int32?) -> any Flusher
    ) throws(PmemTrackError) {
        let configuration = try configuration.validated()
        let (mapping, created) = try Self.map(path: path, length: length, options: options)
        var mapped = true
        defer {
            if mapped {
                _ = System.pmemUnmap(mapping.base, mapping.length)
                // A failed open changes nothing: not even a file it created.
                if created { System.unlink(path) }
            }
        }

        if options.contains(.randomAccess) {
            // Before any fault: the advice decides the folio size of the
            // pages that faults read in from now on.
            if case .failure(let errno) = System.madvise(mapping.base, mapping.length, MADV_RANDOM) {
                throw .system(errno, operation: "madvise")
            }
        }

        let mode: FlushMode
        switch configuration.flushMode {
        case .automatic: mode = mapping.isPersistentMemory ? .cacheFlush : .msync
        case .cacheFlush:
            guard mapping.isPersistentMemory else { throw .cacheFlushUnavailable }
            mode = .cacheFlush
        case .msync: mode = .msync
        }

        var file: Int32?
        if !options.contains(.tmpfile) {
            switch System.openReadOnly(path) {
            case .success(let fd): file = fd
            case .failure(let errno): throw .system(errno, operation: "open")
            }
        }
        defer { if mapped, let file { System.close(file) } }

        let blockCount = (mapping.length + configuration.blockSize - 1) / configuration.blockSize
        let index = try DirtyIndex(blockCount: UInt64(blockCount))
        let tracker = try TrackerFactory.make(
            configuration.tracking,
            for: .init(
                base: mapping.base, length: mapping.length, blockSize: configuration.blockSize, index: index,
                file: file, path: path, isTemporary: options.contains(.tmpfile)),
            mutant: mutant)

        self.bytes = UnsafeMutableRawBufferPointer(start: mapping.base, count: mapping.length)
        self.isPersistentMemory = mapping.isPersistentMemory
        self.blockSize = configuration.blockSize
        self.flushMode = mode
        self.file = file
        self.index = index
        self.tracker = tracker
        self.counters = SyncCounters()
        self.observer = observer
        let flusher = makeFlusher(mode, file)
        self.engine = SyncEngine(
            index: index, tracker: tracker,
            flusher: observer.map { ObservedFlusher(underlying: flusher, observer: $0) } ?? flusher, base: mapping.base,
            length: mapping.length, blockShift: configuration.blockSize.trailingZeroBitCount,
            counters: counters, failures: FailureLog(), hook: syncHook, mutant: mutant, observer: observer)
        mapped = false
        if let interval = configuration.writeback.interval {
            let writer = BackgroundWriter(
                interval: interval, dirtyByteLimit: configuration.writeback.dirtyByteLimit, clock: writebackClock)
            writer.mapping = self
            guard writer.start() else {
                release()
                isClosed = true
                throw .system(Errno(rawValue: EAGAIN), operation: "pthread_create (background writeback)")
            }
            self.writer = writer
        }
    }

    /// Maps the file; `created` tells whether this call created it.
    private static func map(path: String, length: Int?, options: Options) throws(PmemTrackError) -> (System.PmemMapping, created: Bool) {
        let creating = !options.isDisjoint(with: [.create, .tmpfile])
        if let length, length <= 0 { throw .invalidLength(length) }
        if creating && length == nil { throw .invalidLength(0) }
        var flags: Int32 = 0
        if creating { flags |= PMEM_FILE_CREATE }
        if options.contains(.exclusive) { flags |= PMEM_FILE_EXCL }
        if options.contains(.sparse) { flags |= PMEM_FILE_SPARSE }
        if options.contains(.tmpfile) { flags |= PMEM_FILE_TMPFILE }
        // libpmem leaves a file it created behind when it then fails (for
        // example ENOSPC from posix_fallocate). A failed open changes nothing.
        let existed = options.contains(.tmpfile) || System.exists(path)
        let mapping: System.PmemMapping
        switch System.pmemMapFile(path, length: creating ? length! : 0, flags: flags, mode: 0o666) {
        case .success(let value): mapping = value
        case .failure(let errno):
            if creating && !existed { System.unlink(path) }
            throw .system(errno, operation: "pmem_map_file")
        }
        if !creating, let length, length != mapping.length {
            _ = System.pmemUnmap(mapping.base, mapping.length)
            throw .invalidLength(length)
        }
        return (mapping, creating && !existed)
    }

    deinit {
        writer?.stop()
        if !isClosed { release() }
    }

    /// Unmaps the file. Does not sync: blocks still dirty are written back
    /// only as far as the kernel's own writeback of the file does, which
    /// gives no durability guarantee. Call ``sync(file:line:)-8lk1h`` first.
    ///
    /// Waits for syncs in progress. Stores to ``bytes`` after close crash.
    /// - Throws: ``PmemTrackError/closed`` if already closed.
    public func close() throws(PmemTrackError) {
        // First the background writer, which takes the state lock to sync.
        writer?.stop()
        try state.withWriteLock { () throws(PmemTrackError) in
            guard !isClosed else { throw .closed }
            isClosed = true
            release()
        }
    }

    private func release() {
        // Withdraw from the fault handler before unmapping, so that no fault
        // path is inside the region when its pages go away.
        tracker.stop()
        // No sync runs (close holds the state lock exclusively) and no fault
        // reaches the index any more: a quiescent point to check it.
        index.checkInvariantsIfEnabled()
        _ = System.pmemUnmap(bytes.baseAddress!, bytes.count)
        if let file { System.close(file) }
    }

    func whileOpen<T>(_ body: () throws(PmemTrackError) -> T) throws(PmemTrackError) -> T {
        try state.withReadLock { () throws(PmemTrackError) -> T in
            guard !isClosed else { throw .closed }
            return try body()
        }
    }

    /// Makes every store to the mapping that completed before this call
    /// durable, flushing only the dirty blocks. The fsync of PmemTrack.
    ///
    /// - Throws: ``PmemTrackError/flushFailed(_:range:)`` for the first run
    ///   that could not be written back (those blocks stay dirty; a later
    ///   sync retries them), ``PmemTrackError/fileTruncated(length:)`` if
    ///   the file no longer covers the mapping, or ``PmemTrackError/closed``.
    ///
    /// - Parameters:
    ///   - file: The caller's file, for the crash lab's reports; leave the default.
    ///   - line: The caller's line, for the crash lab's reports; leave the default.
    /// - Returns: What the sync flushed, and where its time went.
    @discardableResult
    public func sync(file: StaticString = #fileID, line: UInt = #line) throws(PmemTrackError) -> SyncReport {
        let report = try observed(0..<bytes.count, file, line) { () throws(PmemTrackError) in
            try whileOpen { () throws(PmemTrackError) in try checkedSync(0..<index.blockCount) }
        }
        try throwBackgroundError()
        return report
    }

    /// A background writeback pass: a whole-mapping sync whose error waits
    /// for the next foreground sync. It makes no crash point of its own; a
    /// recorder still sees its flushes and drains, which make data durable.
    func backgroundSync() {
        do {
            _ = try whileOpen { () throws(PmemTrackError) in try checkedSync(0..<index.blockCount) }
        } catch .closed {
            return
        } catch {
            // Keep the first error not yet reported, as errseq does.
            backgroundError.withLock { if $0 == nil { $0 = error } }
        }
    }

    /// Throws, once, the error of a background sync since the last one thrown.
    private func throwBackgroundError() throws(PmemTrackError) {
        guard writer != nil, let error = backgroundError.withLock({ error in defer { error = nil }; return error }) else { return }
        throw error
    }

    /// Runs `sync` between the observer's two calls, if there is an observer.
    @inline(__always)
    private func observed<T>(
        _ range: @autoclosure () -> Range<Int>, _ file: StaticString, _ line: UInt,
        _ sync: () throws(PmemTrackError) -> T
    ) throws(PmemTrackError) -> T {
        guard let observer else { return try sync() }
        let site = CallSite(file: file, line: line)
        let range = range()
        observer.syncWillStart(range, site: site)
        let result: T
        do {
            result = try sync()
        } catch {
            observer.syncDidEnd(range, site: site, error: error)
            throw error
        }
        observer.syncDidEnd(range, site: site, error: nil)
        return result
    }

    /// Marks a moment at which the crash lab, when it records this mapping,
    /// also simulates a power loss: between two steps of an update that no
    /// sync separates, for example. Free otherwise: one branch.
    ///
    /// - Parameters:
    ///   - label: What the application is doing here, for reports.
    ///   - file: The caller's file, for reports; leave the default.
    ///   - line: The caller's line, for reports; leave the default.
    public func crashPoint(_ label: String = "", file: StaticString = #fileID, line: UInt = #line) {
        guard let observer else { return }
        observer.crashPoint(label, site: CallSite(file: file, line: line))
    }

    /// Runs the engine over `blocks`, refusing when the file no longer
    /// covers them: flushing pages beyond the end of the file succeeds
    /// without making anything durable. Checked before (so that nothing
    /// changes) and after (a truncation during the sync).
    private func checkedSync(_ blocks: Range<UInt64>) throws(PmemTrackError) -> SyncReport {
        let start = System.monotonicNanoseconds()
        let handler = syncHandler.withLock { $0 }
        do {
            let end = min(Int(blocks.upperBound) * blockSize, bytes.count)
            try checkFileCovers(end)
            var report = try engine.sync(blocks)
            try checkFileCovers(end)
            report.duration = .nanoseconds(Int64(System.monotonicNanoseconds() &- start))
            if let handler {
                report.dirtyBlocks = Int(index.count(.dirty, in: 0..<index.blockCount))
                handler(.success(report))
            }
            return report
        } catch {
            handler?(.failure(error))
            throw error
        }
    }

    /// Calls `handler` after every sync of this mapping, on the syncing
    /// thread: foreground, `async` and background syncs, with the sync's
    /// report or its error. Replaces the handler set before; nil removes it.
    ///
    /// The handler runs after the sync has released every block lock, so it
    /// may read the mapping (``statistics``, ``dirtyRanges()``), but it must
    /// not sync or close it, and it delays the sync's caller by its own
    /// running time. The `PmemTrackMetrics` product sets one.
    ///
    /// - Parameter handler: Called with the outcome of each sync.
    public func setSyncHandler(_ handler: (@Sendable (Result<SyncReport, PmemTrackError>) -> Void)?) {
        syncHandler.withLock { $0 = handler }
    }

    private func checkFileCovers(_ end: Int) throws(PmemTrackError) {
        guard let file else { return }
        switch System.fileSize(file) {
        case .success(let size) where size < end: throw .fileTruncated(length: size)
        case .success: return
        case .failure(let errno): throw .system(errno, operation: "fstat")
        }
    }

    /// Makes every store to `offset..<offset+length` that completed before
    /// this call durable, flushing the dirty blocks that overlap the range,
    /// whole. The msync of PmemTrack.
    ///
    /// - Parameters:
    ///   - offset: The range's first byte in the mapping.
    ///   - length: The range's length in bytes; 0 syncs nothing.
    ///   - file: The caller's file, for the crash lab's reports; leave the default.
    ///   - line: The caller's line, for the crash lab's reports; leave the default.
    /// - Throws: ``PmemTrackError/rangeOutOfBounds(offset:length:mappingLength:)``
    ///   if the range is not inside the mapping, and as ``sync(file:line:)-8lk1h``.
    /// - Returns: What the sync flushed, and where its time went.
    @discardableResult
    public func sync(
        offset: Int, length: Int, file: StaticString = #fileID, line: UInt = #line
    ) throws(PmemTrackError) -> SyncReport {
        // The observer sees the range as asked, clamped so that bad input
        // (which the sync then refuses) cannot trap here.
        let end = offset.addingReportingOverflow(max(length, 0))
        let report = try observed(offset..<(end.overflow ? Int.max : end.partialValue), file, line) {
            () throws(PmemTrackError) in
            try whileOpen { () throws(PmemTrackError) in try checkedSync(try blocks(offset: offset, length: length)) }
        }
        try throwBackgroundError()
        return report
    }

    /// The blocks overlapping `offset..<offset+length`; empty for length 0.
    func blocks(offset: Int, length: Int) throws(PmemTrackError) -> Range<UInt64> {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard offset >= 0, length >= 0, !overflow, end <= bytes.count else {
            throw .rangeOutOfBounds(offset: offset, length: length, mappingLength: bytes.count)
        }
        let shift = blockSize.trailingZeroBitCount
        let first = UInt64(offset >> shift)
        let last = length == 0 ? first : UInt64((end + blockSize - 1) >> shift)
        return first..<last
    }

    /// The byte ranges of the blocks dirty now, ascending, adjacent blocks
    /// coalesced. Empty after close. O(k · log₆₄ N) for k dirty blocks of N,
    /// plus, with ``TrackingMode/userfaultfd``, a scan of the mapping's page
    /// tables that changes no protection (about 0.5 ms per GiB).
    public func dirtyRanges() -> [Range<Int>] {
        (try? whileOpen { () throws(PmemTrackError) in
            collectWithoutProtecting()
            let shift = blockSize.trailingZeroBitCount
            return index.runs(.dirty, in: 0..<index.blockCount).map { run in
                (Int(run.lowerBound) << shift)..<min(Int(run.upperBound) << shift, bytes.count)
            }
        }) ?? []
    }

    /// The byte ranges of the blocks DIRTY in the index now, without asking
    /// the kernel first: what ``dirtyRanges()`` returns inside a sync, after
    /// its collect. For the crash lab's recorder.
    package func indexedDirtyRanges() -> [Range<Int>] {
        let shift = blockSize.trailingZeroBitCount
        return index.runs(.dirty, in: 0..<index.blockCount).map { run in
            (Int(run.lowerBound) << shift)..<min(Int(run.upperBound) << shift, bytes.count)
        }
    }

    /// Makes DIRTY the blocks the kernel saw written and no sync has
    /// collected yet, leaving them written in the kernel: a read-only view
    /// changes no protection. A failure leaves the index as it was, which
    /// only understates the dirty set of the view; syncs are not affected.
    private func collectWithoutProtecting() {
        _ = tracker.collect(0..<index.blockCount, reprotect: false)
    }

    /// A snapshot of this mapping's counters.
    ///
    /// With ``TrackingMode/userfaultfd`` this first asks the kernel which
    /// pages were written since the last sync (a `PAGEMAP_SCAN` that changes
    /// no protection), so that ``Statistics/dirtyBlocks`` and
    /// ``Statistics/writeFaults`` include them: about 0.5 ms per GiB mapped.
    /// ``dirtyRanges()`` does the same.
    public var statistics: Statistics {
        state.withReadLock {
            if !isClosed { collectWithoutProtecting() }
            let backend = tracker.statistics
            return Statistics(
                writeFaults: tracker.writeFaults,
                syncs: counters.syncs.value,
                blocksFlushed: counters.blocksFlushed.value,
                bytesFlushed: counters.bytesFlushed.value,
                flushCalls: counters.flushCalls.value,
                flushFailures: counters.flushFailures.value,
                dirtyBlocks: isClosed ? 0 : Int(index.count(.dirty, in: 0..<index.blockCount)),
                pinnedBlocks: pins.pinnedBlocks,
                indexResidentBytes: isClosed ? 0 : index.residentBytes,
                mprotect: backend.mprotect, userfaultfd: backend.userfaultfd)
        }
    }
}
