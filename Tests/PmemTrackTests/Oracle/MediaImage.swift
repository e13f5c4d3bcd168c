import Foundation
import SystemPackage
import Testing
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

    /// With more than one, flushes only stage their runs, and the drain
    /// copies all of this thread's staged runs into the image at once (or,
    /// when it fails, none): like FileSyncFlusher, durable only at the drain.
    let runsPerDrain: Int
    private var staged: [pthread_t: [FlushRun]] = [:]

    init(length: Int, failurePercent: Int = 0, runsPerDrain: Int = 1, underlying: any Flusher = MsyncFlusher()) throws {
        self.runsPerDrain = runsPerDrain
        // Anonymous memory is zero and committed only where flushes write,
        // so an image of a large, sparsely written mapping stays cheap.
        let memory = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        let mapped = try #require(memory.flatMap { $0 == MAP_FAILED ? nil : $0 }, "no memory for a media image of \(length) bytes")
        bytes = UnsafeMutableRawBufferPointer(start: mapped, count: length)
        self.failurePercent = failurePercent
        self.underlying = underlying
    }

    deinit { munmap(bytes.baseAddress, bytes.count) }

    /// Flush (or drain) calls so far, for the failure schedule.
    private var calls = 0

    /// Every (100 / failurePercent)-th call fails, starting with the second:
    /// a fixed schedule rather than a coin, so that a run with few syncs
    /// (the userfaultfd stress under a loaded machine made as few as 11)
    /// still sees failures. Which errno is random. Called under `lock`.
    private func injectedFailure() -> Errno? {
        guard failurePercent > 0 else { return nil }
        calls += 1
        let period = max(1, 100 / failurePercent)
        guard calls % period == 2 % period else { return nil }
        return Bool.random(using: &random) ? .ioError : .noSpace
    }

    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        if runsPerDrain > 1 {
            lock.withLock { staged[pthread_self(), default: []].append(run) }
            return .success(())
        }
        let failure: Errno? = lock.withLock {
            if let failure = injectedFailure() { return failure }
            UnsafeMutableRawBufferPointer(rebasing: bytes[run.range]).copyMemory(from: run.bytes)
            return nil
        }
        if let failure { return .failure(failure) }
        return underlying.flush(run)
    }

    func drain() -> Result<Void, Errno> {
        guard runsPerDrain > 1 else { return underlying.drain() }
        let failure: Errno? = lock.withLock {
            let runs = staged.removeValue(forKey: pthread_self()) ?? []
            if let failure = injectedFailure() { return failure }
            for run in runs { UnsafeMutableRawBufferPointer(rebasing: bytes[run.range]).copyMemory(from: run.bytes) }
            return nil
        }
        return failure.map { .failure($0) } ?? .success(())
    }

    /// Runs `body` while no flush can change the image.
    func withStableImage<T>(_ body: (UnsafeMutableRawBufferPointer) -> T) -> T {
        lock.withLock { body(bytes) }
    }
}
