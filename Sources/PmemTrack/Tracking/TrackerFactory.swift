import CPmemTrack
import Foundation
import Synchronization
import SystemPackage

/// Chooses the write tracker for a new mapping and builds it.
///
/// The rule for ``TrackedMapping/TrackingMode/automatic``:
/// 1. userfaultfd if this process can use it (``UserfaultfdSupport``);
/// 2. but on a DAX file (no page cache: stores reach the media directly),
///    only after the self-test of that file system has passed in a child
///    process: write-protect markers there go through the file system's
///    DAX fault path, which nothing here could test;
/// 3. but not for a mapping larger than
///    ``TrackedMapping/TrackingMode/automaticUserfaultfdLimit``: a full sync's
///    scan walks every page of the mapping, so its cost grows with the
///    mapping, while mprotect's sync costs only per dirty run;
/// 4. otherwise, or if the kernel refuses this mapping, mprotect.
enum TrackerFactory {
    struct Target {
        var base: UnsafeMutableRawPointer
        var length: Int
        var blockSize: Int
        var index: DirtyIndex
        /// The file's descriptor, if PmemTrack has one, and its path (the
        /// directory for a `.tmpfile` mapping).
        var file: Int32?
        var path: String
        var isTemporary: Bool
    }

    static func make(
        _ requested: TrackedMapping.TrackingMode, for target: Target, mutant: ProtocolMutant?
    ) throws(PmemTrackError) -> any WriteTracker {
        func mprotect() throws(PmemTrackError) -> any WriteTracker {
            let tracker = try ProtectionTracker(
                base: target.base, length: target.length, blockSize: target.blockSize, index: target.index,
                mutant: mutant)
            try tracker.start()
            return tracker
        }
        func userfaultfd() throws(PmemTrackError) -> any WriteTracker {
            let opener = try usableOpener(
                directory: directory(of: target.path, isTemporary: target.isTemporary), file: target.file,
                path: target.path
            ).get()
            let tracker = try UserfaultfdTracker(
                base: target.base, length: target.length, blockSize: target.blockSize, index: target.index,
                opener: opener, mutant: mutant)
            try tracker.start()
            return tracker
        }
        switch requested {
        case .mprotect: return try mprotect()
        case .userfaultfd: return try userfaultfd()
        case .automatic:
            if target.length > TrackedMapping.TrackingMode.automaticUserfaultfdLimit { return try mprotect() }
            do throws(PmemTrackError) {
                return try userfaultfd()
            } catch {
                // Whatever kept userfaultfd from this mapping, mprotect works
                // on every kernel.
                return try mprotect()
            }
        }
    }

    /// Where the DAX self-test makes its temporary file: the file's own
    /// directory, on the same file system.
    static func directory(of path: String, isTemporary: Bool) -> String {
        if isTemporary { return path }
        let parent = FilePath(path).removingLastComponent().string
        return parent.isEmpty ? "." : parent
    }

    /// The opener, if userfaultfd works for this file: on DAX only after the
    /// file system's self-test.
    static func usableOpener(
        directory: String, file: Int32?, path: String
    ) -> Result<UserfaultfdSupport.Opener, PmemTrackError> {
        let opener: UserfaultfdSupport.Opener
        switch UserfaultfdSupport.detected {
        case .success(let found): opener = found
        case .failure(let reason): return .failure(.trackingUnavailable(reason))
        }
        switch System.isDirectAccess(fd: file, path: path) {
        case .success(false): return .success(opener)
        case .success(true):
            if case .failure(let failure) = DirectAccessSelfTest.result(for: directory) {
                return .failure(.trackingUnavailable(.directAccessSelfTestFailed(failure.why)))
            }
            return .success(opener)
        case .failure(let errno): return .failure(.system(errno, operation: "statx"))
        }
    }
}

extension TrackedMapping.TrackingMode {
    /// The largest mapping for which ``automatic`` chooses ``userfaultfd``:
    /// 4 GiB. A full sync on that backend scans the page tables of the whole
    /// mapping, measured at about 0.5 ms per GiB written and 0.8 ms per GiB
    /// armed but never touched (`Benchmarks/`, SizeScaling), whatever the
    /// number of dirty blocks; mprotect's sync costs per dirty run only.
    /// Each dirty block costs about 7 µs more with mprotect (the signal and
    /// the mprotect calls of fault and sync), so userfaultfd is cheaper from
    /// about 70 dirty blocks per GiB per sync. At 4 GiB the scan floor,
    /// about 2 to 3 ms, is still below one fdatasync on ext4 here. Larger
    /// mappings get ``mprotect``; ask for ``userfaultfd`` explicitly when
    /// each sync has many dirty blocks, or sync ranges.
    public static let automaticUserfaultfdLimit = 4 << 30

    /// The backend ``automatic`` would choose for the file at `path` (or a
    /// new file of `length` bytes in the directory `path`), and why. It runs
    /// the same detection as opening a mapping, and on a DAX file system
    /// the self-test; it cannot know whether the kernel would refuse one
    /// particular mapping.
    public static func automaticChoice(forPath path: String, length: Int? = nil) -> (mode: Self, reason: String) {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let directory = TrackerFactory.directory(of: path, isTemporary: exists && isDirectory.boolValue)
        let size = length ?? (exists && !isDirectory.boolValue
            ? (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 : 0)
        if size > automaticUserfaultfdLimit {
            return (.mprotect, "the mapping is larger than 4 GiB, where a full sync's page-table scan costs more than mprotect")
        }
        switch TrackerFactory.usableOpener(directory: directory, file: nil, path: exists ? path : directory) {
        case .success(let opener):
            let how = opener.viaDevice ? "through /dev/userfaultfd" : "through userfaultfd(2)"
            let dax = (try? System.isDirectAccess(fd: nil, path: exists ? path : directory).get()) == true
            return (.userfaultfd, "asynchronous write-protect and PAGEMAP_SCAN work \(how)"
                + (dax ? "; DAX file system, self-test passed" : "")
                + (exists && !isDirectory.boolValue ? "" : "; mappings over 4 GiB get mprotect"))
        case .failure(.trackingUnavailable(let reason)): return (.mprotect, "\(reason)")
        case .failure(let error): return (.mprotect, "\(error)")
        }
    }
}

/// The DAX self-test of ``TrackerFactory``, run once per file system (by
/// device number) per process, in a child process with a deadline.
enum DirectAccessSelfTest {
    /// The child is killed after this long.
    static let deadlineMilliseconds: Int32 = 2000
    private static let results = Mutex<[UInt64: Result<Void, Failure>]>([:])

    struct Failure: Error, Hashable {
        var why: String
    }

    static func result(for directory: String) -> Result<Void, Failure> {
        guard case .success(let device) = System.deviceID(of: directory) else {
            return .failure(Failure(why: "cannot stat \(directory)"))
        }
        if let known = results.withLock({ $0[device] }) { return known }
        let outcome = run(in: directory, deadlineMilliseconds: deadlineMilliseconds, hang: false)
        results.withLock { $0[device] = outcome }
        return outcome
    }

    /// One run of the self-test. `hang` makes the child hang (for tests).
    static func run(in directory: String, deadlineMilliseconds: Int32, hang: Bool) -> Result<Void, Failure> {
        var step: Int32 = 0
        switch pmt_uffd_self_test(directory, deadlineMilliseconds, hang, &step) {
        case PMT_SELF_TEST_PASSED: return .success(())
        case PMT_SELF_TEST_FAILED: return .failure(Failure(why: "step \(step) of the child failed"))
        case PMT_SELF_TEST_TIMED_OUT:
            return .failure(Failure(why: "the child did not finish within \(deadlineMilliseconds) ms and was killed"))
        default: return .failure(Failure(why: "could not start the child or its temporary file"))
        }
    }
}

