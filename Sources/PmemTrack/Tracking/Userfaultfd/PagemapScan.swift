import CPmemTrack
import SystemPackage

/// One PAGEMAP_SCAN walk over a range of this process's address space,
/// reporting the pages the kernel holds as written (not write-protected by
/// userfaultfd), and optionally write-protecting them in the same step.
///
/// The masks are exactly `category_mask = return_mask = PAGE_IS_WRITTEN`,
/// which takes the kernel's fast path (fs/proc/task_mmu.c,
/// `pagemap_scan_pmd_entry`). `PM_SCAN_CHECK_WPASYNC` is always set: without
/// it a range whose registration is gone is skipped and looks clean; with
/// it the scan fails with EPERM.
///
/// The kernel reports at most `vector.count` regions per call and then stops
/// with `walk_end` where it stopped; the walk resumes there. Reporting and
/// re-protecting are atomic per page, under the page-table lock; the walk
/// as a whole is not one snapshot.
///
/// Cost: about 1 ns per page walked plus about 0.05 µs per written page
/// reported (measured, `../shared/notes/uffd-facts.md` §7).
struct PagemapScan {
    /// A scan that failed part-way. The kernel may already have reported
    /// and write-protected pages anywhere in `uncertain` (uffd-facts §1.5):
    /// the caller must treat all of it as written.
    struct Failure: Error {
        var errno: Errno
        var uncertain: Range<UInt>
    }

    let pagemap: Int32
    /// Kept all zero between calls, so that after a failed call every
    /// non-empty entry is one the kernel filled in before failing.
    let vector: UnsafeMutableBufferPointer<pmt_page_region>

    static func makeVector(count: Int) -> UnsafeMutableBufferPointer<pmt_page_region> {
        let vector = UnsafeMutableBufferPointer<pmt_page_region>.allocate(capacity: count)
        vector.initialize(repeating: pmt_page_region())
        return vector
    }

    private func argument(_ cursor: UInt, _ end: UInt, protect: Bool, report: Bool) -> pmt_pm_scan_arg {
        pmt_pm_scan_arg(
            size: UInt64(MemoryLayout<pmt_pm_scan_arg>.size),
            flags: PMT_PM_SCAN_CHECK_WPASYNC | (protect ? PMT_PM_SCAN_WP_MATCHING : 0),
            start: UInt64(cursor), end: UInt64(end), walk_end: 0,
            vec: report ? UInt64(UInt(bitPattern: vector.baseAddress)) : 0,
            vec_len: report ? UInt64(vector.count) : 0, max_pages: 0, category_inverted: 0,
            category_mask: PMT_PAGE_IS_WRITTEN, category_anyof_mask: 0, return_mask: PMT_PAGE_IS_WRITTEN)
    }

    /// Write-protects every page of `range`, reporting nothing: the kernel's
    /// "exclusive write-protect" path for an empty vector. Used to arm a
    /// freshly registered mapping, whose unpopulated pages would otherwise
    /// count as written.
    func arm(_ range: Range<UInt>) -> Result<Void, Errno> {
        var argument = argument(range.lowerBound, range.upperBound, protect: true, report: false)
        return System.pagemapScan(pagemap, &argument).map { _ in }
    }

    /// Calls `report` with each run of written pages in `range` (page
    /// aligned), ascending; with `protect`, each is write-protected again
    /// before it is reported. On failure, every run the kernel filled in
    /// has been reported, and the failure names the range still uncertain.
    func run(_ range: Range<UInt>, protect: Bool, report: (Range<UInt>) -> Void) -> Result<Void, Failure> {
        var cursor = range.lowerBound
        while cursor < range.upperBound {
            var argument = argument(cursor, range.upperBound, protect: protect, report: true)
            switch System.pagemapScan(pagemap, &argument) {
            case .success(let filled):
                var reportedEnd = UInt64(cursor)
                for i in 0..<filled {
                    report(UInt(vector[i].start)..<UInt(vector[i].end))
                    reportedEnd = max(reportedEnd, vector[i].end)
                    vector[i] = pmt_page_region()
                }
                // Resume after whatever was reported. Linux 6.18 copies out
                // more than its 512-region bounce buffer in one call but
                // returns `walk_end` at the end of the first 512; resuming
                // there would walk the rest again (measured by the userfaultfd
                // sync benchmarks). The kernel walked every page below the
                // last region it reported, so nothing is skipped.
                let next = max(argument.walk_end, reportedEnd)
                // A walk that neither reports nor advances would loop for
                // ever (a hugetlb page cut by the range does this).
                guard next > UInt64(cursor) else {
                    return .failure(Failure(errno: .protocolError, uncertain: cursor..<range.upperBound))
                }
                cursor = UInt(next)
            case .failure(let errno):
                for i in vector.indices where vector[i].end > vector[i].start {
                    report(UInt(vector[i].start)..<UInt(vector[i].end))
                    vector[i] = pmt_page_region()
                }
                return .failure(Failure(errno: errno, uncertain: cursor..<range.upperBound))
            }
        }
        return .success(())
    }
}
