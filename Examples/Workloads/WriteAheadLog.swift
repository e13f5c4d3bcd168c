import PmemTrack

/// An append-only log of checksummed records kept in a ``TrackedMapping``:
/// the write-ahead log of a database, in a few hundred lines.
///
/// ```swift
/// let map = try TrackedMapping(path: "/mnt/pmem/wal", length: 64 << 20, options: [.create])
/// let log = try WriteAheadLog(mapping: map)          // recovers what is there
/// let lsn = try log.append(Array("put k1 v1".utf8))
/// try log.commit()                                   // durable once this returns
/// try log.truncate(before: lsn + 1)                  // after a checkpoint
/// ```
///
/// ## Layout
/// Block 0 holds two 48-byte header slots, at offsets 488 and 2536. Each
/// slot has a sequence number and a checksum; updates go to the slot the
/// last one did not use, so a crash during an update leaves the other
/// intact. The slots are 2 KiB apart, so no sector or line holds parts of
/// both.
///
/// Each slot straddles a 512-byte sector boundary, and so a 64-byte line
/// boundary, on purpose: the log relies on the atomicity of nothing larger
/// than an aligned 8-byte word. Persistent memory promises no more, and not
/// every device writes a 512-byte sector atomically. The alternating slots
/// are what make a torn header update survivable. (A slot inside one sector
/// and one line would let a crash test that tears sectors or lines, but not
/// words, miss a header updated in place.) Records start at block 1:
///
///     length: UInt32 · crc: UInt32 · lsn: UInt64 · epoch: UInt64 · payload · padding to 8
///
/// The CRC-32C covers lsn, epoch, length and payload.
///
/// ## Commit
/// ``commit()`` syncs only the bytes appended since the last commit, with
/// `sync(offset:length:)`. PmemTrack flushes just the blocks they touched,
/// so a commit of one small record flushes one or two blocks, whatever the
/// log's size. Appending many records and committing once is group commit.
///
/// ## Recovery
/// Opening reads forward from the head while each record has the expected
/// LSN, the header's epoch and a valid checksum. The first that fails ends
/// the log: it is the torn tail of an append that was never committed, and
/// the next append overwrites it. Truncating everything rewinds to block 1
/// under a new epoch, so records of the old epoch left there never count.
///
/// ## Seeded bugs
/// `init(mapping:flaw:)` with a ``Flaw`` makes one decision of the log
/// wrong, for crash tests that must catch it (the crash lab's bug zoo).
/// Without one, the log is the one described above.
///
/// Not thread-safe: one writer at a time.
public final class WriteAheadLog {
    /// Why an operation on the log failed. The log is unchanged after each.
    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        /// The mapping needs room for the header block and at least one record.
        case mappingTooSmall(Int)
        /// Header slots hold something other than a log header.
        case corruptHeader
        /// The record needs `needed` bytes; only `free` are left before the end.
        case full(needed: Int, free: Int)
        /// `truncate(before:)` takes an LSN of the committed log, between
        /// ``firstLSN`` and ``committedLSN``.
        case lsnOutOfRange(UInt64, committed: ClosedRange<UInt64>)
        /// The mapping failed: the sync did not make the data durable.
        case storage(PmemTrackError)

        public var description: String {
            switch self {
            case .mappingTooSmall(let length): return "mapping of \(length) bytes is too small for a log"
            case .corruptHeader: return "both header slots are damaged or not a log header"
            case .full(let needed, let free): return "log full: record needs \(needed) bytes, \(free) free"
            case .lsnOutOfRange(let lsn, let committed):
                return "LSN \(lsn) is outside the committed log \(committed.lowerBound)...\(committed.upperBound)"
            case .storage(let error): return "storage: \(error)"
            }
        }
    }

    static let magic: UInt64 = 0x3130_4C41_5754_4D50  // "PMTWAL01"
    static let recordHeaderSize = 24
    /// Where the two header slots start: each straddles a sector boundary
    /// (see Layout above).
    static let slotOffsets = [488, 2536]
    /// Bytes a header slot occupies: five words and a 32-bit checksum, padded.
    static let slotSize = 48

    /// The mapping the log lives in. The caller owns it and closes it.
    public let mapping: TrackedMapping
    /// LSN of the oldest record still in the log.
    public private(set) var firstLSN: UInt64
    /// LSN the next ``append(_:)`` gets.
    public private(set) var nextLSN: UInt64
    /// Every record with a smaller LSN is durable.
    public private(set) var committedLSN: UInt64
    /// Records found intact when the log was opened.
    public let recoveredRecords: Int
    /// The seeded bug this log runs with; nil for the correct log.
    public let flaw: Flaw?

    private var header: Header
    private let dataStart: Int
    private var tail: Int
    private var committedTail: Int
    /// Where the last record appended starts (``Flaw/commitSyncsLastRecordOnly``).
    private var lastRecord = 0
    /// Bytes committed but not yet synced (``Flaw/commitReturnsBeforeSync``).
    private var unsynced = 0..<0

    /// Opens the log in `mapping`, recovering the records there, or starts a
    /// new log if both header slots are all zeros (a new file), or hold the
    /// first header write torn by a crash.
    ///
    /// - Parameters:
    ///   - mapping: The log's mapping; the log uses all of it.
    ///   - flaw: A seeded bug, for crash tests; nil (the default) for the
    ///     correct log.
    public init(mapping: TrackedMapping, flaw: Flaw? = nil) throws(Error) {
        self.mapping = mapping
        self.flaw = flaw
        dataStart = max(mapping.blockSize, 4096)
        guard mapping.bytes.count >= dataStart + Self.recordHeaderSize + 8 else {
            throw .mappingTooSmall(mapping.bytes.count)
        }
        let initial = Header(sequence: 0, epoch: 1, headOffset: UInt64(dataStart), headLSN: 1)
        if let found = Header.newest(in: mapping.bytes) {
            header = found
        } else if Header.slotsAreBlank(in: mapping.bytes) || initial.isTornCopy(in: mapping.bytes) {
            // A new file, or one whose first header write was cut short by a
            // crash (found by the crash lab with 8-byte tearing): no record
            // can have been committed before that header was durable.
            header = initial
            try Self.write(header, to: mapping, flaw: flaw)
        } else {
            throw .corruptHeader
        }
        let scan = Self.scan(mapping.bytes, from: Int(header.headOffset), lsn: header.headLSN, epoch: header.epoch, flaw: flaw)
        firstLSN = header.headLSN
        nextLSN = header.headLSN + UInt64(scan.records)
        committedLSN = nextLSN
        tail = scan.end
        committedTail = scan.end
        recoveredRecords = scan.records
    }

    /// Appends a record and returns its LSN. Not durable until ``commit()``.
    @discardableResult
    public func append(_ payload: UnsafeRawBufferPointer) throws(Error) -> UInt64 {
        let size = Self.recordSize(payload: payload.count)
        guard tail + size <= mapping.bytes.count else {
            throw .full(needed: size, free: mapping.bytes.count - tail)
        }
        let bytes = mapping.bytes
        let lsn = nextLSN
        let length = UInt32(payload.count)
        let crc = Self.checksum(lsn: lsn, epoch: header.epoch, payload: payload, flaw: flaw)
        // Plain stores into the mapping; the first store to each clean block
        // faults once and PmemTrack marks that block dirty.
        if let source = payload.baseAddress, payload.count > 0 {
            (bytes.baseAddress! + tail + Self.recordHeaderSize).copyMemory(from: source, byteCount: payload.count)
        }
        bytes.storeBytes(of: length, toByteOffset: tail, as: UInt32.self)
        bytes.storeBytes(of: crc, toByteOffset: tail + 4, as: UInt32.self)
        bytes.storeBytes(of: lsn, toByteOffset: tail + 8, as: UInt64.self)
        bytes.storeBytes(of: header.epoch, toByteOffset: tail + 16, as: UInt64.self)
        lastRecord = tail
        tail += size
        nextLSN += 1
        return lsn
    }

    /// Appends a record and returns its LSN. Not durable until ``commit()``.
    @discardableResult
    public func append(_ payload: [UInt8]) throws(Error) -> UInt64 {
        // withUnsafeBytes rethrows untyped errors; carry the typed one out in a Result.
        try payload.withUnsafeBytes { buffer in Result { () throws(Error) -> UInt64 in try append(buffer) } }.get()
    }

    /// Makes every appended record durable: one ranged sync over the bytes
    /// appended since the last commit.
    public func commit() throws(Error) {
        guard tail > committedTail else { return }
        // The bytes appended since the last commit.
        var range = committedTail..<tail
        switch flaw {
        case .commitSyncsLastRecordOnly?:
            range = lastRecord..<tail  // Flaw: the rest of the group is left out.
        case .commitSyncRoundsDown?:
            // Flaw: whole blocks, their number rounded down instead of up.
            let start = committedTail / mapping.blockSize * mapping.blockSize
            range = start..<(start + (tail - start) / mapping.blockSize * mapping.blockSize)
        case .commitReturnsBeforeSync?:
            swap(&range, &unsynced)  // Flaw: syncs the previous commit's bytes; these wait for the next.
        default:
            break
        }
        do {
            try mapping.sync(offset: range.lowerBound, length: range.count)
        } catch {
            // The records stay appended and uncommitted; a later commit
            // retries, since PmemTrack keeps their blocks dirty.
            throw .storage(error)
        }
        committedTail = tail
        committedLSN = nextLSN
    }

    /// Drops the records before `lsn`, durably. `truncate(before: nextLSN)`
    /// after a commit empties the log and rewinds it to the start.
    public func truncate(before lsn: UInt64) throws(Error) {
        guard lsn >= firstLSN, lsn <= committedLSN else {
            throw .lsnOutOfRange(lsn, committed: firstLSN...committedLSN)
        }
        var next = header
        next.sequence += 1
        if lsn == nextLSN {
            // Empty: rewind under a new epoch. Records of the old epoch left
            // in place fail the epoch check if a crash comes before they are
            // overwritten.
            next.epoch += 1
            next.headOffset = UInt64(dataStart)
        } else {
            next.headOffset = UInt64(Self.offset(of: lsn, in: mapping.bytes, from: Int(header.headOffset), lsn: firstLSN))
        }
        next.headLSN = lsn
        // The new header is durable before anything else changes, so a
        // crash leaves either the old log or the truncated one.
        try Self.write(next, to: mapping, flaw: flaw)
        header = next
        firstLSN = lsn
        if lsn == nextLSN { tail = dataStart; committedTail = dataStart }
    }

    /// Calls `body` with each record in the log, oldest first.
    public func forEachRecord(_ body: (_ lsn: UInt64, _ payload: UnsafeRawBufferPointer) throws -> Void) rethrows {
        var offset = Int(header.headOffset)
        for lsn in firstLSN..<nextLSN {
            let length = Int(mapping.bytes.load(fromByteOffset: offset, as: UInt32.self))
            let start = offset + Self.recordHeaderSize
            try body(lsn, UnsafeRawBufferPointer(rebasing: mapping.bytes[start..<start + length]))
            offset += Self.recordSize(payload: length)
        }
    }

    /// Bytes of the mapping the log's records occupy.
    public var usedBytes: Int { tail - Int(header.headOffset) }
    /// Bytes left for records before the log is full.
    public var freeBytes: Int { mapping.bytes.count - tail }
}
