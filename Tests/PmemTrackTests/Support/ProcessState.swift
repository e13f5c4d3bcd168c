import Foundation
import Testing

/// A unique path in the temporary directory (or another directory), removed
/// when the test is done with it.
final class TemporaryFile {
    let path: String

    init(in directory: String = NSTemporaryDirectory(), _ name: String = #function) {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = (directory as NSString).appendingPathComponent("pmemtrack-\(safe)-\(UUID().uuidString)")
    }

    deinit { unlink(path) }
}

/// What /proc/self/maps says about this process.
enum ProcessMaps {
    struct Entry {
        var range: Range<UInt>
        var permissions: Substring
    }

    static func entries() -> [Entry] {
        guard let text = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count >= 2 else { return nil }
            let bounds = fields[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
            guard bounds.count == 2 else { return nil }
            return Entry(range: bounds[0]..<bounds[1], permissions: fields[1])
        }
    }

    static var vmaCount: Int { entries().count }

    /// Whether the page holding `buffer[offset]` is writable.
    ///
    /// The kernel generates /proc/self/maps a chunk at a time; when other
    /// threads split or merge VMAs between chunks, a line can be missing
    /// from one read. Lines that are present are always whole, so read
    /// again until the address is covered.
    static func isWritable(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
        let address = UInt(bitPattern: buffer.baseAddress!) + UInt(offset)
        for _ in 0..<1000 {
            if let entry = entries().first(where: { $0.range.contains(address) }) {
                return entry.permissions.dropFirst().first == "w"
            }
        }
        Issue.record("no /proc/self/maps line covers \(address)")
        return false
    }
}

enum ProcessFiles {
    static var openDescriptorCount: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }
}
