import Foundation
import SystemPackage
@testable import PmemTrack

/// The persistence oracle's view of the media: a separate image of the
/// mapping that holds exactly the bytes that have been flushed, that is,
/// what would survive a power loss.
///
/// As a flusher it copies each run into the image at the moment of the
/// flush, then passes the run to a real flusher.
final class MediaImage: Flusher, @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    private let lock = NSLock()
    private let underlying: any Flusher
    /// Percentage of flushes that fail with EIO or ENOSPC, reaching no media.
    private let failurePercent: Int
    private var random = FastRandom()

    init(length: Int, failurePercent: Int = 0, underlying: any Flusher = MsyncFlusher()) {
        // Anonymous memory is zero and committed only where flushes write,
        // so an image of a large, sparsely written mapping stays cheap.
        let memory = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)!
        precondition(memory != MAP_FAILED, "no memory for a media image of \(length) bytes")
        bytes = UnsafeMutableRawBufferPointer(start: memory, count: length)
        self.failurePercent = failurePercent
        self.underlying = underlying
    }

    deinit { munmap(bytes.baseAddress, bytes.count) }

    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        let failure: Errno? = lock.withLock {
            if failurePercent > 0, Int.random(in: 0..<100, using: &random) < failurePercent {
                return Bool.random(using: &random) ? .ioError : .noSpace
            }
            UnsafeMutableRawBufferPointer(rebasing: bytes[run.range]).copyMemory(from: run.bytes)
            return nil
        }
        if let failure { return .failure(failure) }
        return underlying.flush(run)
    }

    func drain() -> Result<Void, Errno> { underlying.drain() }

    /// Runs `body` while no flush can change the image.
    func withStableImage<T>(_ body: (UnsafeMutableRawBufferPointer) -> T) -> T {
        lock.withLock { body(bytes) }
    }
}
