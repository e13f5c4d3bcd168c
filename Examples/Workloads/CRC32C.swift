/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum the
/// examples put on their records. A byte-at-a-time table: simple, and fast
/// enough next to a sync.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// Continues `crc` (the value returned by an earlier call, or 0) over `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var value = ~crc
        table.withUnsafeBufferPointer { table in
            for byte in bytes { value = table[Int((value ^ UInt32(byte)) & 0xFF)] ^ (value >> 8) }
        }
        return ~value
    }

    /// The checksum of the bytes of `values`, in memory order, after `crc`.
    public static func checksum<T: BitwiseCopyable>(of values: T, continuing crc: UInt32 = 0) -> UInt32 {
        withUnsafeBytes(of: values) { checksum($0, continuing: crc) }
    }
}
