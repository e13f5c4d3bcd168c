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
/// Block 0 is a header (magic, slot count) and the redo record of
/// ``putAtomically(_:)``. Slots follow, each
///
///     key: UInt64 · length: UInt32 · crc: UInt32 · value: 48 bytes
///
/// with key 0 meaning empty. Lookup probes linearly from the key's hash;
/// there is no delete, so a probe stops at the first empty slot.
///
/// ## Large values
/// Opened with a `valueArea`, the store keeps that many bytes at the end of
/// the mapping for values longer than 48 bytes. Such a value is written
/// there once, out of line, and made durable before its slot points to it:
/// the slot's value field then holds the value's offset, which the checksum
/// covers. Space is never reclaimed; the area fills up. Open the mapping
/// with the same `valueArea` each time.
///
/// ## Crash behaviour
/// A slot rewritten in place can be torn by a crash between commits. The
/// CRC-32C over key, length and value tells: ``get(_:)`` returns `nil` for
/// a slot whose checksum fails, and ``damagedSlots`` counts them on open.
/// Committed values are never torn. ``putAtomically(_:)`` updates several
/// keys so that a crash leaves all of them or none, torn slots included.
///
/// ## Seeded bugs
/// `init(mapping:valueArea:flaw:)` with a ``Flaw`` makes one decision of
/// the store wrong, for crash tests that must catch it (the crash lab's bug
/// zoo). Without one, the store is the one described above.
///
/// Not thread-safe: one writer at a time.
public final class KeyValueStore {
    /// Why an operation on the store failed.
    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        /// Key 0 marks empty slots and cannot be stored.
        case invalidKey
        /// Values are at most ``KeyValueStore/maximumValueSize`` bytes, unless
        /// the store has a value area (and at most `UInt32.max` then).
        case valueTooLarge(Int)
        /// The table is at its load limit of 7/8.
        case full(capacity: Int)
        /// The mapping needs room for the header block and one block of slots.
        case mappingTooSmall(Int)
        /// The header block holds something other than this store's header.
        case corruptHeader
        /// The redo record of a committed ``KeyValueStore/putAtomically(_:)``
        /// is damaged: it cannot be redone.
        case corruptBatch
        /// A batch holds more than ``KeyValueStore/maximumBatchSize`` pairs.
        case batchTooLarge(Int)
        /// The value area has no room left for a large value of this many bytes.
        case valueAreaFull(needed: Int)
        /// The mapping failed: the sync did not make the data durable.
        case storage(PmemTrackError)

        public var description: String {
            switch self {
            case .invalidKey: return "key 0 is reserved"
            case .valueTooLarge(let size): return "value of \(size) bytes exceeds \(KeyValueStore.maximumValueSize)"
            case .full(let capacity): return "store full (\(capacity) keys)"
            case .mappingTooSmall(let length): return "mapping of \(length) bytes is too small"
            case .corruptHeader: return "not a key-value store header"
            case .corruptBatch: return "the redo record of a committed batch is damaged"
            case .batchTooLarge(let count): return "batch of \(count) pairs exceeds \(KeyValueStore.maximumBatchSize)"
            case .valueAreaFull(let needed): return "value area full: \(needed) bytes needed"
            case .storage(let error): return "storage: \(error)"
            }
        }
    }

    /// The longest value a slot holds itself; longer ones need a value area.
    public static let maximumValueSize = 48
    static let slotSize = 64
    static let magic: UInt64 = 0x3130_5653_4B54_4D50  // "PMTKVS01"

    public let mapping: TrackedMapping
    /// Number of slots.
    public let slotCount: Int
    /// Keys stored.
    public private(set) var count: Int
    /// Slots whose checksum failed when the store was opened (after a
    /// committed batch was redone).
    public private(set) var damagedSlots: Int
    /// The most keys the table takes: 7/8 of its slots.
    public var capacity: Int { slotCount / 8 * 7 }
    /// Where values longer than ``maximumValueSize`` go: the end of the
    /// mapping, after the slots. Empty without a value area.
    public let valueArea: Range<Int>
    /// The seeded bug this store runs with; nil for the correct store.
    public let flaw: Flaw?

    let slotsStart: Int
    /// Where the next large value goes.
    var valueTop: Int

    /// Opens the store in `mapping`, or formats a new one if block 0 is all
    /// zeros or holds part of a header being formatted. Counts keys and
    /// damaged slots: O(slots). Redoes a batch that was committed but not
    /// finished before a crash.
    ///
    /// - Parameters:
    ///   - mapping: The store's mapping; the store uses all of it.
    ///   - valueArea: Bytes at the end of the mapping for values longer than
    ///     ``maximumValueSize``; 0 (the default) keeps none, and such values
    ///     are refused. The same each time the mapping is opened.
    ///   - flaw: A seeded bug, for crash tests; nil (the default) for the
    ///     correct store.
    public init(mapping: TrackedMapping, valueArea: Int = 0, flaw: Flaw? = nil) throws(Error) {
        self.mapping = mapping
        self.flaw = flaw
        slotsStart = max(mapping.blockSize, 4096)
        guard valueArea >= 0, mapping.bytes.count - valueArea >= slotsStart * 2 else {
            throw .mappingTooSmall(mapping.bytes.count)
        }
        let slots = (mapping.bytes.count - valueArea - slotsStart) / Self.slotSize
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
        self.valueArea = valueArea > 0 ? (slotsStart + slots * Self.slotSize)..<bytes.count : bytes.count..<bytes.count
        (count, damagedSlots, valueTop) = (0, 0, self.valueArea.lowerBound)
        census()
        if try redoCommittedBatch() { census() }
    }

    /// Counts keys and damaged slots, and finds the end of the large values.
    private func census() {
        (count, damagedSlots, valueTop) = (0, 0, valueArea.lowerBound)
        for slot in 0..<slotCount {
            let offset = slotsStart + slot * Self.slotSize
            guard mapping.bytes.load(fromByteOffset: offset, as: UInt64.self) != 0 else { continue }
            count += 1
            guard Self.slotIsIntact(mapping.bytes, at: offset, values: valueArea) else { damagedSlots += 1; continue }
            if let value = largeValue(at: offset) { valueTop = max(valueTop, Self.aligned(value.upperBound)) }
        }
    }

    /// Stores `value` under `key`, replacing any value. Not durable until
    /// ``commit()``.
    public func put(_ key: UInt64, _ value: UnsafeRawBufferPointer) throws(Error) {
        guard key != 0 else { throw .invalidKey }
        guard value.count <= Self.maximumValueSize || (!valueArea.isEmpty && value.count <= UInt32.max) else {
            throw .valueTooLarge(value.count)
        }
        let (offset, found) = probe(key)
        if !found && count >= capacity { throw .full(capacity: capacity) }
        let bytes = mapping.bytes
        let length = UInt32(value.count)
        var padded = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        if value.count > Self.maximumValueSize {
            padded.0 = UInt64(try storeLargeValue(value))  // the slot points to it
        } else {
            withUnsafeMutableBytes(of: &padded) { $0.copyMemory(from: value) }
        }
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
        guard found, Self.slotIsIntact(mapping.bytes, at: offset, values: valueArea) else { return nil }
        if let value = largeValue(at: offset) { return Array(mapping.bytes[value]) }
        let length = Int(mapping.bytes.load(fromByteOffset: offset + 8, as: UInt32.self))
        return Array(mapping.bytes[(offset + 16)..<(offset + 16 + length)])
    }

    /// Makes every update so far durable.
    public func commit() throws(Error) {
        do { try mapping.sync() } catch { throw .storage(error) }
    }

    /// The slot holding `key`, or the empty slot where it would go.
    func probe(_ key: UInt64) -> (offset: Int, found: Bool) {
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

    /// Whether the slot at `offset` passes its checksum and, if its value is
    /// large, points inside `values`, the value area.
    static func slotIsIntact(_ bytes: UnsafeMutableRawBufferPointer, at offset: Int, values: Range<Int>) -> Bool {
        let key = bytes.load(fromByteOffset: offset, as: UInt64.self)
        let length = bytes.load(fromByteOffset: offset + 8, as: UInt32.self)
        let value = UnsafeRawBufferPointer(rebasing: bytes[(offset + 16)..<(offset + 64)])
        let crc = CRC32C.checksum(value, continuing: CRC32C.checksum(of: (key, length)))
        guard crc == bytes.load(fromByteOffset: offset + 12, as: UInt32.self) else { return false }
        if length <= UInt32(maximumValueSize) { return true }
        let start = bytes.load(fromByteOffset: offset + 16, as: UInt64.self)
        return values.count >= Int(length) && start >= UInt64(values.lowerBound)
            && start <= UInt64(values.upperBound - Int(length))
    }
}
