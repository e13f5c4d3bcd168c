import BenchmarkBaselines
import PmemTrack

#if canImport(Glibc)
import Glibc
#endif

/// A benchmark's file: a TrackedMapping of it and, for the baselines, a
/// second plain shared mapping of the same file (the shadow), so that both
/// work on the same page-cache pages. The file is unlinked as soon as both
/// are mapped: nothing is left behind, even if the benchmark crashes.
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
    /// The shadow mapping, writable; nil with `Shadow.none`.
    public let shadow: UnsafeMutableRawBufferPointer?
    /// The file, open read-write (for the raw work's fdatasync); -1 with
    /// `Shadow.none`.
    public let descriptor: Int32

    public var blockSize: Int { map.blockSize }
    public var blockCount: Int { map.bytes.count / map.blockSize }

    /// Creates a file of `length` bytes in `directory` and maps it.
    /// - Parameters:
    ///   - sparse: Only blocks written take space; else all are allocated,
    ///     as on a real pmem device.
    ///   - flushMode: `.cacheFlush` requires `PMEM_IS_PMEM_FORCE=1` outside
    ///     real persistent memory.
    public init(
        in directory: String, length: Int, sparse: Bool, flushMode: TrackedMapping.FlushMode, shadow: Shadow
    ) throws {
        let path = "\(directory)/pmemtrack-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // Registered first: whatever happens below, no file is left behind.
        defer { unlink(path) }
        var options: TrackedMapping.Options = [.create, .exclusive]
        if sparse { options.insert(.sparse) }
        do {
            map = try TrackedMapping(
                path: path, length: length, options: options,
                configuration: .init(blockSize: TrackedMapping.pageSize, flushMode: flushMode))
        } catch .cacheFlushUnavailable {
            throw BenchmarkSetupError(
                "\(directory) is not persistent memory to libpmem: run with PMEM_IS_PMEM_FORCE=1 (run.sh does)")
        }
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
        if let shadow { _ = pmt_bench_unmap(shadow.baseAddress!, shadow.count) }
        if descriptor >= 0 { close(descriptor) }
        try? map.close()
    }

    /// Write-protects the whole shadow: the state in which every block of a
    /// tracked mapping starts.
    public func protectShadow() throws {
        guard let shadow, pmt_bench_protect_all(shadow.baseAddress!, shadow.count) == 0 else {
            throw BenchmarkSetupError("mprotect shadow: errno \(errno)")
        }
    }

    /// Syncs `map` and checks what it flushed against the blocks written
    /// since the last sync. Returns the sync's time and the blocks flushed
    /// beyond, and short of, those written.
    public func measuredSync(written: Int) throws -> (nanoseconds: Int, excess: Int, shortfall: Int) {
        let before = map.statistics.blocksFlushed
        let time = try nanoseconds { try map.sync() }
        let flushed = Int(map.statistics.blocksFlushed - before)
        return (time, max(0, flushed - written), max(0, written - flushed))
    }
}

/// Why a benchmark could not set up; package-benchmark prints it.
public struct BenchmarkSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
