import Benchmark

/// The custom metrics the suites record. ratios.py pairs them by these
/// names, so a rename here must be made there too.
///
/// Every benchmark measures PmemTrack and its baselines itself, alternately
/// within each iteration, and records each measured window here. This keeps
/// each comparison in one process, on the same pages, and close in time:
/// package-benchmark runs every benchmark in a process of its own, and the
/// machines are shared and noisy.
public enum Metric {
    /// A PmemTrack window: faults, a sync, or faults plus a sync (ns).
    public static let pmemtrack = BenchmarkMetric.custom("pmemtrack_ns")
    /// The same faults under the minimal C handler (ns).
    public static let cHandler = BenchmarkMetric.custom("c_handler_ns")
    /// The same sync as raw system calls and flushes, untracked (ns).
    public static let raw = BenchmarkMetric.custom("raw_ns")
    /// The same first stores on a shadow mapping with a userfaultfd of its
    /// own, armed for asynchronous write-protect (ns).
    public static let cUffd = BenchmarkMetric.custom("c_uffd_ns")
    /// A userfaultfd sync's raw work on that shadow: one PAGEMAP_SCAN that
    /// re-protects, plus the flushes PmemTrack makes (ns).
    public static let rawUffd = BenchmarkMetric.custom("raw_uffd_ns")
    /// The same window on two tracked mappings of one file, one per
    /// backend, when a benchmark compares the backends (ns).
    public static let userfaultfd = BenchmarkMetric.custom("userfaultfd_ns")
    public static let mprotect = BenchmarkMetric.custom("mprotect_ns")
    /// pmem_persist of the whole mapping (ns).
    public static let persistWhole = BenchmarkMetric.custom("persist_whole_ns")
    /// msync of the whole mapping (ns).
    public static let msyncWhole = BenchmarkMetric.custom("msync_whole_ns")
    /// A PmemTrack sync of k blocks on the 1 GiB mapping (ns).
    public static let syncSmall = BenchmarkMetric.custom("sync_small_ns")
    /// The same k on the 64 GiB sparse mapping (ns).
    public static let syncLarge = BenchmarkMetric.custom("sync_large_ns")
    /// The raw work for the same k on the 1 GiB and the 64 GiB mapping (ns).
    public static let rawSmall = BenchmarkMetric.custom("raw_small_ns")
    public static let rawLarge = BenchmarkMetric.custom("raw_large_ns")
    /// Blocks a sync flushed beyond those written since the last one.
    public static let flushExcess = BenchmarkMetric.custom("flush_excess_blocks")
    /// Blocks written since the last sync that it did not flush.
    public static let flushShortfall = BenchmarkMetric.custom("flush_shortfall_blocks")
    /// Blocks the mprotect backend's VMA budget added to a flush set
    /// (statistics.mprotect.coarsenedBlocks, per sync): the only excess
    /// allowed.
    public static let coarsened = BenchmarkMetric.custom("coarsened_blocks")
    /// Index operations over k blocks (ns).
    public static let indexSet = BenchmarkMetric.custom("index_set_ns")
    public static let indexEnumerate = BenchmarkMetric.custom("index_enumerate_ns")
    public static let indexClear = BenchmarkMetric.custom("index_clear_ns")
    /// The same operations on a flat bitmap, one bit per block (ns).
    public static let bitmapSet = BenchmarkMetric.custom("bitmap_set_ns")
    public static let bitmapEnumerate = BenchmarkMetric.custom("bitmap_enumerate_ns")
    public static let bitmapClear = BenchmarkMetric.custom("bitmap_clear_ns")
    /// The crash lab: one `explore` call's wall time over the images it
    /// checked (ns per image), with a check that reads one word. An average
    /// over a whole exploration, not one image's time: a single image takes
    /// too little time to measure on its own.
    public static let crashImage = BenchmarkMetric.custom("crash_image_ns")
    /// The same with a write-ahead log's recovery as the check (ns per check).
    public static let crashCheck = BenchmarkMetric.custom("crash_check_ns")
    /// A workload on a plain TrackedMapping, and the same workload recorded
    /// by `CrashLab.record`, each from mapping the file to unmapping it (ns).
    public static let plainWorkload = BenchmarkMetric.custom("plain_ns")
    public static let recordedWorkload = BenchmarkMetric.custom("recorded_ns")
}
