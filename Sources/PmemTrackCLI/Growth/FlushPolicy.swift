import ArgumentParser
import CLibpmem
import Foundation
import PmemTrack

/// How a sync chooses what to flush, for the growth experiment.
enum FlushPolicy: String, CaseIterable, ExpressibleByArgument {
    /// PmemTrack: flush the blocks dirtied since the last sync, then clean them.
    case cleanOnSync = "clean-on-sync"
    /// Every block ever written stays in the flush set and is flushed again
    /// by every sync, as with the first DAX fsync patch, whose radix-tree
    /// entries were never cleaned.
    case neverClean = "never-clean"
    /// Flush the whole mapping on every sync.
    case flushEverything = "flush-everything"

    /// Opens a fresh subject for this policy on a new file at `path`.
    /// `tracking` is clean-on-sync's backend.
    func subject(
        path: String, length: Int, blockSize: Int, tracking: TrackedMapping.TrackingMode
    ) throws -> any GrowthSubject {
        switch self {
        case .cleanOnSync:
            return try TrackedSubject(path: path, length: length, blockSize: blockSize, tracking: tracking)
        case .neverClean, .flushEverything:
            return try PlainSubject(path: path, length: length, blockSize: blockSize, flushEverything: self == .flushEverything)
        }
    }
}

/// A mapping the experiment writes blocks of and syncs.
protocol GrowthSubject: AnyObject {
    var isPersistentMemory: Bool { get }
    /// The tracking backend in use; nil for an untracked mapping.
    var trackingMode: TrackedMapping.TrackingMode? { get }
    /// Stores into block `block`.
    func write(block: Int, stamp: UInt64)
    /// Makes the writes durable. Timed by the experiment: only the sync.
    func sync() throws
    /// The bytes handed to the flush by the syncs since the last call; read
    /// outside the timed sync (on userfaultfd, statistics scan the mapping).
    func takeBytesFlushed() -> Int
    func close()
}

/// Clean-on-sync: a PmemTrack mapping. Bytes flushed come from its counters.
final class TrackedSubject: GrowthSubject {
    let map: TrackedMapping
    var flushedSoFar: UInt64 = 0

    init(path: String, length: Int, blockSize: Int, tracking: TrackedMapping.TrackingMode) throws {
        map = try TrackedMapping(
            path: path, length: length, options: [.create, .exclusive],
            configuration: .init(blockSize: blockSize, tracking: tracking))
    }

    var isPersistentMemory: Bool { map.isPersistentMemory }
    var trackingMode: TrackedMapping.TrackingMode? { map.trackingMode }

    func write(block: Int, stamp: UInt64) {
        map.bytes.storeBytes(of: stamp, toByteOffset: block * map.blockSize, as: UInt64.self)
    }

    func sync() throws { try map.sync() }

    func takeBytesFlushed() -> Int {
        let total = map.statistics.bytesFlushed
        defer { flushedSoFar = total }
        return Int(total - flushedSoFar)
    }

    func close() { try? map.close() }
}

/// Never-clean and flush-everything: a plain libpmem mapping with no write
/// tracking. Never-clean keeps the set of blocks ever written in a bitmap
/// (what the kernel's never-cleaned radix tree held) and flushes its runs,
/// with the calls PmemTrack uses: pmem_flush per run and one pmem_drain on
/// persistent memory; on an ordinary file one fdatasync for all the runs
/// (msync when there is only one).
final class PlainSubject: GrowthSubject {
    let base: UnsafeMutableRawPointer
    let length: Int
    let blockSize: Int
    let isPersistentMemory: Bool
    var trackingMode: TrackedMapping.TrackingMode? { nil }
    let flushEverything: Bool
    var everWritten: [UInt64]
    /// For the fdatasync that drains never-clean's runs on an ordinary file.
    let descriptor: Int32

    init(path: String, length: Int, blockSize: Int, flushEverything: Bool) throws {
        var mapped = 0
        var isPmem: Int32 = 0
        guard let base = pmem_map_file(path, length, PMEM_FILE_CREATE | PMEM_FILE_EXCL, 0o600, &mapped, &isPmem) else {
            throw ToolError("pmem_map_file \(path): \(String(cString: strerror(errno)))")
        }
        self.base = base
        self.length = mapped
        self.blockSize = blockSize
        self.isPersistentMemory = isPmem != 0
        self.flushEverything = flushEverything
        everWritten = [UInt64](repeating: 0, count: (mapped / blockSize + 63) / 64)
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            pmem_unmap(base, mapped)
            throw ToolError("open \(path): \(String(cString: strerror(errno)))")
        }
    }

    func write(block: Int, stamp: UInt64) {
        base.storeBytes(of: stamp, toByteOffset: block * blockSize, as: UInt64.self)
        if !flushEverything { everWritten[block >> 6] |= 1 << UInt64(block & 63) }
    }

    /// Bytes the last syncs handed to the flush, not yet taken.
    private var flushedBytes = 0

    func takeBytesFlushed() -> Int {
        defer { flushedBytes = 0 }
        return flushedBytes
    }

    func sync() throws {
        if flushEverything {
            try flush(0..<length)
            if isPersistentMemory { pmem_drain() }
            flushedBytes += length
            return
        }
        var runs: [Range<Int>] = []
        var block = 0
        let blocks = length / blockSize
        while block < blocks {
            guard everWritten[block >> 6] & (1 << UInt64(block & 63)) != 0 else { block += 1; continue }
            var end = block + 1
            while end < blocks && everWritten[end >> 6] & (1 << UInt64(end & 63)) != 0 { end += 1 }
            runs.append(block * blockSize..<end * blockSize)
            block = end
        }
        if isPersistentMemory {
            for run in runs { pmem_flush(base + run.lowerBound, run.count) }
            pmem_drain()
        } else if runs.count == 1 {
            try flush(runs[0])
        } else if !runs.isEmpty, fdatasync(descriptor) != 0 {
            throw ToolError("fdatasync: \(String(cString: strerror(errno)))")
        }
        flushedBytes += runs.reduce(0) { $0 + $1.count }
    }

    private func flush(_ range: Range<Int>) throws {
        if isPersistentMemory {
            pmem_flush(base + range.lowerBound, range.count)
        } else if pmem_msync(base + range.lowerBound, range.count) != 0 {
            throw ToolError("pmem_msync: \(String(cString: strerror(errno)))")
        }
    }

    func close() {
        pmem_unmap(base, length)
        Glibc.close(descriptor)
    }
}
