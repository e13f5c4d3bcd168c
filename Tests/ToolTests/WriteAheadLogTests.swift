@testable import ExampleWorkloads
import Foundation
import PmemTrack
import Testing

/// A mapping on a new temporary file, removed when released.
final class ScratchMapping {
    let path = NSTemporaryDirectory() + "pmemtrack-tooltests-\(UUID().uuidString)"
    let length: Int
    private(set) var map: TrackedMapping

    init(length: Int = 1 << 20) throws {
        self.length = length
        map = try TrackedMapping(path: path, length: length, options: [.create])
    }

    /// Closes and maps the file again: what a restart sees, given that
    /// everything synced is in the file.
    func reopen() throws -> TrackedMapping {
        try map.close()
        map = try TrackedMapping(path: path, length: length)
        return map
    }

    deinit {
        try? map.close()
        unlink(path)
    }
}

@Suite("Example: write-ahead log")
struct WriteAheadLogTests {
    static func payload(_ lsn: UInt64) -> [UInt8] { Array("record \(lsn) ".utf8) + [UInt8](repeating: UInt8(lsn & 0xFF), count: Int(lsn % 300)) }

    static func records(_ log: WriteAheadLog) -> [(UInt64, [UInt8])] {
        var all: [(UInt64, [UInt8])] = []
        log.forEachRecord { all.append(($0, Array($1))) }
        return all
    }

    @Test("committed records are recovered in order, byte for byte")
    func recoverCommitted() throws {
        let scratch = try ScratchMapping()
        let log = try WriteAheadLog(mapping: scratch.map)
        #expect(log.recoveredRecords == 0 && log.nextLSN == 1)
        for lsn in 1...200 as ClosedRange<UInt64> {
            #expect(try log.append(Self.payload(lsn)) == lsn)
            if lsn % 7 == 0 { try log.commit() }
        }
        try log.commit()
        // Each commit flushes only the blocks its records touched: the data
        // blocks once, plus the block shared with the previous commit's
        // tail, plus the header block written at creation.
        let commits = 200 / 7 + 1
        let dataBlocks = (log.usedBytes + 4095) / 4096
        #expect(scratch.map.statistics.blocksFlushed <= UInt64(1 + dataBlocks + commits))

        let reopened = try WriteAheadLog(mapping: try scratch.reopen())
        #expect(reopened.recoveredRecords == 200)
        let found = Self.records(reopened)
        #expect(found.map(\.0) == Array(1...200))
        #expect(found.allSatisfy { $0.1 == Self.payload($0.0) })
    }

    @Test("a torn record ends the log: it and everything after it are dropped")
    func tornTail() throws {
        let scratch = try ScratchMapping()
        let log = try WriteAheadLog(mapping: scratch.map)
        for lsn in 1...10 as ClosedRange<UInt64> { try log.append(Self.payload(lsn)) }
        try log.commit()
        // Damage one payload byte of record 8, as a crash mid-append would.
        var offset = 0
        log.forEachRecord { lsn, payload in
            if lsn == 8 { offset = payload.baseAddress! - UnsafeRawPointer(scratch.map.bytes.baseAddress!) }
        }
        scratch.map.bytes[offset + 3] ^= 0xFF
        try scratch.map.sync()

        let reopened = try WriteAheadLog(mapping: try scratch.reopen())
        #expect(reopened.recoveredRecords == 7)
        #expect(reopened.nextLSN == 8)
        // The next append takes LSN 8 and overwrites the torn record.
        #expect(try reopened.append([1, 2, 3]) == 8)
        try reopened.commit()
        let again = try WriteAheadLog(mapping: try scratch.reopen())
        #expect(Self.records(again).last.map { $0.0 == 8 && $0.1 == [1, 2, 3] } == true)
    }

    @Test("truncate drops a prefix durably; truncating everything rewinds under a new epoch")
    func truncate() throws {
        let scratch = try ScratchMapping()
        let log = try WriteAheadLog(mapping: scratch.map)
        for lsn in 1...50 as ClosedRange<UInt64> { try log.append(Self.payload(lsn)) }
        #expect(throws: WriteAheadLog.Error.lsnOutOfRange(20, committed: 1...1)) { try log.truncate(before: 20) }
        try log.commit()
        try log.truncate(before: 20)
        var reopened = try WriteAheadLog(mapping: try scratch.reopen())
        #expect(Self.records(reopened).map(\.0) == Array(20...50))

        // Empty the log: the old records stay in the file but belong to the
        // old epoch, so a reopen finds none of them.
        try reopened.truncate(before: reopened.nextLSN)
        reopened = try WriteAheadLog(mapping: try scratch.reopen())
        #expect(reopened.recoveredRecords == 0 && reopened.firstLSN == 51)
        try reopened.append([9])
        try reopened.commit()
        reopened = try WriteAheadLog(mapping: try scratch.reopen())
        #expect(Self.records(reopened).map(\.0) == [51])
    }

    @Test("a full log and a foreign file give typed errors and change nothing")
    func badInput() throws {
        let scratch = try ScratchMapping(length: 64 << 10)
        let log = try WriteAheadLog(mapping: scratch.map)
        let big = [UInt8](repeating: 7, count: 40_000)
        try log.append(big)
        #expect(throws: WriteAheadLog.Error.full(needed: 40_024, free: log.freeBytes)) { try log.append(big) }
        #expect(log.nextLSN == 2)

        // A foreign file: its first block is not zeros and holds no log header.
        let other = try ScratchMapping(length: 64 << 10)
        for offset in stride(from: 0, to: 4096, by: 8) { other.map.bytes.storeBytes(of: 0xDEAD_BEEF, toByteOffset: offset, as: UInt64.self) }
        #expect(throws: WriteAheadLog.Error.corruptHeader) { try WriteAheadLog(mapping: other.map) }
        #expect(stride(from: 0, to: 4096, by: 8).allSatisfy { other.map.bytes.load(fromByteOffset: $0, as: UInt64.self) == 0xDEAD_BEEF })
    }

    @Test("one damaged header slot: the other one is used", arguments: [8, 30])
    func headerSlots(damagedByte: Int) throws {
        // Each slot straddles a sector boundary (and so a line boundary):
        // a model that tears sectors or lines can tear a header update.
        for slot in WriteAheadLog.slotOffsets {
            #expect(slot / 512 != (slot + WriteAheadLog.slotSize - 1) / 512, "slot at \(slot) inside one sector")
        }
        let scratch = try ScratchMapping()
        let log = try WriteAheadLog(mapping: scratch.map)
        for lsn in 1...5 as ClosedRange<UInt64> { try log.append(Self.payload(lsn)) }
        try log.commit()
        try log.truncate(before: 3)  // header sequence 1, in the second slot
        // A byte of the sequence number, before the slot's sector boundary,
        // or of the head offset, after it.
        scratch.map.bytes[WriteAheadLog.slotOffsets[1] + damagedByte] ^= 0x01
        try scratch.map.sync()
        // The first slot (sequence 0, head at LSN 1) is the newest valid one.
        let reopened = try WriteAheadLog(mapping: try scratch.reopen())
        #expect(reopened.firstLSN == 1 && reopened.recoveredRecords == 5)
    }
}
