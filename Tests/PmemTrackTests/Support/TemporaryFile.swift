import Foundation

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
