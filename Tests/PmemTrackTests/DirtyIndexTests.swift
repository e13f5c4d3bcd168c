import CPmemTrack
import PropertyBased
import Testing
@testable import PmemTrack

/// The dirty index against a reference model: a set of tagged blocks per tag.
@Suite("Dirty index")
struct DirtyIndexTests {
    /// One operation on the index: kind, tag, first block, block count.
    struct Operation: CustomStringConvertible {
        var kind: Int        // 0 set, 1 clear, 2 copy tag → other tag, 3 set one, 4 clear one
        var tag: DirtyIndex.Tag
        var first: UInt64
        var count: UInt64

        var description: String { "op\(kind)(\(tag), \(first), +\(count))" }
    }

    /// Operations cluster around the places where bugs live: the ends of the
    /// index and the boundaries of 64-bit words at every level.
    static func operation(blockCount: UInt64, _ kind: Int, _ dirty: Bool, _ anchor: Int, _ noise: UInt64, _ length: Int) -> Operation {
        let anchors: [UInt64] = [0, 64, 4096, 262_144, blockCount / 2, blockCount / 3, blockCount, noise]
        let center = anchors[anchor] % blockCount
        let jitter = noise % 130
        let first = min(blockCount - 1, center >= 65 ? center - 65 + jitter : jitter % blockCount)
        let count = min(UInt64(length), blockCount - first)
        return Operation(kind: kind, tag: dirty ? .dirty : .toWrite, first: first, count: count)
    }


    struct Model {
        var tagged: [DirtyIndex.Tag: Set<UInt64>] = [.dirty: [], .toWrite: []]

        mutating func apply(_ op: Operation) {
            let blocks = op.first..<(op.first + op.count)
            let other: DirtyIndex.Tag = op.tag == .dirty ? .toWrite : .dirty
            switch op.kind {
            case 0: tagged[op.tag]!.formUnion(blocks)
            case 1: tagged[op.tag]!.subtract(blocks)
            case 2: tagged[other]!.formUnion(tagged[op.tag]!.filter { blocks.contains($0) })
            case 3: tagged[op.tag]!.insert(op.first)
            default: tagged[op.tag]!.remove(op.first)
            }
        }

        func runs(_ tag: DirtyIndex.Tag) -> [Range<UInt64>] {
            var result: [Range<UInt64>] = []
            for block in tagged[tag]!.sorted() {
                if let last = result.last, last.upperBound == block {
                    result[result.count - 1] = last.lowerBound..<(block + 1)
                } else {
                    result.append(block..<(block + 1))
                }
            }
            return result
        }
    }

    static func apply(_ op: Operation, to index: DirtyIndex, expectingNewlyTagged newly: UInt64? = nil) {
        let blocks = op.first..<(op.first + op.count)
        let other: DirtyIndex.Tag = op.tag == .dirty ? .toWrite : .dirty
        switch op.kind {
        case 0:
            let tagged = index.setCounting(op.tag, blocks)
            if let newly { #expect(tagged == newly, "newly tagged by set \(blocks)") }
        case 1: index.clear(op.tag, blocks)
        case 2: index.copy(op.tag, to: other, in: blocks)
        case 3: index.set(op.tag, op.first..<(op.first + 1))
        default: index.clear(op.tag, op.first..<(op.first + 1))
        }
    }

    static func check(_ index: DirtyIndex, against model: Model, probes: [UInt64]) {
        let all = 0..<index.blockCount
        for tag in [DirtyIndex.Tag.dirty, .toWrite] {
            #expect(index.runs(tag, in: all) == model.runs(tag), "runs of \(tag)")
            #expect(index.count(tag, in: all) == UInt64(model.tagged[tag]!.count), "count of \(tag)")
        }
        let both = model.tagged[.dirty]!.intersection(model.tagged[.toWrite]!)
        for probe in probes where probe < index.blockCount {
            for tag in [DirtyIndex.Tag.dirty, .toWrite] {
                #expect(index.test(tag, probe) == model.tagged[tag]!.contains(probe))
            }
            // The first run carrying both tags, from the probe on.
            let expectedStart = both.filter { $0 >= probe }.min()
            let run = index.firstRun(with: [.dirty, .toWrite], in: probe..<index.blockCount)
            #expect(run?.lowerBound == expectedStart)
            // The last block carrying both tags below the probe, and the last
            // DIRTY block in the 64-block-aligned group below it (the fault
            // path's coarsening search).
            #expect(index.lastBlock(with: [.dirty, .toWrite], in: 0..<probe) == both.filter { $0 < probe }.max())
            let group = probe / 64 * 64
            #expect(index.lastBlock(with: .dirty, in: group..<probe) == model.tagged[.dirty]!.filter { $0 >= group && $0 < probe }.max())
            if let run, let expectedStart {
                var end = expectedStart
                while both.contains(end) { end += 1 }
                #expect(run.upperBound == end)
            }
        }
        // The full summary check is O(N/64); skip it for the largest indexes.
        if index.blockCount <= 1 << 24 {
            #expect(index.summariesAreConsistent)
        }
    }

    static let sizes: [UInt64] = [1, 63, 64, 65, 4095, 4096, 4097, 262_145, 1 << 24, 1 << 36, 1 << 42]

    @Test("matches the reference model under random operations", arguments: sizes)
    func matchesModel(blockCount: UInt64) async throws {
        let operations = zip(Gen.int(in: 0...4), Gen.bool(), Gen.int(in: 0...7), Gen.uint64(in: 0...UInt64.max), Gen.int(in: 0...300))
            .map { Self.operation(blockCount: blockCount, $0, $1, $2, $3, $4) }
            .array(of: 1...40)
        await propertyCheck(count: blockCount > 1 << 30 ? 40 : 100, input: operations) { ops in
            guard let index = try? DirtyIndex(blockCount: blockCount) else {
                Issue.record("could not create an index of \(blockCount) blocks")
                return
            }
            var model = Model()
            for op in ops {
                // A range set also says how many blocks it newly tagged.
                let newlyTagged = op.kind == 0
                    ? UInt64((op.first..<(op.first + op.count)).count { !model.tagged[op.tag]!.contains($0) }) : nil
                Self.apply(op, to: index, expectingNewlyTagged: newlyTagged)
                model.apply(op)
            }
            let probes: [UInt64] = ops.flatMap { [$0.first, $0.first + $0.count, $0.first &- 1] } + [0, blockCount - 1]
            Self.check(index, against: model, probes: probes)
        }
    }

    @Test("rejects zero blocks and more than the maximum")
    func rejectsBadSizes() {
        #expect(throws: PmemTrackError.self) { try DirtyIndex(blockCount: 0) }
        #expect(throws: PmemTrackError.self) { try DirtyIndex(blockCount: (1 << 42) + 1) }
    }

    @Test("uses at most 1.1 bits per block per tag, plus lock bits and a constant", arguments: [UInt64(1) << 18, 1 << 24, 1 << 30, 1 << 42])
    func memoryBound(blockCount: UInt64) throws {
        let index = try DirtyIndex(blockCount: blockCount)
        let lockBits = Double(blockCount)
        let constant = 3.0 * Double(TrackedMapping.pageSize) * 8   // header page, two page-rounding pads
        let tagBits = Double(index.reservedBytes * 8) - lockBits - constant
        #expect(tagBits / Double(blockCount) / Double(PMT_TAG_COUNT) <= 1.1)
    }

    @Test("commits memory only where blocks are tagged")
    func lazyCommit() throws {
        // 64 GiB and 1 GiB of 4 KiB blocks, the same 1000 scattered blocks
        // tagged in each: the large index costs about what the small one does.
        func residentAfterTagging(_ blockCount: UInt64) throws -> Int {
            let index = try DirtyIndex(blockCount: blockCount)
            for i in 0..<UInt64(1000) {
                let block = i * 262  // spread over the first 1 GiB
                index.set(.dirty, block..<(block + 1))
                index.copy(.dirty, to: .toWrite, in: block..<(block + 1))
                index.lock(block..<(block + 1))
                index.unlock(block..<(block + 1))
            }
            #expect(index.count(.dirty, in: 0..<blockCount) == 1000)
            return index.residentBytes
        }
        let small = try residentAfterTagging(1 << 18)
        let large = try residentAfterTagging(1 << 24)
        #expect(small > 0)
        #expect(large <= small + 4 * TrackedMapping.pageSize, "64 GiB index: \(large) bytes, 1 GiB: \(small)")
    }

    @Test("locks are exclusive and taken in ranges")
    func locks() throws {
        let index = try DirtyIndex(blockCount: 200)
        index.lock(10..<100)
        #expect((10..<100).allSatisfy { index.isLocked($0) })
        #expect(!index.isLocked(9) && !index.isLocked(100))
        index.unlock(10..<50)
        #expect(!index.isLocked(10) && index.isLocked(50))
        index.unlock(50..<100)
        #expect((0..<200).allSatisfy { !index.isLocked($0) })
    }
}
