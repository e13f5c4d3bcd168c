import CPmemTrack
import Foundation
import Synchronization
import SystemPackage
import Testing
@testable import PmemTrack

/// Every system call the library makes, failed on demand through the
/// ``System`` layer (debug builds), on the paths that make it, on both
/// backends; and the SIGSEGV handler's own mprotect, which is C in a signal
/// handler, failed through its region's test hook. Each case checks what the
/// caller is told, that no DIRTY bit is lost, that a media oracle finds
/// every store durable once the failure stops, and that the mapping then
/// works as before.
///
/// `UFFDIO_WRITEPROTECT` has no row: the library itself never issues it.
/// Arming a userfaultfd mapping and re-protecting what a sync collects are
/// both `PAGEMAP_SCAN` with `PM_SCAN_WP_MATCHING` (`PagemapScan.arm` and
/// `run(_:protect:report:)`, rows below), and pins need no protection change
/// on that backend. Its only caller is the `scanThenProtect` protocol mutant.
@Suite("Injected system-call failures")
struct FailureInjectionTests {
    static let block = 4096

    /// The media: the bytes of each run whose flush and drain both
    /// succeeded, copied at its flush. Wraps the mapping's real flusher, so
    /// that injected `fdatasync` and `msync` failures happen where they would.
    final class MediaOracle: Flusher, @unchecked Sendable {
        let underlying: any Flusher
        let image: UnsafeMutableRawBufferPointer
        private let lock = NSLock()
        private var staged: [pthread_t: [(Int, [UInt8])]] = [:]

        init(length: Int, underlying: any Flusher) {
            self.underlying = underlying
            image = .allocate(byteCount: length, alignment: 64)
            image.initializeMemory(as: UInt8.self, repeating: 0)
        }

        deinit { image.deallocate() }

        var runsPerDrain: Int { underlying.runsPerDrain }

        func flush(_ run: FlushRun) -> Result<Void, Errno> {
            let result = underlying.flush(run)
            if case .success = result {
                lock.withLock { staged[pthread_self(), default: []].append((run.offset, Array(run.bytes))) }
            }
            return result
        }

        func drain() -> Result<Void, Errno> { commit(underlying.drain()) }

        func drain<Runs: Collection<FlushRun>>(after runs: Runs) -> Result<Void, Errno> {
            commit(underlying.drain(after: runs))
        }

        private func commit(_ result: Result<Void, Errno>) -> Result<Void, Errno> {
            lock.withLock {
                let runs = staged.removeValue(forKey: pthread_self()) ?? []
                guard case .success = result else { return }
                for (offset, bytes) in runs {
                    UnsafeMutableRawBufferPointer(rebasing: image[offset..<(offset + bytes.count)]).copyBytes(from: bytes)
                }
            }
            return result
        }
    }

    /// A mapping on an ordinary file whose flushes go through a media oracle.
    struct Fixture {
        let file = TemporaryFile()
        let map: TrackedMapping
        let oracle: MediaOracle
        let length: Int

        init(tracking: TrackedMapping.TrackingMode, length: Int = 1 << 20) throws {
            self.length = length
            let holder = Mutex<MediaOracle?>(nil)
            map = try TrackedMapping(
                path: file.path, length: length, options: [.create],
                configuration: .init(flushMode: .msync, tracking: tracking)
            ) { _, descriptor in
                let oracle = MediaOracle(
                    length: length, underlying: descriptor.map { FileSyncFlusher(descriptor: $0) } ?? MsyncFlusher())
                holder.withLock { $0 = oracle }
                return oracle
            }
            oracle = holder.withLock { $0! }
        }

        /// Stores a distinct byte at the start of each of `blocks`.
        func write(_ blocks: [Int], value: UInt8) {
            for block in blocks { map.bytes[block * FailureInjectionTests.block] = value &+ UInt8(truncatingIfNeeded: block) }
        }

        var dirtyBlocks: Set<Int> {
            Set(map.dirtyRanges().flatMap { ($0.lowerBound / FailureInjectionTests.block)..<($0.upperBound / FailureInjectionTests.block) })
        }

        /// The oracle's check: every byte of the mapping is on the media.
        func everythingDurable() -> Bool {
            memcmp(map.bytes.baseAddress!, oracle.image.baseAddress!, length) == 0
        }
    }

    /// After the failure: the blocks written stay dirty (none forgotten),
    /// a sync succeeds, and the media then holds every store; a new store
    /// and sync work too.
    static func expectRecovery(_ fixture: Fixture, written: [Int], _ comment: Comment) throws {
        #expect(Set(written).isSubset(of: fixture.dirtyBlocks), "a DIRTY bit was lost: \(comment)")
        try fixture.map.sync()
        #expect(fixture.everythingDurable(), "the oracle found a store lost: \(comment)")
        #expect(fixture.map.dirtyRanges().isEmpty)
        fixture.write([7], value: 0xA0)
        try fixture.map.sync()
        #expect(fixture.everythingDurable(), "the mapping does not work after: \(comment)")
    }

    static let written = [1, 2, 3, 10, 40, 41, 100]

    /// A failure of the sync's flush step: the typed error names it, with
    /// the errno and the bytes.
    @Test("fdatasync and msync failing in a sync", arguments: Backends.all, [Errno.ioError, .noSpace])
    func flushFailure(tracking: TrackedMapping.TrackingMode, errno: Errno) throws {
        // Several runs: one fdatasync for all of them.
        var fixture = try Fixture(tracking: tracking)
        fixture.write(Self.written, value: 1)
        let failure = InjectedFailure(syscall: .fdatasync, errno: errno)
        #expect(throws: PmemTrackError.self) {
            try System.withInjectedFailures([failure]) { () throws(PmemTrackError) in try fixture.map.sync() }
        }
        do {
            try System.withInjectedFailures([failure]) { () throws(PmemTrackError) in try fixture.map.sync() }
        } catch .flushFailed(let reported, let range) {
            #expect(reported == errno)
            #expect(!range.isEmpty)
        } catch {
            Issue.record("expected flushFailed(\(errno)), got \(error)")
        }
        try Self.expectRecovery(fixture, written: Self.written, "fdatasync \(errno)")

        // One run: msync of just that run.
        fixture = try Fixture(tracking: tracking)
        fixture.write([5], value: 2)
        do {
            try System.withInjectedFailures([InjectedFailure(syscall: .msync, errno: errno)]) { () throws(PmemTrackError) in
                try fixture.map.sync()
            }
            Issue.record("a failed msync reported success")
        } catch .flushFailed(let reported, let range) {
            #expect(reported == errno)
            #expect(range == 5 * Self.block..<6 * Self.block)
        } catch {
            Issue.record("expected flushFailed(\(errno)), got \(error)")
        }
        try Self.expectRecovery(fixture, written: [5], "msync \(errno)")
    }

    @Test("fstat failing in a sync", arguments: Backends.all)
    func fstatFailure(tracking: TrackedMapping.TrackingMode) throws {
        let fixture = try Fixture(tracking: tracking)
        fixture.write(Self.written, value: 3)
        for skip in [0, 1] {   // the check before the sync, and the one after
            do {
                try System.withInjectedFailures([InjectedFailure(syscall: .fstat, errno: .ioError, skip: skip)]) {
                    () throws(PmemTrackError) in try fixture.map.sync()
                }
                Issue.record("a failed fstat reported success")
            } catch .system(let errno, let operation) {
                #expect(errno == .ioError && operation == "fstat")
            } catch {
                Issue.record("expected system(EIO, fstat), got \(error)")
            }
            if skip == 0 {
                #expect(Set(Self.written).isSubset(of: fixture.dirtyBlocks), "nothing may change before the sync")
            }
            fixture.write(Self.written, value: 4)
        }
        try Self.expectRecovery(fixture, written: Self.written, "fstat")
    }

    /// On the mprotect backend a sync write-protects each run. A refusal
    /// (ENOMEM at the kernel's VMA limit) is not an error: the run is
    /// flushed and stays DIRTY, because it stays writable.
    @Test("mprotect failing in a sync keeps the runs dirty and flushes them")
    func mprotectFailureInSync() throws {
        let fixture = try Fixture(tracking: .mprotect)
        fixture.write(Self.written, value: 5)
        let before = fixture.map.statistics.mprotect?.protectFailures ?? 0
        try System.withInjectedFailures([InjectedFailure(syscall: .mprotect, errno: .noMemory)]) {
            () throws(PmemTrackError) in try fixture.map.sync()
        }
        #expect(fixture.everythingDurable(), "the runs were still flushed")
        #expect(Set(Self.written).isSubset(of: fixture.dirtyBlocks), "a writable run must stay DIRTY")
        #expect((fixture.map.statistics.mprotect?.protectFailures ?? 0) > before)
        try Self.expectRecovery(fixture, written: Self.written, "mprotect in sync")
    }

    @Test("mprotect failing in pin", arguments: Backends.all)
    func mprotectFailureInPin(tracking: TrackedMapping.TrackingMode) throws {
        let fixture = try Fixture(tracking: tracking)
        fixture.write(Self.written, value: 6)
        do {
            try System.withInjectedFailures([InjectedFailure(syscall: .mprotect, errno: .noMemory)]) {
                () throws(PmemTrackError) in try fixture.map.pin(offset: 0, length: 8 * Self.block)
            }
            // userfaultfd pins without mprotect: nothing to fail.
            #expect(tracking == .userfaultfd, "mprotect failed and pin succeeded")
            try fixture.map.unpin(offset: 0, length: 8 * Self.block)
        } catch .system(let errno, let operation) {
            #expect(tracking == .mprotect)
            #expect(errno == .noMemory && operation == "mprotect")
            #expect(fixture.map.statistics.pinnedBlocks == 0, "a failed pin pins nothing")
        }
        try Self.expectRecovery(fixture, written: Self.written, "mprotect in pin")
    }

    /// PAGEMAP_SCAN failing at once, and part-way: after its first call has
    /// reported (and write-protected again) 1024 runs of written pages, the
    /// second fails. Either failing call may also have walked and
    /// write-protected pages whose reports are lost (`afterTheCall`). Every
    /// page the failed walk may have re-protected must be DIRTY, or its
    /// store would never be flushed.
    @Test("PAGEMAP_SCAN failing in a sync, at once and part-way", .enabled(if: Backends.userfaultfdAvailable),
          arguments: [(0, false), (1, false), (0, true), (1, true)])
    func pagemapScanFailure(skip: Int, afterTheCall: Bool) throws {
        let length = 16 << 20
        let fixture = try Fixture(tracking: .userfaultfd, length: length)
        let written = Array(stride(from: 0, to: length / Self.block, by: 2))   // 2048 runs of one page
        fixture.write(written, value: 7)
        do {
            let failure = InjectedFailure(syscall: .pagemapScan, errno: .noMemory, skip: skip, afterTheCall: afterTheCall)
            try System.withInjectedFailures([failure]) {
                () throws(PmemTrackError) in try fixture.map.sync()
            }
            Issue.record("a failed scan reported success")
        } catch .system(let errno, let operation) {
            #expect(errno == .noMemory && operation == "PAGEMAP_SCAN")
        } catch {
            Issue.record("expected system(ENOMEM, PAGEMAP_SCAN), got \(error)")
        }
        try Self.expectRecovery(fixture, written: written, "PAGEMAP_SCAN after \(skip) calls, walked: \(afterTheCall)")
    }

    /// Opening a mapping: each call on the way fails, and the caller is told
    /// which; nothing is left mapped or open, and the next open works.
    @Test("open, pmem_map_file, madvise and the userfaultfd set-up and arming failing", arguments: [
        (Syscall.pmemMapFile, TrackedMapping.TrackingMode.mprotect, false),
        (.open, .mprotect, false),
        (.madvise, .mprotect, true),
        (.userfaultfdAPI, .userfaultfd, false),
        (.userfaultfdRegister, .userfaultfd, false),
        (.userfaultfd, .userfaultfd, false),
        // Arming: the scan that write-protects the whole new registration.
        (.pagemapScan, .userfaultfd, false),
    ])
    func openFailure(syscall: Syscall, tracking: TrackedMapping.TrackingMode, randomAccess: Bool) throws {
        if tracking == .userfaultfd && !Backends.userfaultfdAvailable { return }
        let file = TemporaryFile()
        let options: TrackedMapping.Options = randomAccess ? [.create, .randomAccess] : [.create]
        do {
            let map = try System.withInjectedFailures([InjectedFailure(syscall: syscall, errno: .noMemory)]) {
                () throws(PmemTrackError) in
                try TrackedMapping(path: file.path, length: 1 << 20, options: options, configuration: .init(tracking: tracking))
            }
            try? map.close()
            Issue.record("\(syscall.rawValue) failed and the open succeeded")
        } catch .system(let errno, let operation) {
            #expect(errno == .noMemory)
            #expect(operation == syscall.rawValue)
        } catch .trackingUnavailable(.mappingRefused(let errno)) {
            #expect(syscall == .userfaultfdRegister && errno == .noMemory)
        } catch .trackingUnavailable(.noPagemapScan(let errno)) {
            #expect(syscall == .pagemapScan && errno == .noMemory)
        } catch {
            Issue.record("\(syscall.rawValue): unexpected \(error)")
        }
        // .automatic falls back to mprotect where userfaultfd could not be set up.
        if tracking == .userfaultfd {
            let map = try System.withInjectedFailures([InjectedFailure(syscall: syscall, errno: .noMemory)]) {
                () throws(PmemTrackError) in
                try TrackedMapping(path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .automatic))
            }
            #expect(map.trackingMode == .mprotect)
            try map.close()
        }
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: options, configuration: .init(tracking: tracking))
        map.bytes[0] = 1
        try map.sync()
        try map.close()
    }

    /// Closing unregisters the userfaultfd range and closes the descriptors.
    /// An unregister that fails changes nothing the caller could act on:
    /// closing the userfaultfd ends the registration anyway. So close
    /// succeeds, and the file can be mapped and tracked again at once.
    @Test("UFFDIO_UNREGISTER failing at close", .enabled(if: Backends.userfaultfdAvailable))
    func unregisterFailure() throws {
        let fixture = try Fixture(tracking: .userfaultfd)
        fixture.write(Self.written, value: 9)
        try fixture.map.sync()
        try System.withInjectedFailures([InjectedFailure(syscall: .userfaultfdUnregister, errno: .noMemory)]) {
            () throws(PmemTrackError) in try fixture.map.close()
        }
        #expect(throws: PmemTrackError.closed) { try fixture.map.sync() }
        let again = try TrackedMapping(
            path: fixture.file.path, length: 1 << 20, options: [], configuration: .init(tracking: .userfaultfd))
        defer { try? again.close() }
        #expect(again.bytes[1 * Self.block] == 9 &+ 1, "the data synced before close is in the file")
        again.bytes[3 * Self.block] = 0x5A
        #expect(again.dirtyRanges() == [3 * Self.block..<4 * Self.block])
        #expect(try again.sync().blocks == 1)
    }

    // MARK: The SIGSEGV handler's mprotect

    /// The mprotect tracker of `fixture`, whose fault path takes injected failures.
    static func tracker(_ fixture: Fixture) throws -> ProtectionTracker {
        try #require(fixture.map.tracker as? ProtectionTracker)
    }

    /// ENOMEM from the fault path's mprotect: the process is out of VMAs.
    /// The degrade path runs instead of failing the store: every block
    /// DIRTY, the whole mapping writable, one degraded event; the next sync
    /// flushes everything and tracking is precise again. Run through
    /// pmt_handle_write_fault, the handler's own path, so that a broken
    /// degrade fails this test instead of killing the test process; the
    /// exit test below makes real stores.
    @Test("ENOMEM from the SIGSEGV handler's mprotect degrades: every block DIRTY, nothing lost")
    func faultPathNoMemoryDegrades() throws {
        let fixture = try Fixture(tracking: .mprotect)
        fixture.write([1, 2], value: 0x10)
        try fixture.map.sync()
        let tracker = try Self.tracker(fixture)
        let before = fixture.map.statistics
        tracker.injectFaultPathFailures(.noMemory, count: 1)
        let address = UInt(bitPattern: fixture.map.bytes.baseAddress! + 10 * Self.block)
        #expect(pmt_handle_write_fault(address) == 1, "the degrade path did not make the block writable")
        #expect(tracker.pendingFaultPathFailures == 0, "the fault path never reached the injected failure")
        // Cleared whatever happened: a failure left for the real stores
        // below would kill the test process instead of failing this test.
        tracker.injectFaultPathFailures(.noMemory, count: 0)
        let degraded = fixture.map.statistics
        #expect(degraded.mprotect?.degradedEvents == (before.mprotect?.degradedEvents ?? 0) + 1)
        #expect(fixture.map.dirtyRanges() == [0..<fixture.length], "degrading marks every block DIRTY")
        // The whole mapping is writable: these stores fault no more.
        fixture.write([10] + Self.written, value: 0x11)
        #expect(fixture.map.statistics.writeFaults == degraded.writeFaults)
        try Self.expectRecovery(fixture, written: [10] + Self.written, "ENOMEM in the fault path")
        // Precise again: one store, one block.
        fixture.write([20], value: 0x12)
        #expect(fixture.dirtyBlocks == [20])
    }

    /// A failure the fault path cannot recover from: any errno but ENOMEM,
    /// or ENOMEM that even the degrade's one mprotect over the whole mapping
    /// meets. The path reports it (-1: the handler then lets the fault
    /// through to the previous handler, see the exit tests below) and never
    /// leaves the block clean: DIRTY is set before the mprotect, and stays.
    /// The block stays read-only, so the next store is seen again.
    @Test("a failure of the SIGSEGV handler's mprotect it cannot recover from leaves the block DIRTY and read-only",
          arguments: [(Errno.permissionDenied, UInt32(1)), (.invalidArgument, 1), (.noMemory, 2)])
    func faultPathUnrecoverable(errno: Errno, count: UInt32) throws {
        let fixture = try Fixture(tracking: .mprotect)
        fixture.write([1], value: 0x20)
        try fixture.map.sync()
        let tracker = try Self.tracker(fixture)
        let before = fixture.map.statistics
        tracker.injectFaultPathFailures(errno, count: count)
        let address = UInt(bitPattern: fixture.map.bytes.baseAddress! + 10 * Self.block)
        #expect(pmt_handle_write_fault(address) == -1, "\(errno) reported as handled")
        #expect(tracker.pendingFaultPathFailures == 0, "the fault path never reached the injected failure")
        tracker.injectFaultPathFailures(errno, count: 0)   // as above: none may reach a real store
        let after = fixture.map.statistics
        #expect(after.writeFaults == before.writeFaults, "a failed fault counted as a write")
        #expect(after.mprotect?.degradedEvents == before.mprotect?.degradedEvents, "a failed degrade counted")
        #expect(fixture.dirtyBlocks.contains(10), "the block was left clean")
        if errno != .noMemory { #expect(fixture.dirtyBlocks == [10]) }
        // Still read-only: a real store faults, and now succeeds.
        fixture.write([10], value: 0x21)
        #expect(fixture.map.statistics.writeFaults == before.writeFaults + 1, "the block was left writable")
        try Self.expectRecovery(fixture, written: [10], "\(errno) in the fault path")
    }

    /// Stores through the real SIGSEGV handler in a child process: ENOMEM
    /// from the block's mprotect, and from coarsening's (under a VMA budget
    /// of 0, process-wide, hence the child), both degrade; the stores land
    /// and the media holds them after a sync.
    @Test("ENOMEM from the SIGSEGV handler's mprotect, block and coarsening, degrades under real stores", .tags(.exitTest))
    func faultPathNoMemoryRealStores() async {
        await #expect(processExitsWith: .success) {
            for coarsening in [false, true] {
                if coarsening { pmt_set_vma_budget(0) }
                let fixture = try Fixture(tracking: .mprotect)
                unlink(fixture.file.path)   // The child may die before deinitializers run.
                // DIRTY blocks for coarsening to extend towards; under the
                // budget, the store to block 3 coarsens over block 2.
                fixture.write([1, 3], value: 0x30)
                #expect(fixture.map.statistics.mprotect?.coarsenedBlocks == (coarsening ? 1 : 0))
                let tracker = try Self.tracker(fixture)
                let before = fixture.map.statistics
                tracker.injectFaultPathFailures(.noMemory, count: 1)
                fixture.write([5], value: 0x31)
                #expect(tracker.pendingFaultPathFailures == 0, "coarsening \(coarsening): no failure was injected")
                let after = fixture.map.statistics
                #expect(after.mprotect?.degradedEvents == (before.mprotect?.degradedEvents ?? 0) + 1, "coarsening \(coarsening)")
                #expect(after.mprotect?.coarsenedBlocks == before.mprotect?.coarsenedBlocks, "a failed coarsening counted")
                #expect(fixture.map.dirtyRanges() == [0..<fixture.length], "coarsening \(coarsening)")
                try Self.expectRecovery(fixture, written: [1, 3, 5], "ENOMEM, coarsening \(coarsening)")
            }
        }
    }

    /// A real store whose fault the handler cannot resolve: the store cannot
    /// proceed, the fault goes to the handler before PmemTrack's (here the
    /// default action) and the process dies with SIGSEGV, rather than the
    /// store retrying for ever or landing untracked.
    @Test("EACCES from the SIGSEGV handler's mprotect: the process dies with SIGSEGV", .tags(.exitTest))
    func faultPathPermissionDeniedKills() async {
        await #expect(processExitsWith: .signal(SIGSEGV)) {
            try FailureInjectionTests.storeWithFailingFaultPath(.permissionDenied, count: 1)
        }
    }

    @Test("EINVAL from the SIGSEGV handler's mprotect: the process dies with SIGSEGV", .tags(.exitTest))
    func faultPathInvalidArgumentKills() async {
        await #expect(processExitsWith: .signal(SIGSEGV)) {
            try FailureInjectionTests.storeWithFailingFaultPath(.invalidArgument, count: 1)
        }
    }

    @Test("ENOMEM from the SIGSEGV handler's mprotect and from its degrade: the process dies with SIGSEGV",
          .tags(.exitTest))
    func faultPathDegradeFailureKills() async {
        await #expect(processExitsWith: .signal(SIGSEGV)) {
            try FailureInjectionTests.storeWithFailingFaultPath(.noMemory, count: 2)
        }
    }

    /// A store on the mprotect backend whose fault path's mprotect fails
    /// `count` times with `errno`. Returning is a failure of the exit test.
    static func storeWithFailingFaultPath(_ errno: Errno, count: UInt32) throws {
        let fixture = try Fixture(tracking: .mprotect)
        unlink(fixture.file.path)   // The process dies before deinitializers run: remove the file now.
        try tracker(fixture).injectFaultPathFailures(errno, count: count)
        fixture.write([10], value: 0x40)
    }

    /// EFAULT, EBADF, and EINVAL from mprotect or madvise can only mean
    /// that PmemTrack built a bad argument: a debug build stops there, with
    /// the call's name, rather than turn a bug into an error to handle.
    @Test("EFAULT from mprotect traps in a debug build", .tags(.exitTest))
    func badAddressTraps() async {
        // A trap, not an error thrown or returned.
        await #expect(processExitsWith: .signal(FailureInjectionTests.trapSignal)) {
            try FailureInjectionTests.syncWithFailingMprotect(.badAddress)
        }
    }

    @Test("EINVAL from mprotect traps in a debug build", .tags(.exitTest))
    func invalidArgumentTraps() async {
        await #expect(processExitsWith: .signal(FailureInjectionTests.trapSignal)) {
            try FailureInjectionTests.syncWithFailingMprotect(.invalidArgument)
        }
    }

    @Test("EINVAL from mprotect in pin traps in a debug build", .tags(.exitTest))
    func invalidArgumentInPinTraps() async {
        // A trap, not the typed error pin would otherwise throw.
        await #expect(processExitsWith: .signal(FailureInjectionTests.trapSignal)) {
            let file = TemporaryFile()
            let map = try TrackedMapping(
                path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
            // A thrown error ends the child normally: only the trap passes.
            _ = try? System.withInjectedFailures([InjectedFailure(syscall: .mprotect, errno: .invalidArgument)]) {
                () throws(PmemTrackError) in try map.pin(offset: 0, length: 4096)
            }
        }
    }

    /// The signal a Swift trap raises: `ud2` on x86-64, `brk` on arm64.
    static var trapSignal: Int32 {
        #if arch(arm64)
        SIGTRAP
        #else
        SIGILL
        #endif
    }

    /// A sync on the mprotect backend whose write-protect fails with `errno`.
    static func syncWithFailingMprotect(_ errno: Errno) throws {
        let file = TemporaryFile()
        let map = try TrackedMapping(
            path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
        map.bytes[0] = 1
        // A thrown error ends the child normally: only the trap passes.
        _ = try? System.withInjectedFailures([InjectedFailure(syscall: .mprotect, errno: errno)]) {
            () throws(PmemTrackError) in try map.sync()
        }
    }

    @Test("an injected failure fails only the calls it names, on the injecting thread")
    func injectionIsScoped() throws {
        let failure = InjectedFailure(syscall: .fstat, errno: .ioError, skip: 1, count: 2)
        let descriptor = open("/proc/self/stat", O_RDONLY)
        defer { close(descriptor) }
        let outcomes: [Bool] = System.withInjectedFailures([failure]) {
            (0..<5).map { _ in (try? System.fileSize(descriptor).get()) != nil }
        }
        #expect(outcomes == [true, false, false, true, true])
        let elsewhere = Mutex<Bool?>(nil)
        System.withInjectedFailures([InjectedFailure(syscall: .fstat, errno: .ioError)]) {
            startThread { elsewhere.withLock { $0 = (try? System.fileSize(descriptor).get()) != nil } }
            waitUntil("the other thread's fstat to return") { elsewhere.withLock { $0 } != nil }
        }
        #expect(elsewhere.withLock { $0 } == true, "another thread's call failed")
        #expect((try? System.fileSize(descriptor).get()) != nil, "the failure outlived its scope")
    }
}
