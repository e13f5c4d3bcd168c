import CLibpmem
import CPmemTrack
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one layer through which PmemTrack's Swift code reaches the operating
/// system and libpmem. Every call returns a `Result` carrying the `Errno`;
/// the public API turns failures into ``PmemTrackError`` with the name of
/// the operation.
enum System {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    static var errno: Errno { Errno(rawValue: Glibc.errno) }

    static func mprotect(_ start: UnsafeMutableRawPointer, _ length: Int, _ protection: Int32) -> Result<Void, Errno> {
        if let failure = injected(.mprotect) { return .failure(checked(failure, .mprotect)) }
        return Glibc.mprotect(start, length, protection) == 0 ? .success(()) : .failure(checked(errno, .mprotect))
    }

    static func openReadOnly(_ path: String) -> Result<Int32, Errno> {
        if let failure = injected(.open) { return .failure(failure) }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        return fd >= 0 ? .success(fd) : .failure(errno)
    }

    static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// CLOCK_MONOTONIC in nanoseconds, for the phases of a ``SyncReport``.
    /// A vDSO call: about 26 ns on the development machine, no system call.
    @inline(__always)
    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// Starts a thread running `body`; nil if the system refused one. The
    /// thread is joinable: join it, or detach it.
    static func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { context in
            Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context) == 0 else {
            Unmanaged<Box>.fromOpaque(context).release()
            return nil
        }
        return thread
    }

    static func fileSize(_ fd: Int32) -> Result<Int, Errno> {
        if let failure = injected(.fstat) { return .failure(checked(failure, .fstat)) }
        var status = stat()
        return fstat(fd, &status) == 0 ? .success(Int(status.st_size)) : .failure(checked(errno, .fstat))
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func madvise(_ start: UnsafeMutableRawPointer, _ length: Int, _ advice: Int32) -> Result<Void, Errno> {
        if let failure = injected(.madvise) { return .failure(checked(failure, .madvise)) }
        return Glibc.madvise(start, length, advice) == 0 ? .success(()) : .failure(checked(errno, .madvise))
    }

    /// Writes back the file's dirty pages and the metadata needed to read
    /// them. Works on a read-only descriptor on Linux.
    static func fdatasync(_ fd: Int32) -> Result<Void, Errno> {
        if let failure = injected(.fdatasync) { return .failure(checked(failure, .fdatasync)) }
        return Glibc.fdatasync(fd) == 0 ? .success(()) : .failure(checked(errno, .fdatasync))
    }

    static func unlink(_ path: String) { _ = Glibc.unlink(path) }

    // MARK: libpmem

    struct PmemMapping {
        var base: UnsafeMutableRawPointer
        var length: Int
        var isPersistentMemory: Bool
    }

    static func pmemMapFile(_ path: String, length: Int, flags: Int32, mode: mode_t) -> Result<PmemMapping, Errno> {
        if let failure = injected(.pmemMapFile) { return .failure(failure) }
        var mappedLength = 0
        var isPmem: Int32 = 0
        guard let base = pmem_map_file(path, length, flags, mode, &mappedLength, &isPmem) else {
            return .failure(errno)
        }
        return .success(PmemMapping(base: base, length: mappedLength, isPersistentMemory: isPmem != 0))
    }

    static func pmemUnmap(_ base: UnsafeMutableRawPointer, _ length: Int) -> Result<Void, Errno> {
        pmem_unmap(base, length) == 0 ? .success(()) : .failure(errno)
    }

    /// msync(MS_SYNC) over the pages holding the range; synchronous.
    static func pmemMsync(_ start: UnsafeRawPointer, _ length: Int) -> Result<Void, Errno> {
        if let failure = injected(.msync) { return .failure(checked(failure, .msync)) }
        return pmem_msync(start, length) == 0 ? .success(()) : .failure(checked(errno, .msync))
    }

    /// Cache-line writeback (clwb, clflushopt or clflush, as libpmem chose).
    static func pmemFlush(_ start: UnsafeRawPointer, _ length: Int) {
        pmem_flush(start, length)
    }

    /// The store fence that makes preceding flushes durable.
    static func pmemDrain() {
        pmem_drain()
    }

    // MARK: Signals

    /// Blocks every asynchronous signal on the calling thread and returns the
    /// previous mask. The synchronous signals stay deliverable: the same set
    /// as the fault handler's mask, from the one list in CPmemTrack's
    /// handler.c (`pmt_fill_async_signals`).
    static func blockAsyncSignals() -> sigset_t {
        var block = sigset_t()
        pmt_fill_async_signals(&block)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &block, &previous)
        return previous
    }

    static func restoreSignalMask(_ mask: sigset_t) {
        var mask = mask
        pthread_sigmask(SIG_SETMASK, &mask, nil)
    }
}

extension System {
    /// uname(2)'s release, such as "6.18.44-fc-v857".
    static var kernelRelease: String {
        var names = utsname()
        guard uname(&names) == 0 else { return "" }
        return withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Private anonymous memory, for probes.
    static func mapAnonymous(_ length: Int) -> Result<UnsafeMutableRawPointer, Errno> {
        let memory = Glibc.mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let memory, memory != MAP_FAILED else { return .failure(errno) }
        return .success(memory)
    }

    static func unmap(_ start: UnsafeMutableRawPointer, _ length: Int) { _ = Glibc.munmap(start, length) }
}
