import BenchmarkBaselines
import PmemTrack

#if canImport(Glibc)
import Glibc
#endif

/// A benchmark's file: a TrackedMapping of it and, for the baselines, a
/// second plain shared mapping of the same file (the shadow), so that both
/// work on the same page-cache pages. The file is unlinked as soon as both
/// are mapped: nothing is left behind, even if the benchmark crashes.
/// A benchmark comparing the two tracking backends also gets a second
/// TrackedMapping of the same file, with the other backend.
public final class BenchmarkFile {
    public enum Shadow {
        /// No second mapping.
        case none
        /// Mapped, pages faulted in as touched.
        case lazy
        /// Mapped with every page faulted in: whole-mapping flushes then
        /// measure flushing, not page faults.
        case populated
    }

    public let map: TrackedMapping
    /// A second tracked mapping of the same file, if asked for.
    public let second: TrackedMapping?
    /// The shadow mapping, writable; nil with `Shadow.none`.
    public let shadow: UnsafeMutableRawBufferPointer?
    /// How the shadow was mapped.
    public let shadowMode: Shadow
    /// The file, open read-write (for the raw work's fdatasync); -1 with
    /// `Shadow.none`.
    public let descriptor: Int32

    /// The shadow's own userfaultfd, after ``registerShadowWithUserfaultfd()``.
    public private(set) var shadowUffd = pmt_bench_uffd(uffd: -1, pagemap: -1)
    /// The scan vector of the userfaultfd baselines: as many regions per
    /// call as PmemTrack's backend asks for.
    public let regions = UnsafeMutableBufferPointer<pmt_bench_region>.allocate(capacity: 1_024)
    /// Each mapping's blocksFlushed after its last measured sync: on the
    /// userfaultfd backend reading statistics scans the mapping, which must
    /// not happen between the stores and the measured sync.
    private var coarsenedSoFar: [ObjectIdentifier: UInt64] = [:]

    public var blockSize: Int { map.blockSize }
    public var blockCount: Int { map.bytes.count / map.blockSize }

    /// Creates a file of `length` bytes in `directory` and maps it.
    /// - Parameters:
    ///   - sparse: Only blocks written take space; else all are allocated,
    ///     as on a real pmem device.
    ///   - flushMode: `.cacheFlush` requires `PMEM_IS_PMEM_FORCE=1` outside
    ///     real persistent memory.
    ///   - tracking: `map`'s backend; never `.automatic`, so that a result
    ///     says which backend it measured.
    ///   - second: The backend of a second tracked mapping of the file, if any.
    public init(
        in directory: String, length: Int, sparse: Bool, flushMode: TrackedMapping.FlushMode,
        tracking: TrackedMapping.TrackingMode, shadow: Shadow, second: TrackedMapping.TrackingMode? = nil
    ) throws {
        let path = "\(directory)/pmemtrack-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // Registered first: whatever happens below, no file is left behind.
        defer { unlink(path) }
        var options: TrackedMapping.Options = [.create, .exclusive]
        if sparse { options.insert(.sparse) }
        func track(_ options: TrackedMapping.Options, _ tracking: TrackedMapping.TrackingMode) throws -> TrackedMapping {
            let map: TrackedMapping
            do {
                map = try TrackedMapping(
                    path: path, length: length, options: options,
                    configuration: .init(blockSize: TrackedMapping.pageSize, flushMode: flushMode, tracking: tracking))
            } catch .cacheFlushUnavailable {
                throw BenchmarkSetupError(
                    "\(directory) is not persistent memory to libpmem: run with PMEM_IS_PMEM_FORCE=1 (run.sh does)")
            } catch .trackingUnavailable(let reason) {
                throw BenchmarkSetupError("\(tracking) tracking is unavailable here: \(reason)")
            }
            guard map.trackingMode == tracking else {
                throw BenchmarkSetupError("asked for \(tracking) tracking, got \(map.trackingMode)")
            }
            return map
        }
        map = try track(options, tracking)
        shadowMode = shadow
        self.second = try second.map { try track([], $0) }
        guard shadow != .none else {
            self.shadow = nil
            descriptor = -1
            return
        }
        let fd = open(path, O_RDWR)
        guard fd >= 0 else { throw BenchmarkSetupError("open \(path): errno \(errno)") }
        guard let base = pmt_bench_map_shared(fd, length, shadow == .populated ? 1 : 0) else {
            close(fd)
            throw BenchmarkSetupError("mmap \(path): errno \(errno)")
        }
        self.shadow = UnsafeMutableRawBufferPointer(start: base, count: length)
        descriptor = fd
    }

    deinit {
        pmt_bench_uffd_close(&shadowUffd)
        regions.deallocate()
        if let shadow { _ = pmt_bench_unmap(shadow.baseAddress!, shadow.count) }
        if descriptor >= 0 { close(descriptor) }
        try? map.close()
        try? second?.close()
    }

    /// Registers the whole shadow with a userfaultfd of its own, in
    /// asynchronous write-protect mode, and arms it: the state in which a
    /// userfaultfd-tracked mapping starts.
    public func registerShadowWithUserfaultfd() throws {
        guard let shadow else { throw BenchmarkSetupError("no shadow mapping to register") }
        let populated: Int32 = shadowMode == .populated ? 1 : 0
        guard pmt_bench_uffd_register(shadow.baseAddress!, shadow.count, populated, &shadowUffd) == 0 else {
            throw BenchmarkSetupError("userfaultfd register shadow: errno \(errno)")
        }
        try armShadow()
    }

    /// Write-protects the whole registered shadow with one PAGEMAP_SCAN that
    /// reports nothing (vec = NULL, vec_len = 0).
    public func armShadow() throws {
        guard let shadow, pmt_bench_uffd_arm(&shadowUffd, shadow.baseAddress!, shadow.count) == 0 else {
            throw BenchmarkSetupError("PAGEMAP_SCAN arm shadow: errno \(errno)")
        }
    }

    /// Pages of the registered shadow written since it was last armed or
    /// scanned, counted by a PAGEMAP_SCAN that protects nothing.
    public func shadowWrittenPages() throws -> Int {
        let shadow = shadow!
        let pages = pmt_bench_uffd_scan(
            &shadowUffd, shadow.baseAddress!, shadow.count, 0, regions.baseAddress, regions.count, nil, nil)
        guard pages >= 0 else { throw BenchmarkSetupError("PAGEMAP_SCAN shadow: errno \(errno)") }
        return pages
    }

    /// Write-protects the whole shadow: the state in which every block of a
    /// tracked mapping starts.
    public func protectShadow() throws {
        guard let shadow, pmt_bench_protect_all(shadow.baseAddress!, shadow.count) == 0 else {
            throw BenchmarkSetupError("mprotect shadow: errno \(errno)")
        }
    }

    /// Syncs `map` (or `second`) and checks what it flushed against the
    /// blocks written since the last sync. Returns the sync's time and the
    /// blocks flushed beyond, and short of, those written.
    public func measuredSync(
        written: Int, second: Bool = false
    ) throws -> (nanoseconds: Int, excess: Int, shortfall: Int, coarsened: Int) {
        let map = second ? self.second! : self.map
        var report = SyncReport()
        let time = try nanoseconds { report = try map.sync() }
        let flushed = report.blocks
        return (time, max(0, flushed - written), max(0, written - flushed), coarsenedSinceLastSync(map))
    }

    /// Blocks the VMA budget added to flush sets since the last call for `map`.
    public func coarsenedSinceLastSync(_ map: TrackedMapping) -> Int {
        let now = map.statistics.mprotect?.coarsenedBlocks ?? 0
        defer { coarsenedSoFar[ObjectIdentifier(map)] = now }
        return Int(now - (coarsenedSoFar[ObjectIdentifier(map)] ?? 0))
    }
}

/// Why a benchmark could not set up; package-benchmark prints it.
public struct BenchmarkSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
