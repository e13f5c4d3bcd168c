import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The system calls of the ``System`` layer that can fail, by the name the
/// typed errors give them. Tests make any of them fail on demand
/// (``System/withInjectedFailures(_:_:)``, debug builds only).
enum Syscall: String, CaseIterable, Sendable {
    case mprotect
    case madvise
    case open
    case fstat
    case fdatasync
    case msync
    case pmemMapFile = "pmem_map_file"
    case userfaultfd
    case userfaultfdDevice = "open /dev/userfaultfd"
    case userfaultfdAPI = "UFFDIO_API"
    case userfaultfdRegister = "UFFDIO_REGISTER"
    case userfaultfdUnregister = "UFFDIO_UNREGISTER"
    case userfaultfdWriteProtect = "UFFDIO_WRITEPROTECT"
    case pagemapScan = "PAGEMAP_SCAN"
}

/// A failure to inject: calls of `syscall` made on the injecting thread
/// fail with `errno`, after the first `skip` of them succeed, `count` times
/// (nil: every call from then on).
///
/// With `afterTheCall` (`PAGEMAP_SCAN` only), the real call runs first and
/// then reports the failure, as a call that fails part-way does: the
/// kernel has walked and write-protected pages, and the regions it reported
/// are lost (the vector is cleared), the worst case of a failed copy-out.
struct InjectedFailure: Sendable, CustomStringConvertible {
    var syscall: Syscall
    var errno: Errno
    var skip = 0
    var count: Int? = nil
    var afterTheCall = false

    var description: String {
        let which = count.map { "\($0) call(s)" } ?? "every call"
        return "\(syscall.rawValue) fails with \(errno) on \(which) after \(skip)"
    }
}

extension System {
    /// Whether an injected failure is due for `syscall` on this thread: the
    /// errno to fail with, or nil to make the real call. Release builds
    /// compile it to nil, so the real call is all that remains; debug builds
    /// pay one relaxed atomic load while nothing is injected.
    @inline(__always)
    static func injected(_ syscall: Syscall) -> Errno? {
        #if DEBUG
        guard let failure = FailureInjection.next(syscall) else { return nil }
        // Only a wrapper that calls injectedFailure(_:) can run the call
        // first; elsewhere the flag would be silently ignored.
        precondition(!failure.afterTheCall, "\(syscall.rawValue) does not support failing after the call")
        return failure.errno
        #else
        return nil
        #endif
    }

    /// Like ``injected(_:)``, for a call that supports failing after it ran:
    /// the failure to report after the real call, or to report instead of
    /// it, or nil.
    @inline(__always)
    static func injectedFailure(_ syscall: Syscall) -> InjectedFailure? {
        #if DEBUG
        return FailureInjection.next(syscall)
        #else
        return nil
        #endif
    }

    /// An errno that only a bug in PmemTrack can produce from `syscall`
    /// (a bad address or descriptor it built itself) stops a debug build
    /// here, with the call's name, instead of travelling on as an error. A
    /// release build returns it as any other failure. (swift-nio's
    /// system-call wrappers treat EFAULT and EBADF the same way.)
    @inline(__always)
    static func checked(_ errno: Errno, _ syscall: Syscall) -> Errno {
        #if DEBUG
        if errno == .badAddress || errno == .badFileDescriptor
            || (errno == .invalidArgument && (syscall == .mprotect || syscall == .madvise))
        {
            preconditionFailure("\(syscall.rawValue) failed with \(errno): a bug in PmemTrack, which built the call's arguments")
        }
        #endif
        return errno
    }

    #if DEBUG
    /// Runs `body` with `failures` injected into the system calls that the
    /// calling thread makes; other threads are unaffected, so tests can run
    /// in parallel. Debug builds only.
    @discardableResult
    static func withInjectedFailures<T, E: Error>(
        _ failures: [InjectedFailure], _ body: () throws(E) -> T
    ) throws(E) -> T {
        FailureInjection.install(failures)
        defer { FailureInjection.remove() }
        return try body()
    }

    /// How many calls of `syscall` the calling thread has made inside
    /// ``withInjectedFailures(_:_:)`` so far, failed or not.
    static func injectionCalls(_ syscall: Syscall) -> Int {
        FailureInjection.current?.calls[syscall, default: 0] ?? 0
    }
    #endif
}

#if DEBUG
/// The per-thread state behind ``System/withInjectedFailures(_:_:)``.
private enum FailureInjection {
    final class Rules {
        var failures: [InjectedFailure]
        var calls: [Syscall: Int] = [:]
        init(_ failures: [InjectedFailure]) { self.failures = failures }
    }

    /// Threads with failures installed, in the whole process: while it is
    /// zero, a call costs this load.
    static let armedThreads = Atomic<Int>(0)

    /// One key for the thread-specific rules.
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create for failure injection")
        return key
    }()

    static var current: Rules? {
        guard let pointer = pthread_getspecific(key) else { return nil }
        return Unmanaged<Rules>.fromOpaque(pointer).takeUnretainedValue()
    }

    static func install(_ failures: [InjectedFailure]) {
        precondition(current == nil, "failure injection does not nest")
        pthread_setspecific(key, Unmanaged.passRetained(Rules(failures)).toOpaque())
        armedThreads.add(1, ordering: .relaxed)
    }

    static func remove() {
        guard let pointer = pthread_getspecific(key) else { return }
        pthread_setspecific(key, nil)
        Unmanaged<Rules>.fromOpaque(pointer).release()
        armedThreads.subtract(1, ordering: .relaxed)
    }

    static func next(_ syscall: Syscall) -> InjectedFailure? {
        guard armedThreads.load(ordering: .relaxed) != 0, let rules = current else { return nil }
        let call = rules.calls[syscall, default: 0]
        rules.calls[syscall] = call + 1
        for failure in rules.failures where failure.syscall == syscall && call >= failure.skip {
            if let count = failure.count, call >= failure.skip + count { continue }
            return failure
        }
        return nil
    }
}
#endif
