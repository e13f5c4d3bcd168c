import Foundation

/// What a bad input must leave as it was, below a path: for each file,
/// directory, link or device, its type and mode; for files, directories and
/// links also the size and modification time (nanoseconds); for files the
/// bytes; for directories their entries, recursively. A device's times are
/// not its own to keep (anyone may write /dev/null).
struct DiskState: Equatable, CustomStringConvertible {
    private var entries: [String: String] = [:]
    private var contents: [String: Data] = [:]

    /// - Parameter rootModificationTime: Whether the modification time of
    ///   `path` itself counts (a directory's changes when an entry is made
    ///   and removed again).
    init(_ path: String, rootModificationTime: Bool = true) {
        capture(path, as: ".", times: rootModificationTime)
    }

    private mutating func capture(_ path: String, as name: String, times: Bool = true) {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            entries[name] = "absent"
            return
        }
        let type = status.st_mode & S_IFMT
        var entry = "mode \(String(status.st_mode, radix: 8))"
        if type == S_IFREG || type == S_IFDIR || type == S_IFLNK {
            entry += " size \(status.st_size)"
            if times {
                let nanoseconds = String(status.st_mtim.tv_nsec)
                entry += " modified \(status.st_mtim.tv_sec).\(String(repeating: "0", count: 9 - nanoseconds.count) + nanoseconds)"
            }
        }
        entries[name] = entry
        if type == S_IFREG {
            contents[name] = FileManager.default.contents(atPath: path)
        } else if type == S_IFDIR {
            for child in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                capture(path + "/" + child, as: name + "/" + child)
            }
        }
    }

    var description: String {
        entries.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" + (contents[$0.key].map { ", \($0.count) bytes" } ?? "") }
            .joined(separator: "; ")
    }
}
