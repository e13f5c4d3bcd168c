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
}

extension PmemTrackError: CustomStringConvertible {
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
        }
    }
}
