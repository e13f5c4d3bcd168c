import SystemPackage

/// Every error PmemTrack throws.
///
/// Each case leaves the mapping and its data as they were: a failed call
/// changes nothing, and a failed flush leaves its blocks dirty so the next
/// sync retries them.
public enum PmemTrackError: Error, Hashable, Sendable {
    /// The block size is not a power of two, not a multiple of the page size,
    /// or larger than 2 MiB.
    case invalidBlockSize(Int)
    /// The length is zero, negative, or does not fit the request: a new
    /// mapping needs a positive length; an existing file, if a length is
    /// given, must have exactly that length.
    case invalidLength(Int)
    /// `offset` and `length` do not describe a range inside the mapping.
    case rangeOutOfBounds(offset: Int, length: Int, mappingLength: Int)
    /// ``TrackedMapping/FlushMode/cacheFlush`` was requested, but libpmem
    /// does not consider the mapping persistent memory, so cache flushes
    /// would not make it durable.
    case cacheFlushUnavailable
    /// The process already tracks the most mappings it can at once.
    case tooManyMappings
    /// ``TrackedMapping/unpin(offset:length:)`` of a range that is not
    /// wholly pinned.
    case notPinned(offset: Int, length: Int)
    /// The mapping was closed.
    case closed
    /// The file is now `length` bytes, shorter than the mapping: something
    /// truncated it. Stores beyond its end are lost and no sync can make
    /// them durable; the sync did nothing.
    case fileTruncated(length: Int)
    /// Writing back the bytes in `range` failed. Those blocks are still
    /// dirty; the next sync tries them again.
    case flushFailed(Errno, range: Range<Int>)
    /// A system call or libpmem call failed.
    case system(Errno, operation: String)
    /// ``TrackedMapping/TrackingMode/userfaultfd`` was requested, and it
    /// cannot work here, for the reason given. Nothing was mapped.
    /// ``TrackedMapping/TrackingMode/automatic`` falls back to
    /// ``TrackedMapping/TrackingMode/mprotect`` instead.
    case trackingUnavailable(TrackingUnavailableReason)
    /// ``TrackedMapping/Writeback`` settings that cannot work: a maximum dirty
    /// age below 1 ms, a dirty-byte limit that is not positive, or a limit
    /// without an age.
    case invalidWriteback(String)
}

/// Why the userfaultfd backend cannot track a mapping.
public enum TrackingUnavailableReason: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kernel has no userfaultfd(2) (ENOSYS), or a seccomp filter or a
    /// security module refuses it (EPERM even for user-mode-only faults,
    /// which need no privilege; Docker's default profile does this).
    case noSyscall(Errno)
    /// userfaultfd exists but this process may not open one: no
    /// `CAP_SYS_PTRACE`, `vm.unprivileged_userfaultfd` is 0 on a kernel
    /// without user-mode-only faults, and /dev/userfaultfd is not accessible.
    case permissionDenied(Errno)
    /// The kernel lacks asynchronous write-protect (`UFFD_FEATURE_WP_ASYNC`,
    /// Linux 6.7).
    case noAsyncWriteProtect
    /// The kernel (its release string is given) has asynchronous
    /// write-protect but predates Linux 6.9, whose fixes to `PAGEMAP_SCAN`
    /// PmemTrack relies on: 6.7 and 6.8 could lose a page's hardware dirty
    /// bit when a scan write-protected it ("fs/proc/task_mmu: fix loss of
    /// young/dirty bits during pagemap scan") and misread swapped-out pages
    /// in the scan's fast path.
    case kernelTooOld(String)
    /// The kernel lacks the `PAGEMAP_SCAN` ioctl (Linux 6.7), or it failed
    /// the start-up self-test.
    case noPagemapScan(Errno)
    /// The kernel refused to register or write-protect this mapping (for
    /// example EPERM for a mapping that cannot be written).
    case mappingRefused(Errno)
    /// The file is on a DAX file system, and the self-test of write-protect
    /// faults there, run in a child process, did not pass.
    case directAccessSelfTestFailed(String)
    /// `PMEMTRACK_DISABLE_USERFAULTFD=1` is set in the environment.
    case disabledByEnvironment

    /// Why userfaultfd is unavailable, in one sentence for logs and the doctor.
    public var description: String {
        switch self {
        case .noSyscall(let errno): return "no userfaultfd system call (\(errno)): the kernel lacks it or a seccomp filter blocks it"
        case .permissionDenied(let errno): return "no permission to open a userfaultfd (\(errno))"
        case .noAsyncWriteProtect: return "the kernel lacks asynchronous write-protect (UFFD_FEATURE_WP_ASYNC, Linux 6.7)"
        case .kernelTooOld(let release): return "kernel \(release) predates Linux 6.9's PAGEMAP_SCAN fixes"
        case .noPagemapScan(let errno): return "the PAGEMAP_SCAN ioctl is unavailable (\(errno))"
        case .mappingRefused(let errno): return "the kernel refused to write-protect this mapping (\(errno))"
        case .directAccessSelfTestFailed(let why): return "DAX file system: the write-protect self-test did not pass (\(why))"
        case .disabledByEnvironment: return "disabled by PMEMTRACK_DISABLE_USERFAULTFD=1"
        }
    }
}

extension PmemTrackError: CustomStringConvertible {
    /// The error in one sentence, with the operation and errno where there are some.
    public var description: String {
        switch self {
        case .invalidBlockSize(let size):
            return "invalid block size \(size): must be a power of two, a multiple of the page size (\(System.pageSize)) and at most 2 MiB"
        case .invalidLength(let length):
            return "invalid length \(length)"
        case .rangeOutOfBounds(let offset, let length, let mappingLength):
            return "range offset \(offset) length \(length) is outside the mapping of \(mappingLength) bytes"
        case .cacheFlushUnavailable:
            return "cache-flush mode requested, but the mapping is not persistent memory"
        case .tooManyMappings:
            return "too many tracked mappings in this process"
        case .notPinned(let offset, let length):
            return "unpin of offset \(offset) length \(length): not all of it is pinned"
        case .closed:
            return "the mapping is closed"
        case .fileTruncated(let length):
            return "the file was truncated to \(length) bytes, shorter than the mapping"
        case .flushFailed(let errno, let range):
            return "flushing bytes \(range.lowerBound)..<\(range.upperBound) failed: \(errno); they stay dirty"
        case .system(let errno, let operation):
            return "\(operation) failed: \(errno)"
        case .trackingUnavailable(let reason):
            return "userfaultfd tracking is unavailable: \(reason)"
        case .invalidWriteback(let why):
            return "invalid writeback: \(why)"
        }
    }
}
