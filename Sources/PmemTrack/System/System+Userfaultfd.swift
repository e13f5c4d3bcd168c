import CPmemTrack
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The userfaultfd and PAGEMAP_SCAN calls of the userfaultfd backend. Each
/// is a one-line C wrapper (Sources/CPmemTrack/uffd.c), because Swift cannot
/// call the variadic `syscall` and `ioctl`.
extension System {
    /// userfaultfd(2) with `flags`; a new descriptor.
    static func userfaultfd(flags: Int32) -> Result<Int32, Errno> {
        if let failure = injected(.userfaultfd) { return .failure(failure) }
        let fd = pmt_uffd_open_syscall(flags)
        return fd >= 0 ? .success(fd) : .failure(errno)
    }

    /// A userfaultfd from /dev/userfaultfd (Linux 6.1), which its file
    /// permissions govern instead of vm.unprivileged_userfaultfd.
    static func userfaultfdFromDevice(flags: Int32) -> Result<Int32, Errno> {
        if let failure = injected(.userfaultfdDevice) { return .failure(failure) }
        let fd = pmt_uffd_open_device(flags)
        return fd >= 0 ? .success(fd) : .failure(errno)
    }

    static let userfaultfdUserModeOnly = pmt_uffd_user_mode_only()

    /// UFFDIO_API asking for `features`; the features the kernel supports.
    static func userfaultfdHandshake(_ uffd: Int32, features: UInt64) -> Result<UInt64, Errno> {
        if let failure = injected(.userfaultfdAPI) { return .failure(failure) }
        var granted: UInt64 = 0
        let result = pmt_uffd_api(uffd, features, &granted)
        return result == 0 ? .success(granted) : .failure(Errno(rawValue: result))
    }

    /// UFFDIO_REGISTER in write-protect mode; the ioctls the range supports.
    static func userfaultfdRegister(_ uffd: Int32, _ start: UnsafeMutableRawPointer, _ length: Int) -> Result<UInt64, Errno> {
        if let failure = injected(.userfaultfdRegister) { return .failure(failure) }
        var ioctls: UInt64 = 0
        let result = pmt_uffd_register_wp(uffd, UInt(bitPattern: start), UInt64(length), &ioctls)
        return result == 0 ? .success(ioctls) : .failure(Errno(rawValue: result))
    }

    static func userfaultfdUnregister(_ uffd: Int32, _ start: UnsafeMutableRawPointer, _ length: Int) -> Result<Void, Errno> {
        if let failure = injected(.userfaultfdUnregister) { return .failure(failure) }
        let result = pmt_uffd_unregister(uffd, UInt(bitPattern: start), UInt64(length))
        return result == 0 ? .success(()) : .failure(Errno(rawValue: result))
    }

    /// UFFDIO_WRITEPROTECT: sets or clears the write-protect bit of a range.
    static func userfaultfdWriteProtect(
        _ uffd: Int32, _ start: UnsafeMutableRawPointer, _ length: Int, protect: Bool
    ) -> Result<Void, Errno> {
        if let failure = injected(.userfaultfdWriteProtect) { return .failure(failure) }
        let result = pmt_uffd_writeprotect(uffd, UInt(bitPattern: start), UInt64(length), protect)
        return result == 0 ? .success(()) : .failure(Errno(rawValue: result))
    }

    /// ioctl(PAGEMAP_SCAN): the number of regions the kernel wrote to
    /// `argument.vec`; `argument.walk_end` tells where the walk stopped.
    static func pagemapScan(_ pagemap: Int32, _ argument: inout pmt_pm_scan_arg) -> Result<Int, Errno> {
        let injection = injectedFailure(.pagemapScan)
        if let injection, !injection.afterTheCall { return .failure(checked(injection.errno, .pagemapScan)) }
        let filled = pmt_pagemap_scan(pagemap, &argument)
        if let injection {
            // The walk happened; its reports are lost.
            if argument.vec != 0, let vector = UnsafeMutablePointer<pmt_page_region>(bitPattern: UInt(argument.vec)) {
                vector.update(repeating: pmt_page_region(), count: Int(argument.vec_len))
            }
            return .failure(checked(injection.errno, .pagemapScan))
        }
        return filled >= 0 ? .success(filled) : .failure(checked(errno, .pagemapScan))
    }

    /// Opens this process's /proc/self/pagemap. The descriptor is bound to
    /// the process that opened it, a forked child's inherited copy included.
    static func openPagemap() -> Result<Int32, Errno> {
        openReadOnly("/proc/self/pagemap")
    }

    /// Whether the file (by descriptor, or by path when `fd` is nil) is
    /// accessed without the page cache: DAX state or a character device.
    static func isDirectAccess(fd: Int32?, path: String) -> Result<Bool, Errno> {
        let result = pmt_file_is_dax(fd ?? -1, path)
        return result >= 0 ? .success(result == 1) : .failure(Errno(rawValue: -result))
    }

    static func deviceID(of path: String) -> Result<UInt64, Errno> {
        var status = stat()
        return stat(path, &status) == 0 ? .success(UInt64(status.st_dev)) : .failure(errno)
    }
}
