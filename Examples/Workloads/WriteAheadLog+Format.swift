import PmemTrack

extension WriteAheadLog {
    /// Bytes a record with `payload` bytes occupies: header, payload, and
    /// padding to 8 so that the next header is aligned.
    static func recordSize(payload: Int) -> Int { recordHeaderSize + (payload + 7) & ~7 }

    /// One header slot: where the live log starts and under which epoch.
    struct Header: Equatable {
        var sequence: UInt64
        var epoch: UInt64
        var headOffset: UInt64
        var headLSN: UInt64

        var checksum: UInt32 { CRC32C.checksum(of: (WriteAheadLog.magic, sequence, epoch, headOffset, headLSN)) }

        /// The valid slot with the highest sequence number, if any.
        static func newest(in bytes: UnsafeMutableRawBufferPointer) -> Header? {
            WriteAheadLog.slotOffsets.compactMap { read(bytes, at: $0) }.max { $0.sequence < $1.sequence }
        }

        static func read(_ bytes: UnsafeMutableRawBufferPointer, at offset: Int) -> Header? {
            guard bytes.load(fromByteOffset: offset, as: UInt64.self) == WriteAheadLog.magic else { return nil }
            let header = Header(
                sequence: bytes.load(fromByteOffset: offset + 8, as: UInt64.self),
                epoch: bytes.load(fromByteOffset: offset + 16, as: UInt64.self),
                headOffset: bytes.load(fromByteOffset: offset + 24, as: UInt64.self),
                headLSN: bytes.load(fromByteOffset: offset + 32, as: UInt64.self))
            let stored = bytes.load(fromByteOffset: offset + 40, as: UInt32.self)
            guard stored == header.checksum, header.headOffset < UInt64(bytes.count) else { return nil }
            return header
        }

        /// Whether the first slot holds part of this header's words and
        /// zeros elsewhere, and the second is blank: the first header write
        /// of a new log, torn by a crash. A foreign file's bytes do not match.
        func isTornCopy(in bytes: UnsafeMutableRawBufferPointer) -> Bool {
            let words: [UInt64] = [WriteAheadLog.magic, sequence, epoch, headOffset, headLSN, UInt64(checksum)]
            let first = WriteAheadLog.slotOffsets[0]
            return Self.isBlank(bytes, slot: WriteAheadLog.slotOffsets[1]) && words.indices.allSatisfy { i in
                let stored = bytes.load(fromByteOffset: first + 8 * i, as: UInt64.self)
                return stored == 0 || stored == words[i]
            }
        }

        static func slotsAreBlank(in bytes: UnsafeMutableRawBufferPointer) -> Bool {
            WriteAheadLog.slotOffsets.allSatisfy { isBlank(bytes, slot: $0) }
        }

        /// Whether every word of the slot at `slot` is zero.
        static func isBlank(_ bytes: UnsafeMutableRawBufferPointer, slot: Int) -> Bool {
            stride(from: slot, to: slot + WriteAheadLog.slotSize, by: 8).allSatisfy { bytes.load(fromByteOffset: $0, as: UInt64.self) == 0 }
        }
    }

    /// The CRC-32C of a record: its LSN, epoch, length and payload.
    static func checksum(lsn: UInt64, epoch: UInt64, payload: UnsafeRawBufferPointer, flaw: Flaw?) -> UInt32 {
        let crc = CRC32C.checksum(of: (lsn, epoch, UInt32(payload.count)))
        if flaw == .checksumSkipsPayload { return crc }  // Flaw: the payload is not covered.
        return CRC32C.checksum(payload, continuing: crc)
    }

    /// Writes `header` into the slot its sequence number selects and syncs
    /// that slot alone.
    static func write(_ header: Header, to mapping: TrackedMapping, flaw: Flaw?) throws(Error) {
        // Flaw: always the first slot, over the header it replaces.
        let slot = slotOffsets[flaw == .headerAlwaysInFirstSlot ? 0 : Int(header.sequence % 2)]
        let bytes = mapping.bytes
        bytes.storeBytes(of: magic, toByteOffset: slot, as: UInt64.self)
        bytes.storeBytes(of: header.sequence, toByteOffset: slot + 8, as: UInt64.self)
        bytes.storeBytes(of: header.epoch, toByteOffset: slot + 16, as: UInt64.self)
        bytes.storeBytes(of: header.headOffset, toByteOffset: slot + 24, as: UInt64.self)
        bytes.storeBytes(of: header.headLSN, toByteOffset: slot + 32, as: UInt64.self)
        bytes.storeBytes(of: header.checksum, toByteOffset: slot + 40, as: UInt32.self)
        if flaw == .headerNeverSynced { return }  // Flaw: nothing makes the header durable.
        do { try mapping.sync(offset: slot, length: slotSize) } catch { throw .storage(error) }
    }

    /// Reads records forward from `offset`, expecting LSNs from `lsn` on and
    /// `epoch`; stops at the first that is cut off, out of sequence, of
    /// another epoch or fails its checksum.
    static func scan(
        _ bytes: UnsafeMutableRawBufferPointer, from offset: Int, lsn: UInt64, epoch: UInt64, flaw: Flaw?
    ) -> (end: Int, records: Int) {
        var offset = offset
        var expected = lsn
        while offset + recordHeaderSize <= bytes.count {
            let length = Int(bytes.load(fromByteOffset: offset, as: UInt32.self))
            let end = offset + recordSize(payload: length)
            guard end <= bytes.count,
                  bytes.load(fromByteOffset: offset + 8, as: UInt64.self) == expected,
                  bytes.load(fromByteOffset: offset + 16, as: UInt64.self) == epoch
            else { break }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[(offset + recordHeaderSize)..<(offset + recordHeaderSize + length)])
            let crc = checksum(lsn: expected, epoch: epoch, payload: payload, flaw: flaw)
            guard crc == bytes.load(fromByteOffset: offset + 4, as: UInt32.self) else { break }
            offset = end
            expected += 1
        }
        return (offset, Int(expected - lsn))
    }

    /// The byte offset of record `target`, walking from the record `lsn` at `offset`.
    static func offset(of target: UInt64, in bytes: UnsafeMutableRawBufferPointer, from offset: Int, lsn: UInt64) -> Int {
        var offset = offset
        for _ in lsn..<target {
            let length = Int(bytes.load(fromByteOffset: offset, as: UInt32.self))
            offset += recordSize(payload: length)
        }
        return offset
    }
}
