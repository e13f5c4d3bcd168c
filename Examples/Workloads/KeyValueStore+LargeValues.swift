import PmemTrack

/// Values longer than a slot holds: copied once into the value area at the
/// end of the mapping, made durable, and then pointed to by their slot.
extension KeyValueStore {
    /// Copies a value longer than ``maximumValueSize`` into the value area
    /// and makes it durable; returns its offset.
    func storeLargeValue(_ value: UnsafeRawBufferPointer) throws(Error) -> Int {
        let offset = valueTop
        guard offset + value.count <= valueArea.upperBound else { throw .valueAreaFull(needed: value.count) }
        mapping.bytes.baseAddress!.advanced(by: offset).copyMemory(from: value.baseAddress!, byteCount: value.count)
        // Durable before the slot points to it: the slot's checksum covers
        // the pointer, not the bytes it points to.
        if flaw != .largeValueSyncedWithPointer {  // Flaw: left to the commit that makes the slot durable.
            do { try mapping.sync(offset: offset, length: value.count) } catch { throw .storage(error) }
        }
        valueTop = Self.aligned(offset + value.count)
        return offset
    }

    /// Where the large value of the (intact) slot at `offset` lies, if it has one.
    func largeValue(at offset: Int) -> Range<Int>? {
        let length = Int(mapping.bytes.load(fromByteOffset: offset + 8, as: UInt32.self))
        guard length > Self.maximumValueSize else { return nil }
        let start = Int(mapping.bytes.load(fromByteOffset: offset + 16, as: UInt64.self))
        return start..<(start + length)
    }

    static func aligned(_ offset: Int) -> Int { (offset + 7) & ~7 }
}
