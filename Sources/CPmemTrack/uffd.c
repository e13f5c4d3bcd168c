// The userfaultfd wrappers of pmt_uffd.h, and the file-system self-test.
#include "pmt_uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// The UAPI layouts (include/uapi/linux/fs.h): twelve and three u64 fields.
_Static_assert(sizeof(pmt_pm_scan_arg) == 96, "struct pm_scan_arg is 96 bytes");
_Static_assert(offsetof(pmt_pm_scan_arg, walk_end) == 32, "walk_end is the fifth field");
_Static_assert(offsetof(pmt_pm_scan_arg, return_mask) == 88, "return_mask is the last field");
_Static_assert(sizeof(pmt_page_region) == 24, "struct page_region is 24 bytes");
// PAGEMAP_SCAN is _IOWR('f', 16, struct pm_scan_arg).
#define PMT_PAGEMAP_SCAN _IOWR('f', 16, pmt_pm_scan_arg)
_Static_assert(PMT_PAGEMAP_SCAN == 0xc0606610, "PAGEMAP_SCAN's ioctl number");

int pmt_uffd_open_syscall(int flags) { return (int)syscall(SYS_userfaultfd, flags); }

int pmt_uffd_open_device(int flags) {
    int device = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (device < 0) return -1;
    int fd = ioctl(device, USERFAULTFD_IOC_NEW, flags);
    int err = errno;
    close(device);
    errno = err;
    return fd;
}

int pmt_uffd_user_mode_only(void) { return UFFD_USER_MODE_ONLY; }

int pmt_uffd_api(int uffd, uint64_t features, uint64_t *granted) {
    struct uffdio_api api = {.api = UFFD_API, .features = features};
    if (ioctl(uffd, UFFDIO_API, &api) != 0) return errno;
    *granted = api.features;
    return 0;
}

int pmt_uffd_register_wp(int uffd, uintptr_t start, uint64_t length, uint64_t *ioctls) {
    struct uffdio_register reg = {.range = {.start = start, .len = length}, .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) return errno;
    *ioctls = reg.ioctls;
    return 0;
}

bool pmt_uffd_ioctls_allow_writeprotect(uint64_t ioctls) {
    return (ioctls & ((uint64_t)1 << _UFFDIO_WRITEPROTECT)) != 0;
}

int pmt_uffd_unregister(int uffd, uintptr_t start, uint64_t length) {
    struct uffdio_range range = {.start = start, .len = length};
    return ioctl(uffd, UFFDIO_UNREGISTER, &range) == 0 ? 0 : errno;
}

int pmt_uffd_writeprotect(int uffd, uintptr_t start, uint64_t length, bool protect) {
    struct uffdio_writeprotect wp = {
        .range = {.start = start, .len = length},
        .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0 ? 0 : errno;
}

long pmt_pagemap_scan(int pagemap, pmt_pm_scan_arg *arg) { return ioctl(pagemap, PMT_PAGEMAP_SCAN, arg); }

int pmt_file_is_dax(int fd, const char *path) {
    struct statx info;
    int rc = fd >= 0 ? statx(fd, "", AT_EMPTY_PATH, STATX_TYPE, &info) : statx(AT_FDCWD, path, 0, STATX_TYPE, &info);
    if (rc != 0) return -errno;
    if (S_ISCHR(info.stx_mode)) return 1;
    return (info.stx_attributes_mask & STATX_ATTR_DAX) && (info.stx_attributes & STATX_ATTR_DAX) ? 1 : 0;
}

// MARK: Self-test

/// One scan with write-protect over [start, end): the number of written
/// pages reported, -1 if the scan failed, or -2 if a region reported is not
/// `expect` (a single page; 0 for none expected).
static long scan_expect(int pagemap, uintptr_t start, uintptr_t end, uintptr_t expect, long page) {
    pmt_page_region vec[4];
    memset(vec, 0, sizeof vec);
    pmt_pm_scan_arg arg = {
        .size = sizeof arg, .flags = PMT_PM_SCAN_WP_MATCHING | PMT_PM_SCAN_CHECK_WPASYNC,
        .start = start, .end = end, .vec = (uintptr_t)vec, .vec_len = 4,
        .category_mask = PMT_PAGE_IS_WRITTEN, .return_mask = PMT_PAGE_IS_WRITTEN,
    };
    long n = pmt_pagemap_scan(pagemap, &arg);
    if (n < 0) return -1;
    if (expect == 0) return n == 0 ? 0 : -2;
    return n == 1 && vec[0].start == expect && vec[0].end == expect + (uintptr_t)page ? 1 : -2;
}

/// The child's steps; returns 0 or the number of the step that failed.
/// Only async-signal-safe calls: the parent may have other threads.
static int self_test_child(int file, long page, bool hang) {
    if (hang) for (;;) pause();
    char *map = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
    if (map == MAP_FAILED) return 1;
    int uffd = pmt_uffd_open_syscall(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (uffd < 0) uffd = pmt_uffd_open_device(O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) return 2;
    uint64_t granted, ioctls;
    if (pmt_uffd_api(uffd, PMT_UFFD_FEATURE_WP_ASYNC | PMT_UFFD_FEATURE_WP_UNPOPULATED, &granted) != 0) return 3;
    if (pmt_uffd_register_wp(uffd, (uintptr_t)map, 2 * (uint64_t)page, &ioctls) != 0) return 4;
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0) return 5;
    uintptr_t start = (uintptr_t)map, end = start + 2 * (uintptr_t)page;
    // Arm: the first scan reports whatever counts as written and protects all.
    if (scan_expect(pagemap, start, end, 0, page) == -1) return 6;
    (void)*(volatile char *)map;                       // a read fault on a marker
    if (scan_expect(pagemap, start, end, 0, page) != 0) return 7;
    map[1] = 1;                                        // a write fault
    if (scan_expect(pagemap, start, end, start, page) != 1) return 8;
    // Punch the page out: its PTE becomes a write-protect marker, and the
    // next write faults through the file system's own fault handler.
    if (fallocate(file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, page) != 0) return 9;
    map[2] = 2;
    if (scan_expect(pagemap, start, end, start, page) != 1) return 10;
    if (map[2] != 2 || map[1] != 0) return 11;
    return 0;
}

pmt_self_test_result pmt_uffd_self_test(const char *directory, int deadline_ms, bool hang_for_test, int *step) {
    *step = 0;
    long page = sysconf(_SC_PAGESIZE);
    int file = open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (file < 0) return PMT_SELF_TEST_NO_CHILD;
    if (ftruncate(file, 2 * page) != 0) {
        close(file);
        return PMT_SELF_TEST_NO_CHILD;
    }
    pid_t child = fork();
    if (child < 0) {
        close(file);
        return PMT_SELF_TEST_NO_CHILD;
    }
    if (child == 0) _exit(self_test_child(file, page, hang_for_test));
    close(file);
    struct timespec now, deadline, tick = {.tv_sec = 0, .tv_nsec = 1000000};
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += deadline_ms / 1000;
    deadline.tv_nsec += (long)(deadline_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000;
    }
    for (;;) {
        int status;
        pid_t done = waitpid(child, &status, WNOHANG);
        if (done == child) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return PMT_SELF_TEST_PASSED;
            *step = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return PMT_SELF_TEST_FAILED;
        }
        if (done < 0 && errno != EINTR) return PMT_SELF_TEST_NO_CHILD;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
            // A child stuck in a fault loop is killable: each refault returns
            // to user space, where SIGKILL is delivered.
            kill(child, SIGKILL);
            while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
            return PMT_SELF_TEST_TIMED_OUT;
        }
        nanosleep(&tick, NULL);
    }
}
