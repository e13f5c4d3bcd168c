import ExampleWorkloads
import Foundation
import PmemTrack
import Synchronization
import Testing

@Suite("Example: key-value store batches and large values")
struct KeyValueStoreBatchTests {
    static func value(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("a batch is all or nothing: a copy taken after each of its syncs reopens with none of it or all of it")
    func batchIsAtomic() throws {
        let length = 1 << 20
        let scratch = try ScratchMapping(length: length)
        let store = try KeyValueStore(mapping: scratch.map)
        try store.putAtomically([(1, Self.value("old 1")), (2, Self.value("old 2"))])
        // What a process crash right after each sync would leave: every store so far.
        let snapshots = Mutex<[[UInt8]]>([])
        let base = UInt(bitPattern: scratch.map.bytes.baseAddress)
        scratch.map.setSyncHandler { _ in
            let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: base), count: length)
            snapshots.withLock { $0.append(Array(bytes)) }
        }
        let batch: [(key: UInt64, value: [UInt8])] = [(1, Self.value("new 1")), (2, Self.value("new 2")), (3, Self.value("new 3"))]
        try store.putAtomically(batch)
        scratch.map.setSyncHandler(nil)
        #expect([1, 2, 3].map { store.get($0) } == batch.map(\.value))

        // The redo record, its commit word, the slots, the cleared word.
        let taken = snapshots.withLock { $0 }
        #expect(taken.count == 4)
        for (i, snapshot) in taken.enumerated() {
            let copy = try ScratchMapping(length: length)
            snapshot.withUnsafeBytes { copy.map.bytes.copyMemory(from: $0) }
            let reopened = try KeyValueStore(mapping: copy.map)
            let expected = i == 0 ? [Self.value("old 1"), Self.value("old 2"), nil] : batch.map(\.value)
            #expect([1, 2, 3].map { reopened.get($0) } == expected, "after sync \(i)")
            #expect(reopened.count == (i == 0 ? 2 : 3))
        }
    }

    @Test("a cut-short batch is redone once: the next open finds nothing to redo and the values stay")
    func redoneOnce() throws {
        let length = 1 << 20
        let scratch = try ScratchMapping(length: length)
        let store = try KeyValueStore(mapping: scratch.map)
        let snapshot = Mutex<[UInt8]?>(nil)
        let base = UInt(bitPattern: scratch.map.bytes.baseAddress)
        // The second sync makes the commit word durable: keep what follows it.
        let syncs = Mutex(0)
        scratch.map.setSyncHandler { _ in
            guard syncs.withLock({ $0 += 1; return $0 }) == 2 else { return }
            snapshot.withLock { $0 = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: base), count: length)) }
        }
        try store.putAtomically([(5, Self.value("five")), (6, Self.value("six"))])
        scratch.map.setSyncHandler(nil)

        let copy = try ScratchMapping(length: length)
        try #require(snapshot.withLock { $0 }).withUnsafeBytes { copy.map.bytes.copyMemory(from: $0) }
        let redone = try KeyValueStore(mapping: copy.map)
        #expect(redone.get(5) == Self.value("five") && redone.get(6) == Self.value("six"))
        // A later plain put is not undone by a second redo.
        try redone.put(5, Self.value("five again"))
        try redone.commit()
        let again = try KeyValueStore(mapping: try copy.reopen())
        #expect(again.get(5) == Self.value("five again") && again.get(6) == Self.value("six"))
    }

    @Test("bad batches give typed errors and change nothing")
    func badBatches() throws {
        let scratch = try ScratchMapping(length: 8192 + 4096)
        let store = try KeyValueStore(mapping: scratch.map)
        try store.put(1, [1])
        let tooMany = (1...UInt64(KeyValueStore.maximumBatchSize + 1)).map { ($0, [UInt8(1)]) }
        #expect(throws: KeyValueStore.Error.batchTooLarge(49)) { try store.putAtomically(tooMany) }
        #expect(throws: KeyValueStore.Error.invalidKey) { try store.putAtomically([(2, [2]), (0, [0])]) }
        #expect(throws: KeyValueStore.Error.valueTooLarge(49)) { try store.putAtomically([(2, [UInt8](repeating: 0, count: 49))]) }
        #expect(store.count == 1 && store.get(1) == [1] && store.get(2) == nil)
        // One slot left: a batch with two new keys does not fit, one replacing key 1 and one new does.
        for key in 3...UInt64(store.capacity) { try store.put(key, [3]) }
        #expect(throws: KeyValueStore.Error.full(capacity: store.capacity)) { try store.putAtomically([(2, [2]), (1000, [2])]) }
        #expect(store.get(2) == nil && store.get(1000) == nil)
        try store.putAtomically([(1, [9]), (2, [2])])
        #expect(store.get(1) == [9] && store.get(2) == [2] && store.count == store.capacity)
    }

    @Test("large values live in the value area: they survive a reopen, overwrites take new space, a full area is a typed error")
    func largeValues() throws {
        let scratch = try ScratchMapping(length: 1 << 20)
        let store = try KeyValueStore(mapping: scratch.map, valueArea: 8192)
        #expect(store.valueArea == ((1 << 20) - 8192)..<(1 << 20))
        let big = (0..<3000).map { UInt8($0 % 251) }
        try store.put(7, big)
        try store.put(8, [1, 2, 3])
        try store.commit()
        #expect(store.get(7) == big && store.get(8) == [1, 2, 3])
        #expect(throws: KeyValueStore.Error.valueAreaFull(needed: 6000)) { try store.put(9, [UInt8](repeating: 1, count: 6000)) }

        let reopened = try KeyValueStore(mapping: try scratch.reopen(), valueArea: 8192)
        #expect(reopened.get(7) == big && reopened.get(8) == [1, 2, 3] && reopened.damagedSlots == 0)
        // The reopened store allocates after the value it found, not over it.
        try reopened.put(10, Array(big.reversed()))
        #expect(reopened.get(7) == big && reopened.get(10) == Array(big.reversed()))
        #expect(throws: KeyValueStore.Error.valueAreaFull(needed: 3000)) { try reopened.put(7, big) }
        #expect(reopened.get(7) == big)
    }
}
