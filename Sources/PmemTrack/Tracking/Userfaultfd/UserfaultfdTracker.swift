import CPmemTrack
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The userfaultfd asynchronous write-protect backend (Linux 6.7+).
///
/// The whole mapping is registered with a userfaultfd of its own in
/// write-protect mode with `UFFD_FEATURE_WP_ASYNC`, and armed: every page
/// write-protected. A store to a protected page faults in the kernel, which
/// clears the page's write-protect bit and lets the store proceed: no
/// signal, no VMA split. The kernel's own writes into the mapping (`read(2)`,
/// O_DIRECT) fault the same way and are tracked too.
///
/// ``collect(_:reprotect:)`` asks the kernel, with one `PAGEMAP_SCAN` walk,
/// which pages are written, write-protecting them again in the same step,
/// and marks their blocks DIRTY. The sync engine then runs its usual walk;
/// its per-run write-protect is already done.
///
/// ## The race the collect lock closes
/// A scan that write-protects is a destructive read: the kernel hands each
/// written page to exactly one scanner. If sync A's scan has taken page p
/// out of the kernel's written set but has not yet marked its block DIRTY,
/// sync B's scan of the same range finds p clean, B's tag finds nothing,
/// and B returns success before A has flushed p (demonstrated by
/// `../shared/experiments/uffd/t_two.c`). So a collect holds the mapping's
/// collect lock from before its scan until every block the scan reported
/// is DIRTY. B's collect then waits for A's to publish; B's tag sees the
/// blocks DIRTY, and B's walk, which follows DIRTY runs, waits for A's
/// block locks until A has flushed them. Tests: the `COLLECT` model and its
/// mutant F (Tests/Model), the interleaving test and the stress mutant
/// ``ProtocolMutant/publishAfterRelease``.
///
/// A sync's collect usually does more under the lock: when the index holds
/// nothing DIRTY in its range, the sync flushes and drains the reported
/// runs there (``WriteTracker/collect(_:writingBack:)``), and only what
/// failed is published. B's scan then waits until A's blocks are durable.
/// Tests: the model's `WRITEBACK` variant and its mutant J, the same
/// interleaving test, and the stress mutant
/// ``ProtocolMutant/writeBackAfterRelease``.
///
/// ## fork
/// A child of fork loses the registration (the kernel resets it), and the
/// inherited pagemap descriptor still reads the parent's memory. So every
/// use first compares `pmt_fork_generation()`: in a child, the backend
/// drops the inherited descriptors without using them, registers and arms
/// the mapping anew, and marks every block DIRTY, since the child's stores
/// before that were not tracked.
final class UserfaultfdTracker: WriteTracker, @unchecked Sendable {
    /// What the collect lock guards.
    struct Kernel {
        var uffd: Int32 = -1
        var pagemap: Int32 = -1
        /// pmt_fork_generation() when the descriptors were opened.
        var generation: UInt64 = 0
        /// Set when re-arming in a child failed: nothing is tracked any more,
        /// and every collect fails with it.
        var broken: Errno?
    }

    private let base: UnsafeMutableRawPointer
    /// The mapping's length rounded up to whole pages: what is registered.
    private let registeredLength: Int
    private let blockShift: Int
    private let index: DirtyIndex
    private let opener: UserfaultfdSupport.Opener
    private let mutant: ProtocolMutant?
    /// Registered so that fork resets the index's block locks; the SIGSEGV
    /// handler ignores it.
    private let region: UnsafeMutablePointer<pmt_region>
    private let kernel = CollectLock(Kernel())
    /// The scan's vector; used only under the collect lock.
    nonisolated(unsafe) private let vector = PagemapScan.makeVector(count: 1024)

    private let faults = Atomic<UInt64>(0)
    private let scans = Atomic<UInt64>(0)
    private let scanFailures = Atomic<UInt64>(0)
    private let rearms = Atomic<UInt64>(0)
    private let hook = Mutex<TrackerHook?>(nil)

    var mode: TrackedMapping.TrackingMode { .userfaultfd }

    /// Threads waiting for the collect lock now (for tests).
    var collectWaiters: Int { kernel.waiting }

    init(
        base: UnsafeMutableRawPointer, length: Int, blockSize: Int, index: DirtyIndex,
        opener: UserfaultfdSupport.Opener, mutant: ProtocolMutant? = nil
    ) throws(PmemTrackError) {
        let shift = blockSize.trailingZeroBitCount
        guard let region = pmt_region_create(UInt(bitPattern: base), length, UInt32(shift), index.raw, false) else {
            throw .system(.noMemory, operation: "pmt_region_create")
        }
        self.region = region
        self.base = base
        self.registeredLength = (length + System.pageSize - 1) / System.pageSize * System.pageSize
        self.blockShift = shift
        self.index = index
        self.opener = opener
        self.mutant = mutant
    }

    deinit {
        pmt_region_destroy(region)
        vector.deallocate()
    }

    func start() throws(PmemTrackError) {
        let opened = kernel.withLock { kernel in Self.arm(&kernel, base: base, length: registeredLength, opener: opener, vector: vector) }
        if case .failure(let error) = opened { throw error }
        guard pmt_register(region) == 0 else {
            stop()
            if System.errno == .noMemory { throw .system(.noMemory, operation: "pthread_atfork") }
            throw .tooManyMappings
        }
    }

    /// Opens a userfaultfd and the pagemap, registers the mapping and
    /// write-protects all of it. On failure nothing stays open.
    private static func arm(
        _ kernel: inout Kernel, base: UnsafeMutableRawPointer, length: Int,
        opener: UserfaultfdSupport.Opener, vector: UnsafeMutableBufferPointer<pmt_page_region>
    ) -> Result<Void, PmemTrackError> {
        // Transparent huge pages would make a one-byte store report 2 MiB
        // (tmpfs with huge=, and ext4's large folios mapped by PMD, which a
        // PAGEMAP_SCAN arm write-protects whole). Blocks are at most 2 MiB
        // and a page's report dirties its block, so 4 KiB entries keep the
        // reports as exact as the blocks. Only precision depends on this, so
        // a refusal is not an error.
        _ = System.madvise(base, length, MADV_NOHUGEPAGE)
        let uffd: Int32
        switch opener.open() {
        case .success(let fd): uffd = fd
        // Detection succeeded in this process, so a failure here is the
        // moment's (EMFILE, ENOMEM), not a missing feature.
        case .failure(let errno): return .failure(.system(errno, operation: "userfaultfd"))
        }
        var keep = false
        defer { if !keep { System.close(uffd) } }
        switch System.userfaultfdHandshake(uffd, features: UserfaultfdSupport.features) {
        case .success(let granted) where granted & PMT_UFFD_FEATURE_WP_ASYNC != 0: break
        case .success: return .failure(.trackingUnavailable(.noAsyncWriteProtect))
        case .failure(let errno): return .failure(.system(errno, operation: "UFFDIO_API"))
        }
        // One registration over the whole mapping: one VMA, never split.
        switch System.userfaultfdRegister(uffd, base, length) {
        case .success(let ioctls) where pmt_uffd_ioctls_allow_writeprotect(ioctls): break
        case .success: return .failure(.trackingUnavailable(.mappingRefused(.notSupported)))
        case .failure(let errno): return .failure(.trackingUnavailable(.mappingRefused(errno)))
        }
        let pagemap: Int32
        switch System.openPagemap() {
        case .success(let fd): pagemap = fd
        case .failure(let errno):
            _ = System.userfaultfdUnregister(uffd, base, length)
            return .failure(.system(errno, operation: "open /proc/self/pagemap"))
        }
        // Arm before the mapping is handed out: afterwards every first store
        // to a page is the kernel's to remember.
        let start = UInt(bitPattern: base)
        if case .failure(let errno) = PagemapScan(pagemap: pagemap, vector: vector).arm(start..<(start + UInt(length))) {
            _ = System.userfaultfdUnregister(uffd, base, length)
            System.close(pagemap)
            return .failure(.trackingUnavailable(.noPagemapScan(errno)))
        }
        keep = true
        kernel.uffd = uffd
        kernel.pagemap = pagemap
        kernel.generation = pmt_fork_generation()
        kernel.broken = nil
        return .success(())
    }

    /// In the child of a fork: the registration is gone and the descriptors
    /// are the parent's. Drop them unused (closing our references does not
    /// touch the parent's), arm anew, and take every block as written.
    private func rearmInChild(_ kernel: inout Kernel) {
        System.close(kernel.uffd)
        System.close(kernel.pagemap)
        kernel.uffd = -1
        kernel.pagemap = -1
        // DIRTY after arming: a store before the arm is covered by the
        // DIRTY bit, one after it by the kernel's written bit.
        let armed = Self.arm(&kernel, base: base, length: registeredLength, opener: opener, vector: vector)
        markDirty(0..<index.blockCount)
        rearms.add(1)
        if case .failure(let error) = armed {
            kernel.generation = pmt_fork_generation()
            kernel.broken = if case .system(let errno, _) = error { errno } else { .notSupported }
        }
    }

    private func blocks(of pages: Range<UInt>) -> Range<UInt64> {
        let start = UInt64(pages.lowerBound - UInt(bitPattern: base)) >> blockShift
        let end = (UInt64(pages.upperBound - UInt(bitPattern: base)) + (1 << blockShift) - 1) >> blockShift
        return start..<min(end, index.blockCount)
    }

    private func pages(of blocks: Range<UInt64>) -> Range<UInt> {
        let start = UInt(bitPattern: base)
        return (start + UInt(blocks.lowerBound << blockShift))..<(start + min(UInt(blocks.upperBound << blockShift), UInt(registeredLength)))
    }

    func collect(_ blocks: Range<UInt64>, reprotect: Bool) -> Result<Void, PmemTrackError> {
        collect(blocks, reprotect: reprotect) { $0 }
    }

    func collect(
        _ blocks: Range<UInt64>, writingBack writeBack: ([Range<UInt64>]) -> [Range<UInt64>]
    ) -> Result<Void, PmemTrackError> {
        collect(blocks, reprotect: true, writeBack)
    }

    /// Scan, write back, publish. `writeBack` returns the runs it did not
    /// make durable; `{ $0 }` publishes everything.
    private func collect(
        _ blocks: Range<UInt64>, reprotect: Bool, _ writeBack: ([Range<UInt64>]) -> [Range<UInt64>]
    ) -> Result<Void, PmemTrackError> {
        guard !blocks.isEmpty else { return .success(()) }
        let hook = self.hook.withLock { $0 }
        // The collect lock is held from the scan until its blocks are
        // durable or DIRTY (see the type's documentation); the mutants
        // release it before.
        let (reported, result) = kernel.withLock { kernel -> ([Range<UInt64>], Result<Void, PmemTrackError>) in
            if kernel.generation != pmt_fork_generation() { rearmInChild(&kernel) }
            if let broken = kernel.broken {
                markDirty(blocks)
                return ([], .failure(.system(broken, operation: "userfaultfd re-arm after fork")))
            }
            let (reported, result) = scan(blocks, reprotect: reprotect, kernel: kernel, hook: hook)
            if mutant == .publishAfterRelease || mutant == .writeBackAfterRelease { return (reported, result) }
            if mutant != .scanThenProtect { hook?.pause(.scanned(blocks)) }
            publish(reported, writingBack: writeBack, if: result.isSuccess)
            return ([], result)
        }
        if mutant == .publishAfterRelease || mutant == .writeBackAfterRelease {
            hook?.pause(.scanned(blocks))
            Self.widenMutantWindow()
            publish(reported, writingBack: writeBack, if: mutant == .writeBackAfterRelease && result.isSuccess)
        }
        return result
    }

    /// The scan proper: the runs of blocks holding a written page, ascending
    /// and coalesced; on failure also every block the walk may have
    /// re-protected.
    private func scan(
        _ blocks: Range<UInt64>, reprotect: Bool, kernel: Kernel, hook: TrackerHook?
    ) -> ([Range<UInt64>], Result<Void, PmemTrackError>) {
        scans.add(1)
        let scanner = PagemapScan(pagemap: kernel.pagemap, vector: vector)
        var found: [Range<UInt64>] = []
        let range = pages(of: blocks)
        // The soft-dirty race, kept as a mutant: read without protecting,
        // then protect separately. A store between the two is protected
        // without ever being reported.
        let separateProtect = reprotect && mutant == .scanThenProtect
        let outcome = scanner.run(range, protect: reprotect && !separateProtect) { pages in
            let run = self.blocks(of: pages)
            if let last = found.last, last.upperBound >= run.lowerBound {
                found[found.count - 1] = last.lowerBound..<max(last.upperBound, run.upperBound)
            } else {
                found.append(run)
            }
        }
        if separateProtect {
            hook?.pause(.scanned(blocks))
            Self.widenMutantWindow()
            _ = System.userfaultfdWriteProtect(kernel.uffd, UnsafeMutableRawPointer(bitPattern: range.lowerBound)!, range.count, protect: true)
        }
        switch outcome {
        case .success:
            return (found, .success(()))
        case .failure(let failure):
            // Nothing written is forgotten: whatever the failed walk may
            // have re-protected becomes DIRTY with what it reported.
            scanFailures.add(1)
            found.append(self.blocks(of: failure.uncertain))
            return (found, .failure(.system(failure.errno, operation: "PAGEMAP_SCAN")))
        }
    }

    /// A mutant's own race window, held open long enough for the stress
    /// test's other threads to run into it. Only mutants call it.
    private static func widenMutantWindow() { usleep(2000) }

    /// Marks `runs` DIRTY under their block locks, counting the blocks that
    /// were clean: first writes, as the mprotect backend's faults count them.
    ///
    /// Why under the block locks: a sync that holds a block between its
    /// flush and clearing DIRTY clears the bit for every store its flush
    /// covered. With mprotect, a later store faults and waits for that lock.
    /// Here it does not wait: it lands, and a concurrent collect takes it out
    /// of the kernel's written set. Were that collect to set DIRTY while the
    /// sync still holds the block, the sync's clear would erase it, and the
    /// store would be in no flush and in no record (the persistence oracle
    /// found this). Taking the lock orders the publication after the clear,
    /// as the fault path's lock → DIRTY → writable → unlock does for
    /// mprotect. Lock order: collect lock, then block locks ascending; a sync
    /// never waits for the collect lock while it holds a block lock.
    ///
    /// Before publishing, `writeBack` may make some of the runs durable
    /// (see ``WriteTracker/collect(_:writingBack:)``); those are first
    /// writes too, and are never published.
    private func publish(
        _ reported: [Range<UInt64>], writingBack writeBack: ([Range<UInt64>]) -> [Range<UInt64>], if writesBack: Bool
    ) {
        guard !reported.isEmpty else { return }
        let unflushed = writesBack ? writeBack(reported) : reported
        var firstWrites = Self.blockCount(reported) - Self.blockCount(unflushed)
        for run in unflushed { firstWrites += markDirty(run) }
        if firstWrites != 0 { faults.add(firstWrites) }
    }

    private static func blockCount(_ runs: [Range<UInt64>]) -> UInt64 {
        runs.reduce(0) { $0 + UInt64($1.count) }
    }

    /// Sets DIRTY on `run` under its block locks (see ``publish(_:)``);
    /// returns how many of its blocks were clean.
    @discardableResult
    private func markDirty(_ run: Range<UInt64>) -> UInt64 {
        let locking = mutant != .publishWithoutBlockLock
        if locking { index.lock(run) }
        defer { if locking { index.unlock(run) } }
        return index.setCounting(.dirty, run)
    }

    /// Nothing to do: the collect that preceded the sync write-protected
    /// every page it reported, in the same step, and the others were
    /// protected already. A store since then is in the kernel's written set.
    func writeProtect(_ blocks: Range<UInt64>) -> Result<Void, Errno> { .success(()) }

    /// Nothing to do: the kernel's own writes fault in the kernel and are
    /// tracked; a pinned block stays DIRTY, so every sync flushes it.
    func makeWritable(_ blocks: Range<UInt64>) -> Result<Void, Errno> { .success(()) }

    func stop() {
        pmt_unregister(region)
        kernel.withLock { kernel in
            guard kernel.uffd >= 0 else { return }
            // In a child that never re-armed, the descriptor is the parent's:
            // unregistering through it would unregister the parent's mapping.
            if kernel.generation == pmt_fork_generation() {
                _ = System.userfaultfdUnregister(kernel.uffd, base, registeredLength)
            }
            System.close(kernel.uffd)
            System.close(kernel.pagemap)
            kernel.uffd = -1
            kernel.pagemap = -1
        }
    }

    func aroundSync<E: Error>(of blocks: Range<UInt64>, _ sync: () throws(E) -> Void) throws(E) { try sync() }

    var writeFaults: UInt64 { faults.value }

    var statistics: TrackerStatistics {
        .userfaultfd(.init(scans: scans.value, scanFailures: scanFailures.value, rearms: rearms.value))
    }

    func setHook(_ hook: TrackerHook?) { self.hook.withLock { $0 = hook } }
}

extension Result {
    fileprivate var isSuccess: Bool {
        if case .success = self { true } else { false }
    }
}
