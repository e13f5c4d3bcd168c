// Run-time probes of what the CPU and kernel offer, for `pmemtrack doctor`.
// None of them is used by the fault or sync paths. Each says below whether
// it is async-signal-safe, as pmt_region.h defines it.
#ifndef PMT_PROBE_H
#define PMT_PROBE_H

#include <stdbool.h>
#include <stdint.h>

/// Cache-line flush instructions the CPU reports (x86-64 CPUID); all false
/// on other architectures.
typedef struct {
    bool clflush;
    bool clflushopt;
    bool clwb;
} pmt_cpu_flush_support;

/// Async-signal-safe: CPUID only.
pmt_cpu_flush_support pmt_probe_cpu_flush(void);

/// Opens a userfaultfd (the syscall, then /dev/userfaultfd) and performs the
/// UFFDIO_API handshake. Returns 0 and the kernel's feature bits in
/// `*features`, or the errno of the step that failed. `*via_device` tells
/// whether only /dev/userfaultfd worked. Async-signal-safe: userfaultfd,
/// open, ioctl and close.
int pmt_probe_userfaultfd(uint64_t *features, bool *via_device);

/// Feature bits of interest, defined here because older kernel headers
/// (Debian 12 ships 6.1's) lack the newer ones.
enum {
    PMT_UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0,
    PMT_UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12,
};

/// Issues a PAGEMAP_SCAN ioctl (Linux 6.7) on /proc/self/pagemap over one
/// page of this process. Returns 0 if the kernel understood it, else errno
/// (ENOTTY or EINVAL when the ioctl does not exist). Async-signal-safe:
/// sysconf(_SC_PAGESIZE), mmap, open, ioctl, close, munmap.
int pmt_probe_pagemap_scan(void);

/// The statfs(2) f_type of the file system holding `path`, or -errno.
/// Async-signal-safe: statfs.
long long pmt_probe_fs_magic(const char *path);

#endif
