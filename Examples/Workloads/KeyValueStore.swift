import PmemTrack

/// A fixed-size hash table of 64-byte slots in a ``TrackedMapping``: keys are
/// `UInt64`, values up to 48 bytes. Updates are plain stores into the table;
/// ``commit()`` makes all of them durable with one `sync()`, which flushes
/// only the blocks that updates touched since the last commit.
///
/// ```swift
/// let map = try TrackedMapping(path: "/mnt/pmem/kv", length: 256 << 20, options: [.create, .randomAccess])
/// let store = try KeyValueStore(mapping: map)
/// try store.put(42, Array("answer".utf8))
/// try store.commit()                           // every N updates
/// store.get(42)                                // [97, 110, ...]
/// ```
///
/// ## Layout
/// Block 0 is a header (magic, slot count). Slots follow, each
///
///     key: UInt64 · length: UInt32 · crc: UInt32 · value: 48 bytes
///
/// with key 0 meaning empty. Lookup probes linearly from the key's hash;
/// there is no delete, so a probe stops at the first empty slot.
///
/// ## Crash behaviour
/// A slot rewritten in place can be torn by a crash between commits. The
/// CRC-32C over key, length and value tells: ``get(_:)`` returns `nil` for
/// a slot whose checksum fails, and ``damagedSlots`` counts them on open.
/// Committed values are never torn.
///
/// Not thread-safe: one writer at a time.
public final class KeyValueStore {
    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        /// Key 0 marks empty slots and cannot be stored.
        case invalidKey
        /// Values are at most ``KeyValueStore/maximumValueSize`` bytes.
        case valueTooLarge(Int)
        /// The table is at its load limit of 7/8.
        case full(capacity: Int)
        /// The mapping needs room for the header block and one block of slots.
        case mappingTooSmall(Int)
        /// The header block holds something other than this store's header.
        case corruptHeader
        case storage(PmemTrackError)

        public var description: String {
            switch self {
            case .invalidKey: return "key 0 is reserved"
            case .valueTooLarge(let size): return "value of \(size) bytes exceeds \(KeyValueStore.maximumValueSize)"
            case .full(let capacity): return "store full (\(capacity) keys)"
            case .mappingTooSmall(let length): return "mapping of \(length) bytes is too small"
            case .corruptHeader: return "not a key-value store header"
            case .storage(let error): return "storage: \(error)"
            }
        }
    }

    public static let maximumValueSize = 48
    static let slotSize = 64
    static let magic: UInt64 = 0x3130_5653_4B54_4D50  // "PMTKVS01"

    public let mapping: TrackedMapping
    /// Number of slots.
    public let slotCount: Int
    /// Keys stored.
    public private(set) var count: Int
    /// Slots whose checksum failed when the store was opened.
    public let damagedSlots: Int
    /// The most keys the table takes: 7/8 of its slots.
    public var capacity: Int { slotCount / 8 * 7 }

    private let slotsStart: Int

    /// Opens the store in `mapping`, or formats a new one if block 0 is all
    /// zeros or holds part of a header being formatted. Counts keys and
    /// damaged slots: O(slots).
    public init(mapping: TrackedMapping) throws(Error) {
        self.mapping = mapping
        slotsStart = max(mapping.blockSize, 4096)
        guard mapping.bytes.count >= slotsStart * 2 else { throw .mappingTooSmall(mapping.bytes.count) }
        let slots = (mapping.bytes.count - slotsStart) / Self.slotSize
        let bytes = mapping.bytes
        switch (bytes.load(fromByteOffset: 0, as: UInt64.self), bytes.load(fromByteOffset: 8, as: UInt64.self)) {
        case (0, 0), (Self.magic, 0), (0, UInt64(slots)):
            // A new file, or a first header write cut short by a crash
            // (found by the crash lab with 8-byte tearing): nothing can have
            // been committed before the header was durable.
            bytes.storeBytes(of: Self.magic, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: UInt64(slots), toByteOffset: 8, as: UInt64.self)
            do { try mapping.sync(offset: 0, length: 16) } catch { throw .storage(error) }
        case (Self.magic, UInt64(slots)):
            break
        default:
            throw .corruptHeader
        }
        slotCount = slots
        var used = 0
        var damaged = 0
        for slot in 0..<slots {
            let offset = slotsStart + slot * Self.slotSize
            guard bytes.load(fromByteOffset: offset, as: UInt64.self) != 0 else { continue }
            used += 1
            if !Self.slotIsIntact(bytes, at: offset) { damaged += 1 }
        }
        count = used
        damagedSlots = damaged
    }

    /// Stores `value` under `key`, replacing any value. Not durable until
    /// ``commit()``.
    public func put(_ key: UInt64, _ value: UnsafeRawBufferPointer) throws(Error) {
        guard key != 0 else { throw .invalidKey }
        guard value.count <= Self.maximumValueSize else { throw .valueTooLarge(value.count) }
        let (offset, found) = probe(key)
        if !found && count >= capacity { throw .full(capacity: capacity) }
        let bytes = mapping.bytes
        let length = UInt32(value.count)
        var padded = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &padded) { $0.copyMemory(from: value) }
        // Value, length and checksum first, key last: a new key becomes
        // visible to lookups only once its slot is complete.
        withUnsafeBytes(of: padded) { bytes.baseAddress!.advanced(by: offset + 16).copyMemory(from: $0.baseAddress!, byteCount: 48) }
        bytes.storeBytes(of: length, toByteOffset: offset + 8, as: UInt32.self)
        bytes.storeBytes(of: Self.checksum(key: key, length: length, value: padded), toByteOffset: offset + 12, as: UInt32.self)
        if !found {
            bytes.storeBytes(of: key, toByteOffset: offset, as: UInt64.self)
            count += 1
        }
    }

    /// Stores `value` under `key`. Not durable until ``commit()``.
    public func put(_ key: UInt64, _ value: [UInt8]) throws(Error) {
        // withUnsafeBytes rethrows untyped errors; carry the typed one out in a Result.
        try value.withUnsafeBytes { buffer in Result { () throws(Error) in try put(key, buffer) } }.get()
    }

    /// The value stored under `key`, or nil if there is none or its slot
    /// was torn by a crash.
    public func get(_ key: UInt64) -> [UInt8]? {
        guard key != 0 else { return nil }
        let (offset, found) = probe(key)
        guard found, Self.slotIsIntact(mapping.bytes, at: offset) else { return nil }
        let length = Int(mapping.bytes.load(fromByteOffset: offset + 8, as: UInt32.self))
        return Array(mapping.bytes[(offset + 16)..<(offset + 16 + length)])
    }

    /// Makes every update so far durable.
    public func commit() throws(Error) {
        do { try mapping.sync() } catch { throw .storage(error) }
    }

    /// The slot holding `key`, or the empty slot where it would go.
    private func probe(_ key: UInt64) -> (offset: Int, found: Bool) {
        var slot = Int(Self.hash(key) % UInt64(slotCount))
        while true {
            let offset = slotsStart + slot * Self.slotSize
            let stored = mapping.bytes.load(fromByteOffset: offset, as: UInt64.self)
            if stored == key { return (offset, true) }
            if stored == 0 { return (offset, false) }
            slot = slot + 1 == slotCount ? 0 : slot + 1
        }
    }

    /// A 64-bit finaliser (multiply-xorshift) to spread sequential keys.
    static func hash(_ key: UInt64) -> UInt64 {
        var x = key
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }

    static func checksum<Value: BitwiseCopyable>(key: UInt64, length: UInt32, value: Value) -> UInt32 {
        CRC32C.checksum(of: value, continuing: CRC32C.checksum(of: (key, length)))
    }

    static func slotIsIntact(_ bytes: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
        let key = bytes.load(fromByteOffset: offset, as: UInt64.self)
        let length = bytes.load(fromByteOffset: offset + 8, as: UInt32.self)
        let value = UnsafeRawBufferPointer(rebasing: bytes[(offset + 16)..<(offset + 64)])
        let crc = CRC32C.checksum(value, continuing: CRC32C.checksum(of: (key, length)))
        return length <= UInt32(maximumValueSize) && crc == bytes.load(fromByteOffset: offset + 12, as: UInt32.self)
    }
}
