import PmemTrack

// The example below is run, verbatim, by
// Tests/ToolTests/RandomWriterDocExampleTests.swift, which also checks that
// it still matches this comment.
/// fio-style random writes: whole `ioSize` blocks at uniformly random
/// aligned offsets, each filled with a pattern that names the block and the
/// write, with a sync every N writes done by the caller.
///
/// With `path` a file on persistent memory, such as "/mnt/pmem/data":
///
/// ```swift
/// let map = try TrackedMapping(path: path, length: 1 << 30, options: [.create])
/// var writer = RandomWriter(mapping: map)
/// var rng = SystemRandomNumberGenerator()
/// for n in 1...10_000 {
///     writer.writeRandomBlock(using: &rng)
///     if n % 32 == 0 { try map.sync() }
/// }
/// try map.sync()
/// ```
public struct RandomWriter {
    public let mapping: TrackedMapping
    /// Bytes per write: 4 KiB, like fio's `bs=4k`.
    public let ioSize: Int
    /// Writes made so far; the pattern of each write includes its number.
    public private(set) var writes: UInt64 = 0

    public init(mapping: TrackedMapping, ioSize: Int = 4096) {
        precondition(ioSize > 0 && ioSize % 8 == 0 && ioSize <= mapping.bytes.count, "ioSize must be a positive multiple of 8 within the mapping")
        self.mapping = mapping
        self.ioSize = ioSize
    }

    /// Number of `ioSize` slots in the mapping.
    public var slots: Int { mapping.bytes.count / ioSize }

    /// Overwrites slot `slot` with the pattern of the next write and returns
    /// that write's number.
    @discardableResult
    public mutating func write(slot: Int) -> UInt64 {
        writes += 1
        let stamp = UInt64(slot) << 32 | writes
        let base = mapping.bytes.baseAddress! + slot * ioSize
        for word in 0..<(ioSize / 8) {
            base.storeBytes(of: stamp ^ UInt64(word) &* 0x9E37_79B9_7F4A_7C15, toByteOffset: word * 8, as: UInt64.self)
        }
        return writes
    }

    /// Writes one uniformly random slot; returns the slot.
    @discardableResult
    public mutating func writeRandomBlock<R: RandomNumberGenerator>(using random: inout R) -> Int {
        let slot = Int.random(in: 0..<slots, using: &random)
        write(slot: slot)
        return slot
    }

    /// The write number whose complete pattern slot `slot` holds, or nil if
    /// it holds no complete pattern (never written, or torn).
    public func verify(slot: Int) -> UInt64? {
        let base = UnsafeRawPointer(mapping.bytes.baseAddress! + slot * ioSize)
        let stamp = base.load(as: UInt64.self)
        guard stamp >> 32 == UInt64(slot), stamp & 0xFFFF_FFFF != 0 else { return nil }
        for word in 1..<(ioSize / 8) where base.load(fromByteOffset: word * 8, as: UInt64.self) != stamp ^ UInt64(word) &* 0x9E37_79B9_7F4A_7C15 {
            return nil
        }
        return stamp & 0xFFFF_FFFF
    }
}
