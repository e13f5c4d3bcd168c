import Foundation

/// A path for a data file: the one the user named, kept afterwards, or a
/// new one in the temporary directory, removed when the run ends.
struct ScratchFile {
    let path: String
    let isTemporary: Bool

    init(named path: String?, prefix: String, in directory: String = NSTemporaryDirectory()) {
        if let path {
            self.path = path
            isTemporary = false
        } else {
            self.path = (directory as NSString).appendingPathComponent("\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            isTemporary = true
        }
    }

    var exists: Bool { FileManager.default.fileExists(atPath: path) }

    func removeIfTemporary() {
        if isTemporary { unlink(path) }
    }
}
