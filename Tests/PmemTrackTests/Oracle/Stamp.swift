/// A store's identity: which writer made it and its sequence number in that
/// writer's stream. Every 8-byte word of the mapping belongs to one writer
/// (word index modulo the number of writers), so a word's stamps only grow.
struct Stamp: Hashable, CustomStringConvertible {
    var writer: Int
    var sequence: UInt64

    init(writer: Int, sequence: UInt64) {
        self.writer = writer
        self.sequence = sequence
    }

    init?(raw: UInt64) {
        guard raw != 0 else { return nil }
        writer = Int(raw >> 48) - 1
        sequence = raw & 0xFFFF_FFFF_FFFF
    }

    var raw: UInt64 { UInt64(writer + 1) << 48 | sequence }

    var description: String { "w\(writer)#\(sequence)" }
}

/// A store the oracle found missing from the media image after a sync.
struct LostStore: CustomStringConvertible, Error {
    var block: Int
    var offset: Int
    var expected: Stamp
    var found: Stamp?
    var sync: String

    var description: String {
        "after \(sync): block \(block), offset \(offset): expected \(expected) or newer, found \(found.map(String.init(describing:)) ?? "nothing")"
    }
}
