import CPmemTrack
import Foundation
import Synchronization
import Testing
@testable import PmemTrack

/// pmt_install_handler makes one installation attempt per process, and every
/// caller gets its outcome. Each test runs in a fresh process (an exit test),
/// where the handler is not installed yet, and makes the attempt slow with
/// the C test hook so that the other callers arrive while it is in progress.
/// The test hooks, as C function pointers: the installation attempt fails
/// with EIO (an errno sigaction never gives, so it can only be the hook's),
/// or goes on to sigaction. Both hold the attempt open first.
private func failingInstallHook() -> Int32 {
    InstallHandlerTests.holdAttempt()
    return EIO
}

private func succeedingInstallHook() -> Int32 {
    InstallHandlerTests.holdAttempt()
    return 0
}

@Suite("Installing the SIGSEGV handler", .tags(.exitTest))
struct InstallHandlerTests {
    static let callers = 8
    /// Callers about to call pmt_install_handler; attempts the hook saw.
    static let arrived = Atomic<Int>(0)
    static let attempts = Atomic<Int>(0)
    /// Each caller's return value and errno.
    static let results = Mutex<[(rc: Int32, errno: Int32)]>([])

    /// The hook's body: counts the attempt and holds it open until every
    /// caller has arrived (bounded), and a little longer, so that the others
    /// are calling while it is in progress.
    static func holdAttempt() {
        attempts.add(1, ordering: .sequentiallyConsistent)
        waitUntil("all \(callers) callers to be about to call pmt_install_handler") {
            arrived.load(ordering: .sequentiallyConsistent) >= callers
        }
        usleep(20_000)
    }

    /// Calls pmt_install_handler from `callers` threads at once.
    static func installConcurrently() -> [(rc: Int32, errno: Int32)] {
        let returned = Atomic<Int>(0)
        let threads = (0..<callers).map { _ in
            System.startThread {
                InstallHandlerTests.arrived.add(1, ordering: .sequentiallyConsistent)
                let rc = pmt_install_handler()
                let error = errno
                InstallHandlerTests.results.withLock { $0.append((rc, error)) }
                returned.add(1, ordering: .sequentiallyConsistent)
            }!
        }
        // Bounded; then each join returns at once. Threads that never
        // returned are left detached.
        if waitUntil("the \(callers) concurrent callers of pmt_install_handler to return", {
            returned.load(ordering: .sequentiallyConsistent) == callers
        }) {
            for thread in threads { pthread_join(thread, nil) }
        } else {
            for thread in threads { pthread_detach(thread) }
        }
        return results.withLock { $0 }
    }

    /// The SIGSEGV action now: its handler, as bytes, and its flags.
    static func segvAction() -> (handler: [UInt8], flags: Int32) {
        var action = sigaction()
        sigaction(SIGSEGV, nil, &action)
        return (withUnsafeBytes(of: &action.__sigaction_handler) { Array($0) }, action.sa_flags)
    }

    @Test("a failed install: every caller, concurrent or later, gets its errno, and it is not retried")
    func failureReachesEveryCaller() async {
        await #expect(processExitsWith: .success) {
            let before = InstallHandlerTests.segvAction()
            pmt_set_install_hook(failingInstallHook)
            let results = InstallHandlerTests.installConcurrently()
            #expect(results.count == InstallHandlerTests.callers)
            #expect(results.allSatisfy { $0.rc == -1 && $0.errno == EIO }, "results: \(results)")
            #expect(InstallHandlerTests.attempts.load(ordering: .sequentiallyConsistent) == 1)
            #expect(InstallHandlerTests.segvAction() == before, "a failed install changed the SIGSEGV action")

            // A later caller gets the same failure, without a new attempt,
            // even though the hook would now let one succeed.
            pmt_set_install_hook(nil)
            let rc = pmt_install_handler()
            let error = errno
            #expect(rc == -1 && error == EIO)
            #expect(InstallHandlerTests.segvAction() == before)

            // And the mprotect backend reports it.
            let file = TemporaryFile()
            do throws(PmemTrackError) {
                _ = try TrackedMapping(
                    path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
                Issue.record("a mapping opened without the handler")
            } catch {
                #expect(error == .system(.ioError, operation: "sigaction"), "\(error)")
            }
        }
    }

    @Test("a successful install: every concurrent caller gets 0, from one attempt")
    func successReachesEveryCaller() async {
        await #expect(processExitsWith: .success) {
            let before = InstallHandlerTests.segvAction()
            pmt_set_install_hook(succeedingInstallHook)
            let results = InstallHandlerTests.installConcurrently()
            #expect(results.count == InstallHandlerTests.callers)
            #expect(results.allSatisfy { $0.rc == 0 }, "results: \(results)")
            #expect(InstallHandlerTests.attempts.load(ordering: .sequentiallyConsistent) == 1)
            let installed = InstallHandlerTests.segvAction()
            #expect(installed != before && installed.flags & SA_SIGINFO != 0)
            #expect(pmt_install_handler() == 0)
            #expect(InstallHandlerTests.attempts.load(ordering: .sequentiallyConsistent) == 1)

            // The handler tracks a write.
            let file = TemporaryFile()
            let map = try TrackedMapping(
                path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
            map.bytes[8192] = 1
            #expect(map.dirtyRanges() == [8192..<12288] && map.statistics.writeFaults == 1)
            try map.close()
        }
    }
}
