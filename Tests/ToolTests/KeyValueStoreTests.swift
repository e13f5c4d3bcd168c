import ExampleWorkloads
import Foundation
import PmemTrack
import Testing

@Suite("Example: key-value store and random writer")
struct KeyValueStoreTests {
    @Test("committed values survive a reopen; updates replace")
    func putGetReopen() throws {
        let scratch = try ScratchMapping(length: 4 << 20)
        let store = try KeyValueStore(mapping: scratch.map)
        var expected: [UInt64: [UInt8]] = [:]
        var random = SystemRandomNumberGenerator()
        for update in 0..<5000 {
            let key = UInt64.random(in: 1...2000, using: &random)
            let value = Array("v\(update)".utf8)
            try store.put(key, value)
            expected[key] = value
            if update % 100 == 99 { try store.commit() }
        }
        try store.commit()
        #expect(store.count == expected.count)

        let reopened = try KeyValueStore(mapping: try scratch.reopen())
        #expect(reopened.count == expected.count && reopened.damagedSlots == 0)
        for (key, value) in expected { #expect(reopened.get(key) == value) }
        #expect(reopened.get(999_999) == nil)
    }

    @Test("a torn slot is detected, not returned")
    func tornSlot() throws {
        let scratch = try ScratchMapping(length: 1 << 20)
        let store = try KeyValueStore(mapping: scratch.map)
        try store.put(5, Array("hello".utf8))
        try store.commit()
        // Find the slot by its key and flip a value byte.
        let slots = stride(from: 4096, to: scratch.map.bytes.count, by: 64)
        let slot = try #require(slots.first { scratch.map.bytes.load(fromByteOffset: $0, as: UInt64.self) == 5 })
        scratch.map.bytes[slot + 17] ^= 0x20
        #expect(store.get(5) == nil)
        try scratch.map.sync()
        let reopened = try KeyValueStore(mapping: try scratch.reopen())
        #expect(reopened.damagedSlots == 1 && reopened.get(5) == nil)
    }

    @Test("bad keys, values and a full table give typed errors")
    func badInput() throws {
        let scratch = try ScratchMapping(length: 8192 + 4096)
        let store = try KeyValueStore(mapping: scratch.map)
        #expect(throws: KeyValueStore.Error.invalidKey) { try store.put(0, [1]) }
        #expect(throws: KeyValueStore.Error.valueTooLarge(49)) { try store.put(1, [UInt8](repeating: 0, count: 49)) }
        for key in 1...UInt64(store.capacity) { try store.put(key, [UInt8(key & 0xFF)]) }
        #expect(throws: KeyValueStore.Error.full(capacity: store.capacity)) { try store.put(UInt64(store.capacity) + 1, [0]) }
        try store.put(1, [42])  // replacing still works when full
        #expect(store.get(1) == [42])
    }

    @Test("random writer: every slot verifies as its last write after sync and reopen")
    func randomWriter() throws {
        let scratch = try ScratchMapping(length: 4 << 20)
        var writer = RandomWriter(mapping: scratch.map)
        var random = SystemRandomNumberGenerator()
        var last: [Int: UInt64] = [:]
        for n in 1...3000 {
            let slot = writer.writeRandomBlock(using: &random)
            last[slot] = writer.writes
            if n % 32 == 0 { try scratch.map.sync() }
        }
        try scratch.map.sync()
        let copy = RandomWriter(mapping: try scratch.reopen())
        for slot in 0..<copy.slots { #expect(copy.verify(slot: slot) == last[slot]) }
    }
}
