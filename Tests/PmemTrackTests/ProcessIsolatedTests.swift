import Foundation
import Synchronization
import CPmemTrack
import SystemPackage
import Testing
@testable import PmemTrack

/// Tests that change process-wide state (signal dispositions, libpmem's
/// environment, the VMA count) or measure it (descriptors, VMAs, registry
/// slots) run in their own process, as exit tests.
@Suite("Process-isolated behaviour", .tags(.exitTest))
struct ProcessIsolatedTests {
    // MARK: Crashes

    /// Maps a file, checks that a store to it is tracked (our fault, handled
    /// without any other handler), then makes a fault that is not ours.
    static func trackWriteThenDereferenceNull() throws {
        let file = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
        unlink(file.path)   // The process dies before deinitializers run: remove the file now.
        map.bytes[8192] = 1
        try #require(map.dirtyRanges() == [8192..<12288] && map.statistics.writeFaults == 1)
        UnsafeMutablePointer<Int>(bitPattern: 8)!.pointee = 1
    }

    @Test("a fault outside any tracked region still gets Swift's crash report")
    func foreignFaultKeepsSwiftCrashReport() throws {
        let fixture = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("pmemtrack-crash-fixture")
        let file = TemporaryFile()
        let process = Process()
        process.executableURL = fixture
        process.arguments = ["foreign", file.path]
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=yes,interactive=no,color=no"
        process.environment = environment
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // The reads end when the fixture exits; a fixture that hangs is
        // killed, which ends them too. (It crashes and writes a symbolicated
        // backtrace: a process's worth of work.)
        let watchdog = Watchdog(after: Bound.work) { kill(process.processIdentifier, SIGKILL) }
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if watchdog.disarm() { Issue.record("timed out waiting for the crash fixture to crash and report; killed it") }
        waitForExit(process, "the crash fixture to exit once its output is closed")
        #expect(stdout.contains("tracked write ok: dirty [Range(4096..<8192)]"))
        #expect(!stdout.contains("unreachable"))
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGSEGV)
        #expect(stderr.contains("Program crashed: Bad pointer dereference at 0x0000000000000008"), "stderr: \(stderr.prefix(400))")
    }

    @Test("a fault outside any tracked region crashes with SIGSEGV when no handler was installed before")
    func foreignFaultWithDefaultDisposition() async {
        await #expect(processExitsWith: .signal(SIGSEGV)) {
            try Self.trackWriteThenDereferenceNull()
        }
    }

    @Test("faults that are not ours reach an SA_SIGINFO handler installed before PmemTrack")
    func chainsToSiginfoHandler() async {
        await #expect(processExitsWith: .exitCode(42)) {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { _, info, _ in
                // The original fault's address must come through untouched.
                _exit(info?.pointee._sifields._sigfault.si_addr == UnsafeMutableRawPointer(bitPattern: 8) ? 42 : 43)
            }
            action.sa_flags = SA_SIGINFO
            sigaction(SIGSEGV, &action, nil)
            try Self.trackWriteThenDereferenceNull()
        }
    }

    @Test("faults that are not ours reach a plain handler installed before PmemTrack")
    func chainsToPlainHandler() async {
        await #expect(processExitsWith: .exitCode(44)) {
            signal(SIGSEGV) { _ in _exit(44) }
            try Self.trackWriteThenDereferenceNull()
        }
    }

    @Test("an ignored SIGSEGV still kills on a foreign fault, as the kernel does")
    func ignoredDispositionStillCrashes() async {
        await #expect(processExitsWith: .signal(SIGSEGV)) {
            signal(SIGSEGV, SIG_IGN)
            try Self.trackWriteThenDereferenceNull()
        }
    }

    /// A store past the end of a file that was truncated under the mapping
    /// raises SIGBUS. PmemTrack never handles SIGBUS: the store first gets
    /// past our write barrier (the block is made writable and DIRTY), then
    /// the kernel's SIGBUS reaches the default action.
    @Test("a store beyond a truncated file dies with SIGBUS")
    func storeBeyondTruncatedFile() async {
        await #expect(processExitsWith: .signal(SIGBUS)) {
            let file = TemporaryFile()
            let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
            map.bytes[0] = 1
            truncate(file.path, 4096)
            unlink(file.path)   // The process dies before deinitializers run: remove the file now.
            map.bytes[512 << 10] = 1
        }
    }

    @Test("a SIGBUS handler installed by the application still gets SIGBUS")
    func sigbusReachesApplicationHandler() async {
        await #expect(processExitsWith: .exitCode(45)) {
            signal(SIGBUS) { _ in _exit(45) }
            let file = TemporaryFile()
            let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
            truncate(file.path, 4096)
            unlink(file.path)   // The process dies before deinitializers run: remove the file now.
            map.bytes[512 << 10] = 1
        }
    }

    @Test("a store to a tracked region after close crashes with SIGSEGV")
    func storeAfterClose() async {
        await #expect(processExitsWith: .signal(SIGSEGV)) {
            let file = TemporaryFile()
            let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
            map.bytes[0] = 1
            try map.close()
            unlink(file.path)   // The process dies before deinitializers run: remove the file now.
            map.bytes[4096] = 1
        }
    }

    // MARK: The cache-flush path

    @Test("cache-flush mode on /dev/shm with PMEM_IS_PMEM_FORCE=1")
    func cacheFlushPath() async {
        await #expect(processExitsWith: .success) { try Self.cacheFlushPath(tracking: .mprotect) }
    }

    @Test("userfaultfd: cache-flush mode on /dev/shm with PMEM_IS_PMEM_FORCE=1", .enabled(if: Backends.userfaultfdAvailable))
    func userfaultfdCacheFlushPath() async {
        await #expect(processExitsWith: .success) { try Self.cacheFlushPath(tracking: .userfaultfd) }
    }

    static func cacheFlushPath(tracking: TrackedMapping.TrackingMode) throws {
        do {
            // libpmem reads this at its first pmem_is_pmem call, which has not
            // happened yet in this fresh process.
            setenv("PMEM_IS_PMEM_FORCE", "1", 1)
            let file = TemporaryFile(in: "/dev/shm")
            let map = try TrackedMapping(path: file.path, length: 8 << 20, options: [.create], configuration: .init(tracking: tracking))
            try #require(map.isPersistentMemory && map.flushMode == .cacheFlush && map.trackingMode == tracking)
            for block in [0, 1, 2, 700, 2047] { map.bytes[block * 4096 + 9] = UInt8(block % 251) }
            #expect(map.dirtyRanges() == [0..<3 * 4096, 700 * 4096..<701 * 4096, 2047 * 4096..<2048 * 4096])
            try map.sync(offset: 700 * 4096, length: 1)
            #expect(map.statistics.blocksFlushed == 1)
            try map.sync()
            let stats = map.statistics
            #expect(map.dirtyRanges().isEmpty && stats.blocksFlushed == 5 && stats.flushCalls == 3)
            if tracking == .mprotect { #expect(!ProcessMaps.isWritable(map.bytes, at: 700 * 4096)) }
            try map.close()
            let data = try Data(contentsOf: URL(fileURLWithPath: file.path))
            #expect(data[700 * 4096 + 9] == UInt8(700 % 251) && data[2047 * 4096 + 9] == UInt8(2047 % 251))
        }
    }

    // MARK: Lifecycle

    /// Checks only what PmemTrack itself opens, maps and registers. The
    /// process-wide totals are not usable here: the exit-test child's runtime
    /// opens descriptors of its own while the test runs (Dispatch's timerfd was
    /// seen to appear mid-loop in about one full test run in three).
    @Test("1000 open/close cycles leak no descriptors, VMAs, registry slots or index memory")
    func openCloseLeaksNothing() async {
        await #expect(processExitsWith: .success) {
            let file = TemporaryFile(in: "/dev/shm")
            func cycle(check: Bool = false) throws {
                let map = try TrackedMapping(
                    path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
                for block in stride(from: 0, to: 256, by: 5) { map.bytes[block * 4096] = 1 }
                try map.sync(offset: 0, length: 512 << 10)
                if check {
                    // While open, each measure sees the mapping, so each check
                    // below could fail.
                    #expect(ProcessFiles.descriptorCount(for: file.path) == 1, "descriptor not seen")
                    #expect(ProcessMaps.vmaCount(mapping: file.path) > 1, "file VMAs not seen")
                    #expect(pmt_index_live_count() == 1 && pmt_registry_count() == 1)
                }
                try map.close()
            }
            try cycle(check: true)
            for _ in 0..<1000 { try cycle() }
            let descriptors = ProcessFiles.descriptorCount(for: file.path)
            let vmas = ProcessMaps.vmaCount(mapping: file.path)
            #expect(descriptors == 0, "descriptors leaked: \(descriptors)")
            #expect(vmas == 0, "VMAs of the file leaked: \(vmas)")
            #expect(pmt_index_live_count() == 0, "indexes leaked: \(pmt_index_live_count())")
            #expect(pmt_registry_count() == 0, "registry slots leaked: \(pmt_registry_count())")
        }
    }

    @Test("userfaultfd: 1000 open/close cycles leak no descriptors, VMAs, registrations or index memory",
          .enabled(if: Backends.userfaultfdAvailable), .tags(.stress))
    func userfaultfdOpenCloseLeaksNothing() async {
        await #expect(processExitsWith: .success) {
            let file = TemporaryFile(in: "/dev/shm")
            let before = ProcessFiles.userfaultfdDescriptorCount()
            func cycle(check: Bool = false) throws {
                let map = try TrackedMapping(
                    path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .userfaultfd))
                for block in stride(from: 0, to: 256, by: 5) { map.bytes[block * 4096] = 1 }
                try map.sync(offset: 0, length: 512 << 10)
                if check {
                    #expect(ProcessFiles.descriptorCount(for: file.path) == 1, "descriptor not seen")
                    #expect(ProcessFiles.userfaultfdDescriptorCount() == before + 2, "uffd and pagemap not seen")
                    #expect(ProcessMaps.vmaCount(mapping: file.path) == 1, "the registered mapping is one VMA")
                    #expect(pmt_index_live_count() == 1 && pmt_registry_count() == 1)
                }
                try map.close()
            }
            try cycle(check: true)
            for _ in 0..<1000 { try cycle() }
            #expect(ProcessFiles.descriptorCount(for: file.path) == 0, "file descriptors leaked")
            let left = ProcessFiles.userfaultfdDescriptorCount() - before
            #expect(left == 0, "userfaultfd or pagemap descriptors leaked: \(left)")
            #expect(ProcessMaps.vmaCount(mapping: file.path) == 0, "VMAs of the file leaked")
            #expect(pmt_index_live_count() == 0 && pmt_registry_count() == 0, "index or registry leaked")
        }
    }

    @Test("the registry holds 1024 mappings; the next one is a typed error, and closing frees a slot")
    func registryCapacity() async {
        await #expect(processExitsWith: .success) {
            let file = TemporaryFile()
            var maps: [TrackedMapping] = []
            // Until the registry refuses one (bounded: one past its capacity).
            while maps.count <= Int(PMT_REGISTRY_SLOTS) {
                do {
                    maps.append(try TrackedMapping(path: file.path, length: 8192, options: [.create], configuration: .init(tracking: .mprotect)))
                } catch {
                    #expect(error as? PmemTrackError == .tooManyMappings, "\(error)")
                    break
                }
            }
            try #require(maps.count == Int(PMT_REGISTRY_SLOTS), "\(maps.count)")
            try maps.removeLast().close()
            let again = try TrackedMapping(path: file.path, length: 8192, options: [.create], configuration: .init(tracking: .mprotect))
            again.bytes[0] = 1
            #expect(again.dirtyRanges() == [0..<4096])
        }
    }

    // MARK: The VMA limit

    @Test("at the VMA limit the fault path degrades to whole-mapping dirty instead of faulting forever")
    func degradesAtVMALimit() async {
        await #expect(processExitsWith: .success) {
            let file = TemporaryFile()
            let map = try TrackedMapping(path: file.path, length: 16 << 20, options: [.create], configuration: .init(tracking: .mprotect))
            // Use up the process's VMAs: alternate the protection of the pages
            // of a large reservation until mprotect refuses with ENOMEM.
            let limit = Int(try String(contentsOfFile: "/proc/sys/vm/max_map_count", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines))!
            let pages = 2 * limit + 16
            let hog = mmap(nil, pages * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)!
            var page = 1
            while page < pages, mprotect(hog + page * 4096, 4096, PROT_NONE) == 0 { page += 2 }
            try #require(errno == ENOMEM, "expected to reach the VMA limit")

            // A store in the middle of the read-only mapping needs two new
            // VMAs, which the process does not have.
            map.bytes[5 * 4096 + 1] = 9
            map.bytes[3000 * 4096] = 8
            let stats = map.statistics
            #expect(stats.mprotect!.degradedEvents >= 1, "expected the fallback")
            #expect(stats.dirtyBlocks == 4096 && map.dirtyRanges() == [0..<(16 << 20)])

            // Sync flushes everything; one mprotect over the whole run needs
            // no new VMA, so the mapping returns to precise tracking.
            try map.sync()
            #expect(map.dirtyRanges().isEmpty)
            munmap(hog, pages * 4096)
            map.bytes[7 * 4096] = 1
            #expect(map.dirtyRanges() == [7 * 4096..<8 * 4096])
            try map.close()
            let data = try Data(contentsOf: URL(fileURLWithPath: file.path))
            #expect(data[5 * 4096 + 1] == 9 && data[3000 * 4096] == 8)
        }
    }

    // MARK: Signals during sync

    @Test("an application signal handler that stores to a block being flushed does not deadlock")
    func asyncSignalsAreMaskedWhileLocksAreHeld() async {
        await #expect(processExitsWith: .success) {
            // Turns a hang that the bounded wait below cannot end (anything
            // else waiting for a lock that a deadlocked sync holds) into a
            // failure. Not a timing assertion: a passing run never waits for it.
            Watchdog.endingExitTest("the sync with a signal delivered during its flush, and the checks after it")
            let file = TemporaryFile()
            let flusher = RaisingFlusher()
            let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher)
            SignalTarget.bytes = map.bytes.baseAddress!
            signal(SIGUSR1) { _ in
                SignalTarget.bytes!.storeBytes(of: 77, toByteOffset: 4096, as: UInt8.self)
                SignalTarget.handled = true
            }
            // Test bodies run on libdispatch threads, which block SIGUSR1.
            // Sync on a thread of our own that accepts it.
            let done = DispatchSemaphore(value: 0)
            let worker = Thread {
                var usr1 = sigset_t()
                sigemptyset(&usr1)
                sigaddset(&usr1, SIGUSR1)
                pthread_sigmask(SIG_UNBLOCK, &usr1, nil)
                map.bytes[4096] = 1
                // The flusher raises SIGUSR1 on this thread while the sync
                // holds block 1's lock and has write-protected it. Delivered
                // then, the handler's store would wait for a lock its own
                // thread holds.
                try! map.sync()
                done.signal()
            }
            worker.start()
            guard wait(for: done, "the sync on the thread that accepts SIGUSR1 to return") else { return }
            let raised = flusher.raised.load(ordering: .relaxed)
            #expect(raised, "the flusher did not run")
            #expect(SignalTarget.handled, "the signal was not delivered after the sync")
            #expect(map.bytes[4096] == 77 && map.dirtyRanges() == [4096..<8192])
        }
    }
}

/// Globals for the signal handler above, which cannot capture.
enum SignalTarget {
    nonisolated(unsafe) static var bytes: UnsafeMutableRawPointer?
    nonisolated(unsafe) static var handled = false
}

/// Raises SIGUSR1 on the syncing thread from inside the flush step.
final class RaisingFlusher: Flusher {
    let raised = Atomic(false)

    func flush(_ run: FlushRun) -> Result<Void, Errno> {
        raised.store(true, ordering: .relaxed)
        pthread_kill(pthread_self(), SIGUSR1)
        return MsyncFlusher().flush(run)
    }

    func drain() -> Result<Void, Errno> { .success(()) }
}
