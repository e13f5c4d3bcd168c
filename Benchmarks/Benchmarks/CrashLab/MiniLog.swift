import BenchmarkSupport
import PmemTrack

/// A minimal append-only log of checksummed records, for the crash lab's
/// end-to-end benchmark and the recording overhead workload.
///
/// The examples' `WriteAheadLog` (target ExampleWorkloads) is not a product
/// of the root package, so this package cannot import it, and the root
/// Package.swift is not ours to change. This is the same idea in a few dozen
/// lines, without header slots or truncation: enough for a real recovery,
/// with a checksum over every record, to run on each crash image.
///
/// Records start at offset 0, each 8-byte aligned:
///
///     length: UInt32 · crc: UInt32 · lsn: UInt64 · payload · padding to 8
///
/// The CRC-32C covers the LSN, the length and the payload. LSNs start at 1,
/// so the zeros of a new file are never a record.
struct MiniLog {
    static let headerSize = 16

    let mapping: TrackedMapping
    /// The LSN the next append gets.
    private(set) var nextLSN: UInt64 = 1
    private var tail = 0
    private var committedTail = 0

    /// Opens the log in `mapping` and recovers it: reads forward from offset
    /// 0 while each record fits, has the next LSN and a valid checksum,
    /// calling `body` with each. The first that fails is the torn or never
    /// committed tail of the log; the next append overwrites it.
    init(mapping: TrackedMapping, each body: (_ lsn: UInt64, _ payload: UnsafeRawBufferPointer) throws -> Void = { _, _ in }) rethrows {
        self.mapping = mapping
        let bytes = UnsafeRawBufferPointer(mapping.bytes)
        while tail + Self.headerSize <= bytes.count {
            let length = Int(bytes.load(fromByteOffset: tail, as: UInt32.self))
            let start = tail + Self.headerSize
            guard length <= bytes.count - start, bytes.load(fromByteOffset: tail + 8, as: UInt64.self) == nextLSN else { break }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
            guard bytes.load(fromByteOffset: tail + 4, as: UInt32.self) == CRC32C.checksum(lsn: nextLSN, payload: payload) else { break }
            try body(nextLSN, payload)
            tail = start + (length + 7) & ~7
            nextLSN += 1
        }
        committedTail = tail
    }

    /// Appends a record and returns its LSN: plain stores into the mapping,
    /// durable only after ``commit()``.
    mutating func append(_ payload: [UInt8]) throws -> UInt64 {
        let start = tail + Self.headerSize
        let end = start + (payload.count + 7) & ~7
        guard end <= mapping.bytes.count else { throw BenchmarkSetupError("the log's \(mapping.bytes.count) bytes are full") }
        let bytes = mapping.bytes
        let lsn = nextLSN
        payload.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: bytes[start..<(start + source.count)]).copyMemory(from: source)
            bytes.storeBytes(of: UInt32(source.count), toByteOffset: tail, as: UInt32.self)
            bytes.storeBytes(of: CRC32C.checksum(lsn: lsn, payload: source), toByteOffset: tail + 4, as: UInt32.self)
            bytes.storeBytes(of: lsn, toByteOffset: tail + 8, as: UInt64.self)
        }
        tail = end
        nextLSN += 1
        return lsn
    }

    /// Makes every appended record durable: one ranged sync over the bytes
    /// appended since the last commit.
    mutating func commit() throws {
        try mapping.sync(offset: committedTail, length: tail - committedTail)
        committedTail = tail
    }
}

/// CRC-32C (Castagnoli), one table lookup per byte: what a log's recovery
/// typically pays per byte it validates.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    private static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = crc
        for byte in bytes { crc = table[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc >> 8) }
        return crc
    }

    static func checksum(lsn: UInt64, payload: UnsafeRawBufferPointer) -> UInt32 {
        var crc = withUnsafeBytes(of: lsn.littleEndian) { update(~0, $0) }
        crc = withUnsafeBytes(of: UInt32(payload.count).littleEndian) { update(crc, $0) }
        return ~update(crc, payload)
    }
}
