import CLibpmem
import CPmemTrack
import Foundation
import PmemTrack

/// Everything `pmemtrack doctor` reports, gathered at run time.
struct SystemReport {
    var rows: [(String, String)] = []

    init(path: String) throws {
        let mapped = try Self.probeMapping(at: path)
        rows.append(("path", "\(path) (\(mapped.how))"))
        rows.append(("file system", Self.fileSystemName(path)))
        let force = ProcessInfo.processInfo.environment["PMEM_IS_PMEM_FORCE"]
        rows.append(("persistent memory", mapped.isPmem
            ? "yes: libpmem's is_pmem is 1; PmemTrack flushes with cache-line flushes"
            : "no: libpmem's is_pmem is 0; PmemTrack flushes with msync"))
        rows.append(("  PMEM_IS_PMEM_FORCE", force.map { "\($0) (libpmem's emulation switch overrides detection)" } ?? "unset"))
        rows.append(("page size", "\(sysconf(Int32(_SC_PAGESIZE))) bytes"))
        rows.append(("cache flush", Self.cacheFlush()))
        let maxMapCount = (try? String(contentsOfFile: "/proc/sys/vm/max_map_count", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        rows.append(("vm.max_map_count", maxMapCount.map { "\($0) (PmemTrack budgets itself a quarter: \($0 / 4) VMAs, \($0 / 8) writable islands)" } ?? "unreadable"))
        // Read to the end: String(contentsOfFile:) returns only the first
        // read of a /proc file (about 4 KiB), because stat says its size is 0.
        let maps = FileHandle(forReadingAtPath: "/proc/self/maps")
        let vmas = maps.map { handle in
            defer { try? handle.close() }
            return handle.readDataToEndOfFile().count { $0 == UInt8(ascii: "\n") }
        }
        rows.append(("VMAs in this process", vmas.map { "\($0)" } ?? "unreadable"))
        rows.append(("userfaultfd", Self.userfaultfd()))
        let scan = pmt_probe_pagemap_scan()
        rows.append(("PAGEMAP_SCAN", scan == 0 ? "available" : "unavailable (\(String(cString: strerror(scan))))"))
        let choice = TrackedMapping.TrackingMode.automaticChoice(forPath: path)
        rows.append(("tracking (automatic)", "\(TrackingOption.name(of: choice.mode)): \(choice.reason)"))
    }

    /// Maps `path` with libpmem to ask it whether this is persistent memory:
    /// a directory gets a 2 MiB temporary file, a file is mapped as it is.
    static func probeMapping(at path: String) throws -> (isPmem: Bool, how: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ToolError("\(path): no such file or directory")
        }
        var length = 0
        var isPmem: Int32 = 0
        let how: String
        let base: UnsafeMutableRawPointer?
        if isDirectory.boolValue {
            base = pmem_map_file(path, 2 << 20, PMEM_FILE_CREATE | PMEM_FILE_TMPFILE, 0o600, &length, &isPmem)
            how = "directory, probed with a temporary file"
        } else {
            base = pmem_map_file(path, 0, 0, 0, &length, &isPmem)
            how = "file of \(ByteCount.format(length))"
        }
        guard let base else {
            throw ToolError("\(path): pmem_map_file failed: \(String(cString: strerror(errno)))")
        }
        pmem_unmap(base, length)
        return (isPmem != 0, how)
    }

    /// The file system type from statfs(2)'s magic number.
    static func fileSystemName(_ path: String) -> String {
        let magic = Int(pmt_probe_fs_magic(path))
        guard magic >= 0 else { return "unknown (\(String(cString: strerror(Int32(-magic)))))" }
        // Magic numbers from linux/magic.h.
        let names: [Int: String] = [
            0xEF53: "ext2/3/4", 0x5846_5342: "xfs", 0x0102_1994: "tmpfs", 0x9123_683E: "btrfs",
            0x794C_7630: "overlayfs", 0x6969: "nfs", 0x2FC1_2FC1: "zfs", 0x6573_5546: "fuse",
        ]
        return names[magic].map { "\($0) (magic 0x\(String(magic, radix: 16)))" } ?? "magic 0x\(String(magic, radix: 16))"
    }

    /// The flush instruction libpmem picks. Its x86-64 initialisation (PMDK
    /// src/libpmem2/x86_64/init.c) starts from clflush, prefers clflushopt,
    /// then clwb, unless PMEM_NO_CLFLUSHOPT or PMEM_NO_CLWB is 1.
    static func cacheFlush() -> String {
        #if arch(x86_64)
        let cpu = pmt_probe_cpu_flush()
        let environment = ProcessInfo.processInfo.environment
        var chosen = cpu.clflush ? "clflush" : "none"
        if cpu.clflushopt && environment["PMEM_NO_CLFLUSHOPT"] != "1" { chosen = "clflushopt" }
        if cpu.clwb && environment["PMEM_NO_CLWB"] != "1" { chosen = "clwb" }
        let offered = [("clwb", cpu.clwb), ("clflushopt", cpu.clflushopt), ("clflush", cpu.clflush)].filter(\.1).map(\.0)
        let autoFlush = pmem_has_auto_flush() == 1 ? "; the platform flushes caches on power loss (eADR)" : ""
        return "\(chosen) (CPU offers \(offered.isEmpty ? "none" : offered.joined(separator: ", ")))\(autoFlush)"
        #else
        return "not x86-64: libpmem uses the architecture's cache clean instruction"
        #endif
    }

    static func userfaultfd() -> String {
        var features: UInt64 = 0
        var viaDevice = false
        let result = pmt_probe_userfaultfd(&features, &viaDevice)
        guard result == 0 else {
            let hint = result == EPERM ? "; see vm.unprivileged_userfaultfd" : ""
            return "unavailable (\(String(cString: strerror(result)))\(hint))"
        }
        let wanted: [(String, UInt64)] = [
            ("write-protect", UInt64(PMT_UFFD_FEATURE_PAGEFAULT_FLAG_WP)),
            ("write-protect of shmem/hugetlbfs", UInt64(PMT_UFFD_FEATURE_WP_HUGETLBFS_SHMEM)),
            ("asynchronous write-protect", UInt64(PMT_UFFD_FEATURE_WP_ASYNC)),
        ]
        let list = wanted.map { "\($0.0) \(features & $0.1 != 0 ? "yes" : "no")" }.joined(separator: ", ")
        return "available\(viaDevice ? " through /dev/userfaultfd" : ""): \(list)"
    }
}
