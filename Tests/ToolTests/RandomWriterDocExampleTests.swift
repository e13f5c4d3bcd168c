import ExampleWorkloads
import Foundation
import PmemTrack
import Testing

/// The code example in `RandomWriter`'s doc comment, run verbatim.
@Suite("Example: RandomWriter's doc comment")
struct RandomWriterDocExampleTests {
    @Test("the example runs: every write is made, synced, and readable again after a reopen", .tags(.stress))
    func exampleRuns() throws {
        let path = NSTemporaryDirectory() + "pmemtrack-tooltests-\(UUID().uuidString)"
        defer { unlink(path) }

        // BEGIN EXAMPLE (the doc comment of Examples/Workloads/RandomWriter.swift)
        let map = try TrackedMapping(path: path, length: 1 << 30, options: [.create])
        var writer = RandomWriter(mapping: map)
        var rng = SystemRandomNumberGenerator()
        for n in 1...10_000 {
            writer.writeRandomBlock(using: &rng)
            if n % 32 == 0 { try map.sync() }
        }
        try map.sync()
        // END EXAMPLE

        #expect(writer.writes == 10_000)
        #expect(map.dirtyRanges().isEmpty, "the final sync left blocks dirty")
        #expect(map.statistics.syncs == 10_000 / 32 + 1)

        // Each slot holds the complete pattern of its last write, or none.
        // The slot of the last write cannot have been overwritten, and no
        // write number can be in two slots.
        func intactWrites(_ writer: RandomWriter) -> [Int: UInt64] {
            var found: [Int: UInt64] = [:]
            for slot in 0..<writer.slots {
                if let write = writer.verify(slot: slot) { found[slot] = write }
            }
            return found
        }
        let intact = intactWrites(writer)
        #expect(intact.values.max() == 10_000)
        #expect(intact.values.allSatisfy { (1...10_000).contains($0) })
        #expect(Set(intact.values).count == intact.count)

        // What was synced is what a new mapping of the file reads.
        try map.close()
        let reopened = try TrackedMapping(path: path)
        defer { try? reopened.close() }
        #expect(intactWrites(RandomWriter(mapping: reopened)) == intact)
    }

    @Test("the doc comment's example is the code exampleRuns runs")
    func exampleMatchesDocComment() throws {
        let tests = URL(fileURLWithPath: #filePath)
        let root = tests.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let source = try String(contentsOf: root.appendingPathComponent("Examples/Workloads/RandomWriter.swift"), encoding: .utf8)
        let doc = source.split(separator: "\n", omittingEmptySubsequences: false)
            .drop { $0 != "/// ```swift" }.dropFirst()
            .prefix { $0 != "/// ```" }
            .map { $0.hasPrefix("/// ") ? String($0.dropFirst(4)) : String($0.dropFirst(3)) }
        let test = try String(contentsOf: tests, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
            .drop { !$0.contains("// BEGIN EXAMPLE") }.dropFirst()
            .prefix { !$0.contains("// END EXAMPLE") }
            .map { String($0.dropFirst(8)) }   // the test's indentation
        #expect(!doc.isEmpty)
        #expect(doc == test)
    }
}
