// Thin wrappers over the userfaultfd and PAGEMAP_SCAN interfaces, for the
// userfaultfd tracking backend (Sources/PmemTrack/Tracking/Userfaultfd).
//
// Swift cannot call variadic C functions (syscall, ioctl), so each call the
// backend makes has a one-line wrapper here; the Swift `System` layer is the
// only caller. None of these run in a signal handler, though all but
// pmt_uffd_self_test could (each says so below, "async-signal-safe" as
// pmt_region.h defines it). The UAPI structures
// and constants are declared here because Debian 12's kernel headers (Linux
// 6.1) predate WP_ASYNC and PAGEMAP_SCAN (Linux 6.7); the layouts are ABI and
// are asserted in uffd.c.
#ifndef PMT_UFFD_H
#define PMT_UFFD_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// UFFDIO_API feature bits (include/uapi/linux/userfaultfd.h).
#define PMT_UFFD_FEATURE_WP_UNPOPULATED 0x2000ULL   // 1 << 13, Linux 6.4
#define PMT_UFFD_FEATURE_WP_ASYNC 0x8000ULL      // 1 << 15, Linux 6.7

/// PAGEMAP_SCAN flags and page categories (include/uapi/linux/fs.h, 6.7).
#define PMT_PM_SCAN_WP_MATCHING 0x1ULL     // 1 << 0
#define PMT_PM_SCAN_CHECK_WPASYNC 0x2ULL   // 1 << 1
#define PMT_PAGE_IS_WRITTEN 0x2ULL         // 1 << 1

/// struct page_region: one run of pages with the same returned categories;
/// `end` is exclusive.
typedef struct {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
} pmt_page_region;

/// struct pm_scan_arg. `walk_end` is written back by the kernel: where the
/// walk stopped.
typedef struct {
    uint64_t size;
    uint64_t flags;
    uint64_t start;
    uint64_t end;
    uint64_t walk_end;
    uint64_t vec;
    uint64_t vec_len;
    uint64_t max_pages;
    uint64_t category_inverted;
    uint64_t category_mask;
    uint64_t category_anyof_mask;
    uint64_t return_mask;
} pmt_pm_scan_arg;

/// userfaultfd(2) with `flags` (O_CLOEXEC, O_NONBLOCK, UFFD_USER_MODE_ONLY).
/// Returns the descriptor, or -1 with errno. Async-signal-safe: one system call.
int pmt_uffd_open_syscall(int flags);
/// /dev/userfaultfd's USERFAULTFD_IOC_NEW (Linux 6.1): a userfaultfd governed
/// by the device's file permissions instead of vm.unprivileged_userfaultfd.
/// Returns the descriptor, or -1 with errno. Async-signal-safe: open, ioctl,
/// close.
int pmt_uffd_open_device(int flags);
/// The value of UFFD_USER_MODE_ONLY, for callers without the header.
/// Async-signal-safe.
int pmt_uffd_user_mode_only(void);

/// UFFDIO_API handshake asking for `features`; on success `*granted` holds
/// every feature the kernel supports. Returns 0 or an errno.
/// Async-signal-safe: ioctl.
int pmt_uffd_api(int uffd, uint64_t features, uint64_t *granted);
/// UFFDIO_REGISTER of [start, start+length) in write-protect mode; on
/// success `*ioctls` holds the ioctls the range supports. 0 or an errno.
/// Async-signal-safe: ioctl.
int pmt_uffd_register_wp(int uffd, uintptr_t start, uint64_t length, uint64_t *ioctls);
/// Whether UFFDIO_WRITEPROTECT is among `ioctls` from a registration.
/// Async-signal-safe: arithmetic only.
bool pmt_uffd_ioctls_allow_writeprotect(uint64_t ioctls);
/// UFFDIO_UNREGISTER of [start, start+length). 0 or an errno.
/// Async-signal-safe: ioctl.
int pmt_uffd_unregister(int uffd, uintptr_t start, uint64_t length);
/// UFFDIO_WRITEPROTECT of [start, start+length), setting (`protect`) or
/// clearing the write-protect bit. 0 or an errno. Async-signal-safe: ioctl.
int pmt_uffd_writeprotect(int uffd, uintptr_t start, uint64_t length, bool protect);

/// ioctl(pagemap, PAGEMAP_SCAN, arg). Returns the number of regions written
/// to arg->vec, or -1 with errno. Async-signal-safe: ioctl.
long pmt_pagemap_scan(int pagemap, pmt_pm_scan_arg *arg);

/// Whether the file is accessed directly, without the page cache: 1 for a
/// file in DAX state (statx STATX_ATTR_DAX, Linux 5.8) or a character device
/// (device DAX), 0 if not, or -errno. `fd` if it is not negative, else `path`.
/// Async-signal-safe: statx.
int pmt_file_is_dax(int fd, const char *path);

/// Outcome of pmt_uffd_self_test.
typedef enum {
    PMT_SELF_TEST_PASSED = 0,
    PMT_SELF_TEST_FAILED = 1,     // a step gave a wrong answer or an error
    PMT_SELF_TEST_TIMED_OUT = 2,  // the child missed the deadline and was killed
    PMT_SELF_TEST_NO_CHILD = 3,   // fork or the temporary file failed
} pmt_self_test_result;

/// Checks, in a child process killed at `deadline_ms`, that asynchronous
/// write-protect tracks writes to a file in `directory`: a temporary file of
/// two pages is mapped shared, registered and armed; a read must not be
/// reported, a write must be; then a hole is punched and the page written
/// again, which must fault and be reported. A file system whose faults
/// misbehave under write-protect markers (DAX, possibly) fails or hangs in
/// the child, never in the caller. `*step` is the child's failed step (1..9)
/// for PMT_SELF_TEST_FAILED. `hang_for_test` makes the child hang, to test
/// the deadline.
/// Not async-signal-safe: glibc's fork() runs the pthread_atfork handlers
/// and takes the allocator's locks, and the call waits up to `deadline_ms`.
pmt_self_test_result pmt_uffd_self_test(const char *directory, int deadline_ms, bool hang_for_test, int *step);

#ifdef __cplusplus
}
#endif

#endif
