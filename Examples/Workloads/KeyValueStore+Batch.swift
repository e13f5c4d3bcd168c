import PmemTrack

/// Atomic batches: a redo record in block 0, after the header.
///
///     504: commit word: tag "BTCH" · pair count (0: no batch)
///     1024: the batch's new slot images, 64 bytes each, as slots hold them
///
/// The images are durable before the commit word, and the commit word
/// before the first slot changes; it is cleared once the slots are durable.
/// Opening the store redoes a batch whose commit word is set.
extension KeyValueStore {
    /// The most pairs one ``putAtomically(_:)`` takes.
    public static let maximumBatchSize = 48
    /// The commit word: the last 8-byte word of the first sector.
    static let commitWordOffset = 504
    /// The batch's slot images: from the third sector to the end of block 0.
    static let redoOffset = 1024
    /// The commit word's high half; the low half is the pair count.
    static let batchTag: UInt64 = 0x4843_5442 << 32

    /// Where this store keeps its commit word.
    var commitWord: Int {
        flaw == .batchCommitWordUnaligned ? Self.commitWordOffset + 4 : Self.commitWordOffset  // Flaw: off its word.
    }

    /// Stores every pair of `batch`, durably and atomically: after a crash,
    /// the store holds the whole batch or none of it, even where a slot was
    /// torn. Values are at most ``maximumValueSize`` bytes. Returns once the
    /// batch is durable; it commits every `put(_:_:)` before it too.
    ///
    /// Costs four syncs: the redo record, its commit word, the slots, and
    /// clearing the commit word.
    public func putAtomically(_ batch: [(key: UInt64, value: [UInt8])]) throws(Error) {
        guard batch.count <= Self.maximumBatchSize else { throw .batchTooLarge(batch.count) }
        var newKeys = Set<UInt64>()
        for (key, value) in batch {
            guard key != 0 else { throw .invalidKey }
            guard value.count <= Self.maximumValueSize else { throw .valueTooLarge(value.count) }
            if !probe(key).found { newKeys.insert(key) }
        }
        guard count + newKeys.count <= capacity else { throw .full(capacity: capacity) }
        guard !batch.isEmpty else { return }
        let logged = flaw != .batchAppliedInPlace  // Flaw: no redo record; the slots change in place only.
        if logged {
            for (i, pair) in batch.enumerated() { writeImage(pair.key, pair.value, at: Self.redoOffset + i * Self.slotSize) }
            // Durable before the commit word that commits them.
            if flaw != .batchCommitWordSyncedWithEntries {  // Flaw: left to the commit word's sync.
                try sync(offset: Self.redoOffset, length: batch.count * Self.slotSize)
            }
            // From here on, opening the store redoes the batch.
            try setCommitWord(Self.batchTag | UInt64(batch.count))
        }
        for (i, pair) in batch.enumerated() {
            if i > 0 { mapping.crashPoint("between two slots of a batch") }
            try put(pair.key, pair.value)
        }
        try commit()
        if logged { try setCommitWord(0) }
    }

    /// Redoes the batch whose commit word is set, if there is one: puts its
    /// pairs again, commits them, and clears the word.
    func redoCommittedBatch() throws(Error) -> Bool {
        let word = mapping.bytes.loadUnaligned(fromByteOffset: commitWord, as: UInt64.self)
        guard word != 0 else { return false }
        // A commit word is 0 or a tagged count: an aligned word cannot tear,
        // so anything else is damage, and so is an image that fails its
        // checksum behind a commit word.
        let pairs = Int(word & 0xFFFF_FFFF)
        guard word & ~0xFFFF_FFFF == Self.batchTag, (1...Self.maximumBatchSize).contains(pairs) else {
            throw .corruptBatch
        }
        for i in 0..<pairs {
            let image = Self.redoOffset + i * Self.slotSize
            let key = mapping.bytes.load(fromByteOffset: image, as: UInt64.self)
            guard key != 0, Self.slotIsIntact(mapping.bytes, at: image, values: 0..<0) else { throw .corruptBatch }
            let length = Int(mapping.bytes.load(fromByteOffset: image + 8, as: UInt32.self))
            try put(key, UnsafeRawBufferPointer(rebasing: mapping.bytes[(image + 16)..<(image + 16 + length)]))
        }
        try commit()
        try setCommitWord(0)
        return true
    }

    /// A slot's image of `key` and `value` at `offset`: what `put(_:_:)` stores.
    private func writeImage(_ key: UInt64, _ value: [UInt8], at offset: Int) {
        var padded = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &padded) { padded in value.withUnsafeBytes { padded.copyMemory(from: $0) } }
        let length = UInt32(value.count)
        let bytes = mapping.bytes
        bytes.storeBytes(of: key, toByteOffset: offset, as: UInt64.self)
        bytes.storeBytes(of: length, toByteOffset: offset + 8, as: UInt32.self)
        bytes.storeBytes(of: Self.checksum(key: key, length: length, value: padded), toByteOffset: offset + 12, as: UInt32.self)
        withUnsafeBytes(of: padded) { bytes.baseAddress!.advanced(by: offset + 16).copyMemory(from: $0.baseAddress!, byteCount: 48) }
    }

    private func setCommitWord(_ word: UInt64) throws(Error) {
        mapping.bytes.storeBytes(of: word, toByteOffset: commitWord, as: UInt64.self)
        try sync(offset: commitWord, length: 8)
    }

    /// A ranged sync; the crash lab's reports name the caller's line.
    private func sync(offset: Int, length: Int, file: StaticString = #fileID, line: UInt = #line) throws(Error) {
        do { try mapping.sync(offset: offset, length: length, file: file, line: line) } catch { throw .storage(error) }
    }
}
