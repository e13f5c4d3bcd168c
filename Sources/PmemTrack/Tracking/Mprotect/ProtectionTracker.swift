import CPmemTrack
import Foundation
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The mprotect + SIGSEGV backend.
///
/// Every clean block is `PROT_READ`. The first store to one raises SIGSEGV;
/// the C handler (Sources/CPmemTrack/handler.c) locks the block, sets DIRTY,
/// makes it writable and unlocks, and the store is retried. Sync makes runs
/// read-only again under their locks (``writeProtect(_:)``).
///
/// Each writable island inside the read-only mapping splits a VMA, and
/// `vm.max_map_count` limits a process's VMAs. The backend keeps an estimate
/// of its islands (the fault path adds to it, syncs recount it) and, past a
/// budget, the fault path coarsens instead of opening new islands.
final class ProtectionTracker: WriteTracker, @unchecked Sendable {
    let region: UnsafeMutablePointer<pmt_region>
    private let base: UnsafeMutableRawPointer
    private let length: Int
    private let blockShift: Int
    private let index: DirtyIndex
    /// Runs a sync could not write-protect again (mprotect failed).
    private let protectFailures = Atomic<UInt64>(0)
    /// Every hook box ever installed, kept alive for the mapping's life: a
    /// faulting thread may still be inside a hook when a test replaces it.
    private let hookBoxes = Mutex<[HookBox]>([])

    var mode: TrackedMapping.TrackingMode { .mprotect }

    init(
        base: UnsafeMutableRawPointer, length: Int, blockSize: Int, index: DirtyIndex,
        mutant: ProtocolMutant? = nil
    ) throws(PmemTrackError) {
        let shift = blockSize.trailingZeroBitCount
        guard let region = pmt_region_create(UInt(bitPattern: base), length, UInt32(shift), index.raw, true) else {
            throw .system(.noMemory, operation: "pmt_region_create")
        }
        region.pointee.mutant_unlocked_fault = mutant == .unlockedFault
        self.region = region
        self.base = base
        self.length = length
        self.blockShift = shift
        self.index = index
    }

    deinit { pmt_region_destroy(region) }

    /// A quarter of vm.max_map_count, read once per process: the rest is the
    /// application's. Boehm GC keeps a similar soft limit.
    private static let budget: Void = {
        let text = try? String(contentsOfFile: "/proc/sys/vm/max_map_count", encoding: .utf8)
        let limit = text.flatMap { UInt64($0.filter(\.isNumber)) } ?? 65530
        pmt_set_vma_budget(limit / 4)
    }()

    func start() throws(PmemTrackError) {
        _ = Self.budget
        guard pmt_install_handler() == 0 else {
            throw .system(System.errno, operation: "sigaction")
        }
        // Read-only first, then published: nothing can store to the mapping
        // yet (its address has not been handed out), and once registered
        // every first store to a block is ours to see.
        if case .failure(let errno) = System.mprotect(base, length, PROT_READ) {
            throw .system(errno, operation: "mprotect")
        }
        guard pmt_register(region) == 0 else {
            if System.errno == .noMemory { throw .system(.noMemory, operation: "pthread_atfork") }
            throw .tooManyMappings
        }
    }

    /// Nothing to collect: the fault handler sets DIRTY before the store.
    func collect(_ blocks: Range<UInt64>, reprotect: Bool) -> Result<Void, PmemTrackError> { .success(()) }

    /// Nothing to collect: faults set DIRTY before a store lands.
    func collect(
        _ blocks: Range<UInt64>, writingBack writeBack: ([Range<UInt64>]) -> [Range<UInt64>]
    ) -> Result<Void, PmemTrackError> { .success(()) }

    func writeProtect(_ blocks: Range<UInt64>) -> Result<Void, Errno> {
        let result = protect(blocks, PROT_READ)
        if case .failure = result { protectFailures.add(1) }
        return result
    }

    func makeWritable(_ blocks: Range<UInt64>) -> Result<Void, Errno> {
        protect(blocks, PROT_READ | PROT_WRITE)
    }

    private func protect(_ blocks: Range<UInt64>, _ protection: Int32) -> Result<Void, Errno> {
        let start = Int(blocks.lowerBound) << blockShift
        let end = min(Int(blocks.upperBound) << blockShift, length)
        return System.mprotect(base + start, end - start, protection)
    }

    func stop() { pmt_unregister(region) }

    /// The VMA budget counts writable islands: the DIRTY runs. A full sync
    /// recounts them exactly afterwards; a ranged one counts the change it
    /// made, over its range and one block on each side (where runs split or
    /// join).
    func aroundSync<E: Error>(of blocks: Range<UInt64>, _ sync: () throws(E) -> Void) throws(E) {
        let whole = blocks == 0..<index.blockCount
        let neighbourhood = (blocks.lowerBound > 0 ? blocks.lowerBound - 1 : 0)..<min(blocks.upperBound + 1, index.blockCount)
        let runsBefore = whole ? 0 : index.runCount(.dirty, in: neighbourhood)
        defer {
            if whole {
                pmt_region_set_islands(region, Int64(index.runCount(.dirty, in: blocks)))
            } else {
                pmt_region_add_islands(region, Int64(index.runCount(.dirty, in: neighbourhood) - runsBefore))
            }
        }
        try sync()
    }

    var writeFaults: UInt64 { pmt_region_write_faults(region) }

    var statistics: TrackerStatistics {
        .mprotect(.init(
            protectFailures: protectFailures.value,
            degradedEvents: pmt_region_degraded_events(region),
            coarsenedBlocks: pmt_region_coarsened_blocks(region)))
    }

    // MARK: Test hooks

    #if DEBUG
    /// Makes the next `count` mprotect calls of this mapping's fault path
    /// (in the C signal handler, out of reach of
    /// ``System/withInjectedFailures(_:_:)``) fail with `errno`; 0 clears it.
    /// The block's own call comes first, then the degrade's after an ENOMEM.
    /// Debug builds only.
    func injectFaultPathFailures(_ errno: Errno, count: UInt32) {
        pmt_region_inject_fault_mprotect_failures(region, errno.rawValue, count)
    }

    /// How many of the failures injected by ``injectFaultPathFailures(_:count:)``
    /// are still to come.
    var pendingFaultPathFailures: UInt32 { pmt_region_injected_fault_mprotect_failures(region) }
    #endif

    private final class HookBox {
        let hook: TrackerHook
        init(_ hook: TrackerHook) { self.hook = hook }
    }

    func setHook(_ hook: TrackerHook?) {
        hookBoxes.withLock { boxes in
            guard let hook else {
                pmt_set_fault_hook(region, nil, nil)
                return
            }
            let newBox = HookBox(hook)
            pmt_set_fault_hook(region, { context, step, block in
                let box = Unmanaged<HookBox>.fromOpaque(context!).takeUnretainedValue()
                box.hook.pause(step == PMT_FAULT_LOCKED ? .faultLocked(block) : .faultDirtied(block))
            }, Unmanaged.passUnretained(newBox).toOpaque())
            boxes.append(newBox)
        }
    }
}
