// Run-time capability probes. Each one asks the CPU or kernel directly, so
// the answer is about this machine, not the headers it was built with.
#include "pmt_probe.h"
#include "pmt_uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

pmt_cpu_flush_support pmt_probe_cpu_flush(void) {
    pmt_cpu_flush_support support = {false, false, false};
#if defined(__x86_64__)
    unsigned int eax, ebx, ecx, edx;
    // CPUID.01H:EDX bit 19 is CLFSH; CPUID.(EAX=07H,ECX=0):EBX bit 23 is
    // CLFLUSHOPT and bit 24 is CLWB (Intel SDM vol. 2A, CPUID).
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) support.clflush = (edx >> 19) & 1;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        support.clflushopt = (ebx >> 23) & 1;
        support.clwb = (ebx >> 24) & 1;
    }
#endif
    return support;
}

int pmt_probe_userfaultfd(uint64_t *features, bool *via_device) {
    *features = 0;
    *via_device = false;
    // User-mode-only faults need no privilege where
    // vm.unprivileged_userfaultfd is 0 (Linux 5.11); older kernels reject
    // the flag with EINVAL, so retry without it.
    int fd = pmt_uffd_open_syscall(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0 && errno == EINVAL) fd = pmt_uffd_open_syscall(O_CLOEXEC | O_NONBLOCK);
    int syscall_errno = errno;
    if (fd < 0) {
        // Linux 6.1 added /dev/userfaultfd, governed by file permissions
        // instead of the sysctl.
        fd = pmt_uffd_open_device(O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) return syscall_errno;
        *via_device = true;
    }
    // With features = 0 the handshake enables nothing and reports every
    // feature the kernel supports.
    int result = pmt_uffd_api(fd, 0, features);
    close(fd);
    return result;
}

#define PMT_PAGE_IS_PRESENT (1 << 3)

int pmt_probe_pagemap_scan(void) {
    long page = sysconf(_SC_PAGESIZE);
    void *probe = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED) return errno;
    *(volatile char *)probe = 1;
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        munmap(probe, (size_t)page);
        return saved;
    }
    pmt_page_region region;
    pmt_pm_scan_arg arg = {
        .size = sizeof arg,
        .start = (uint64_t)(uintptr_t)probe,
        .end = (uint64_t)(uintptr_t)probe + (uint64_t)page,
        .vec = (uint64_t)(uintptr_t)&region,
        .vec_len = 1,
        .category_mask = PMT_PAGE_IS_PRESENT,
        .return_mask = PMT_PAGE_IS_PRESENT,
    };
    // The ioctl returns the number of regions filled: one present page.
    long filled = pmt_pagemap_scan(fd, &arg);
    int result = filled == 1 ? 0 : (filled < 0 ? errno : EPROTO);
    close(fd);
    munmap(probe, (size_t)page);
    return result;
}

long long pmt_probe_fs_magic(const char *path) {
    struct statfs info;
    return statfs(path, &info) == 0 ? (long long)info.f_type : -(long long)errno;
}
