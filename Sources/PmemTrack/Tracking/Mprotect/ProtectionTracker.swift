import CPmemTrack
import Foundation
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The mprotect + SIGSEGV backend.
///
/// Every clean block is `PROT_READ`. The first store to one raises SIGSEGV;
/// the C handler (Sources/CPmemTrack/handler.c) locks the block, sets DIRTY,
/// makes it writable and unlocks, and the store is retried. Sync makes runs
/// read-only again under their locks.
final class ProtectionTracker: WriteTracker, @unchecked Sendable {
    let region: UnsafeMutablePointer<pmt_region>
    private let base: UnsafeMutableRawPointer
    private let length: Int
    private let blockShift: Int

    init(
        base: UnsafeMutableRawPointer, length: Int, blockSize: Int, index: DirtyIndex,
        mutant: ProtocolMutant? = nil
    ) throws(PmemTrackError) {
        let shift = blockSize.trailingZeroBitCount
        guard let region = pmt_region_create(UInt(bitPattern: base), length, UInt32(shift), index.raw) else {
            throw .system(.noMemory, operation: "pmt_region_create")
        }
        region.pointee.mutant_unlocked_fault = mutant == .unlockedFault
        self.region = region
        self.base = base
        self.length = length
        self.blockShift = shift
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
        guard pmt_register(region) == 0 else { throw .tooManyMappings }
    }

    func writeProtect(_ blocks: Range<UInt64>) -> Result<Void, Errno> {
        protect(blocks, PROT_READ)
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

    func setIslandCount(_ count: Int) { pmt_region_set_islands(region, Int64(count)) }
    func adjustIslandCount(by delta: Int) { pmt_region_add_islands(region, Int64(delta)) }

    var writeFaults: UInt64 { pmt_region_write_faults(region) }
    var coarsenedBlocks: UInt64 { pmt_region_coarsened_blocks(region) }
    var degradedEvents: UInt64 { pmt_region_degraded_events(region) }
}
