import Foundation

/// The whole text of a file in /proc. Foundation's `String(contentsOfFile:)`
/// and `Data(contentsOf:)` trust the size that stat reports, 0 for these
/// files, and return only what one read gives: about 4 KiB of a maps file
/// that is often longer. FileHandle reads to the end.
func procFileText(_ path: String) -> String? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
}

/// What /proc/self/maps says about this process.
enum ProcessMaps {
    struct Entry {
        var range: Range<UInt>
        var permissions: Substring
        /// The mapped file's path, or a pseudo-name such as `[stack]`, or empty.
        var name: Substring
    }

    static func entries() -> [Entry] {
        guard let text = procFileText("/proc/self/maps") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            // address perms offset dev inode [name]; the name may hold spaces.
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 2 else { return nil }
            let bounds = fields[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
            guard bounds.count == 2 else { return nil }
            let name = fields.count == 6 ? fields[5].drop { $0 == " " } : ""
            return Entry(range: bounds[0]..<bounds[1], permissions: fields[1], name: name)
        }
    }

    /// How many VMAs lie in (or overlap) any of `buffers`: a count that other
    /// threads' stacks and allocator arenas cannot change.
    static func vmaCount(within buffers: [UnsafeMutableRawBufferPointer]) -> Int {
        let ranges = buffers.map { UInt(bitPattern: $0.baseAddress) ..< UInt(bitPattern: $0.baseAddress) + UInt($0.count) }
        return entries().count { entry in ranges.contains { $0.overlaps(entry.range) } }
    }

    /// The kernel's flags (`VmFlags` in /proc/self/smaps, such as `rr` for
    /// MADV_RANDOM) of the VMA holding `address`; nil if none holds it.
    static func vmFlags(at address: UnsafeRawPointer) -> Set<Substring>? {
        guard let text = procFileText("/proc/self/smaps") else { return nil }
        let target = UInt(bitPattern: address)
        var inside = false
        for line in text.split(separator: "\n") {
            // A VMA's header starts with its range; its fields with "Name:".
            let bounds = line.prefix { !$0.isWhitespace }.split(separator: "-").compactMap { UInt($0, radix: 16) }
            if bounds.count == 2 {
                inside = (bounds[0]..<bounds[1]).contains(target)
            } else if inside, line.hasPrefix("VmFlags:") {
                return Set(line.dropFirst("VmFlags:".count).split(separator: " "))
            }
        }
        return nil
    }

    /// How many VMAs map the file at `path`.
    static func vmaCount(mapping path: String) -> Int {
        entries().count { $0.name == path }
    }

    /// Whether the page holding `buffer[offset]` is writable.
    ///
    /// Asks the kernel to write the byte's current value back into it with
    /// process_vm_writev, which honours page protection (unlike ptrace, it
    /// does not force): it fails with EFAULT on a read-only page and changes
    /// nothing on a writable one. Call it while no thread stores to that byte.
    /// (It replaced a parse of /proc/self/maps that was unreliable here; that
    /// parse read the file with `String(contentsOfFile:)`, which stops after
    /// about 4 KiB, see `procFileText`. This asks about the one page only.)
    static func isWritable(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
        var value = buffer[offset]
        return withUnsafeMutablePointer(to: &value) { local in
            var source = iovec(iov_base: local, iov_len: 1)
            var target = iovec(iov_base: buffer.baseAddress! + offset, iov_len: 1)
            return processVMWritev(getpid(), &source, 1, &target, 1, 0) == 1
        }
    }

    /// glibc's process_vm_writev, which the Swift Glibc module leaves out.
    private static let processVMWritev: @convention(c) (
        pid_t, UnsafePointer<iovec>, UInt, UnsafePointer<iovec>, UInt, UInt
    ) -> Int = unsafeBitCast(dlsym(nil, "process_vm_writev")!, to: (@convention(c) (
        pid_t, UnsafePointer<iovec>, UInt, UnsafePointer<iovec>, UInt, UInt
    ) -> Int).self)
}

enum ProcessFiles {
    /// How many open descriptors refer to the file at `path`.
    static func descriptorCount(for path: String) -> Int {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.count {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == path
        }
    }

    /// Descriptors of the userfaultfd backend: userfaultfds and pagemaps.
    static func userfaultfdDescriptorCount() -> Int {
        descriptorCount(for: "anon_inode:[userfaultfd]") + descriptorCount(for: "/proc/\(getpid())/pagemap")
    }
}
