import CPmemTrack
import Foundation
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What this process learned, once, about userfaultfd asynchronous
/// write-protect: how to open a userfaultfd, or why the backend cannot work.
///
/// The recipe (facts in `../shared/notes/uffd-facts.md` §6):
/// 1. userfaultfd(2) with `UFFD_USER_MODE_ONLY`, which needs no privilege
///    (Linux 5.11); EPERM there means a seccomp filter or a security module.
///    Then /dev/userfaultfd (Linux 6.1), governed by its file permissions.
/// 2. `UFFDIO_API` asking for `WP_ASYNC | WP_UNPOPULATED` (Linux 6.7).
/// 3. A self-test of `PAGEMAP_SCAN` on two anonymous pages: register, arm,
///    write one, and expect exactly that page reported.
enum UserfaultfdSupport {
    /// How to open a userfaultfd in this process.
    struct Opener: Sendable {
        var viaDevice: Bool
        var flags: Int32

        func open() -> Result<Int32, Errno> {
            viaDevice ? System.userfaultfdFromDevice(flags: flags) : System.userfaultfd(flags: flags)
        }
    }

    static let features = PMT_UFFD_FEATURE_WP_ASYNC | PMT_UFFD_FEATURE_WP_UNPOPULATED

    /// The verdict for this process, computed at first use.
    static let detected: Result<Opener, TrackingUnavailableReason> = detect()

    private static func detect() -> Result<Opener, TrackingUnavailableReason> {
        if ProcessInfo.processInfo.environment["PMEMTRACK_DISABLE_USERFAULTFD"] == "1" {
            return .failure(.disabledByEnvironment)
        }
        let opener: Opener
        switch findOpener() {
        case .success(let found): opener = found
        case .failure(let reason): return .failure(reason)
        }
        if case .failure(let reason) = selfTest(opener) { return .failure(reason) }
        // After the self-test: a kernel without the feature says so first.
        let release = System.kernelRelease
        guard hasPagemapScanFixes(release: release) else { return .failure(.kernelTooOld(release)) }
        return .success(opener)
    }

    /// Whether a kernel release string ("6.18.44-fc-v857") is Linux 6.9 or
    /// later: the first with the PAGEMAP_SCAN fixes for lost dirty bits and
    /// the fast path's misread of swap entries (uffd-facts §3.1, §3.6). An
    /// unparsable string is taken as recent: the self-test has passed.
    static func hasPagemapScanFixes(release: String) -> Bool {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return true }
        return (numbers[0], numbers[1]) >= (6, 9)
    }

    private static func findOpener() -> Result<Opener, TrackingUnavailableReason> {
        let flags = O_CLOEXEC | O_NONBLOCK
        let userMode = Opener(viaDevice: false, flags: flags | System.userfaultfdUserModeOnly)
        let reason: TrackingUnavailableReason
        switch userMode.open() {
        case .success(let fd):
            System.close(fd)
            return .success(userMode)
        case .failure(.invalidArgument):
            // A kernel before 5.11 knows no UFFD_USER_MODE_ONLY; it then
            // needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1. (It
            // also lacks WP_ASYNC, which the handshake will report.)
            let privileged = Opener(viaDevice: false, flags: flags)
            switch privileged.open() {
            case .success(let fd):
                System.close(fd)
                return .success(privileged)
            case .failure(let errno):
                reason = errno == .notPermitted ? .permissionDenied(errno) : .noSyscall(errno)
            }
        case .failure(let errno):
            // ENOSYS: no CONFIG_USERFAULTFD (or a filter answering ENOSYS).
            // EPERM: user-mode-only faults need no privilege, so a seccomp
            // filter or an LSM refused the call.
            reason = .noSyscall(errno)
        }
        let device = Opener(viaDevice: true, flags: flags)
        switch device.open() {
        case .success(let fd):
            System.close(fd)
            return .success(device)
        case .failure(let errno) where errno == .permissionDenied || errno == .notPermitted:
            return .failure(.permissionDenied(errno))
        case .failure:
            return .failure(reason)
        }
    }

    private static func selfTest(_ opener: Opener) -> Result<Void, TrackingUnavailableReason> {
        let uffd: Int32
        switch opener.open() {
        case .success(let fd): uffd = fd
        case .failure(let errno): return .failure(.noSyscall(errno))
        }
        defer { System.close(uffd) }
        switch System.userfaultfdHandshake(uffd, features: features) {
        case .success(let granted) where granted & PMT_UFFD_FEATURE_WP_ASYNC != 0: break
        case .success, .failure(.invalidArgument): return .failure(.noAsyncWriteProtect)
        case .failure(let errno): return .failure(.noSyscall(errno))
        }
        let page = System.pageSize
        guard case .success(let memory) = System.mapAnonymous(2 * page) else {
            return .failure(.noPagemapScan(System.errno))
        }
        defer { System.unmap(memory, 2 * page) }
        if case .failure(let errno) = System.userfaultfdRegister(uffd, memory, 2 * page) {
            return .failure(.mappingRefused(errno))
        }
        let pagemap: Int32
        switch System.openPagemap() {
        case .success(let fd): pagemap = fd
        case .failure(let errno): return .failure(.noPagemapScan(errno))
        }
        defer { System.close(pagemap) }
        let vector = PagemapScan.makeVector(count: 4)
        defer { vector.deallocate() }
        let scan = PagemapScan(pagemap: pagemap, vector: vector)
        let start = UInt(bitPattern: memory)
        let range = start..<(start + UInt(2 * page))
        if case .failure(let errno) = scan.arm(range) {
            // ENOTTY (no such ioctl) or EINVAL (an older pagemap).
            return .failure(.noPagemapScan(errno))
        }
        memory.storeBytes(of: 1, toByteOffset: page, as: UInt8.self)
        var reported: [Range<UInt>] = []
        if case .failure(let failure) = scan.run(range, protect: true, report: { reported.append($0) }) {
            return .failure(.noPagemapScan(failure.errno))
        }
        guard reported == [(start + UInt(page))..<(start + UInt(2 * page))] else {
            return .failure(.noPagemapScan(.protocolError))
        }
        return .success(())
    }
}
