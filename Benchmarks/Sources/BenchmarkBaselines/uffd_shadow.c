// The userfaultfd baselines: the least an asynchronous write-protect tracker
// can do, on the shadow mapping. The shadow is registered with a userfaultfd
// of its own in write-protect mode (UFFD_FEATURE_WP_ASYNC, WP_UNPOPULATED)
// and armed with a PAGEMAP_SCAN that write-protects without reporting. A
// first store is then resolved by the kernel, as in PmemTrack's backend;
// the raw sync is one PAGEMAP_SCAN that reports the written pages and
// write-protects them again, then the flushes PmemTrack's sync makes. No
// index, no locks, no counters: what the ratio measures is PmemTrack's share.
//
// The UAPI is declared here, as in PmemTrack's own pmt_uffd.h, because
// Debian 12's kernel headers predate WP_ASYNC and PAGEMAP_SCAN (Linux 6.7).
#include "BenchmarkBaselines.h"

#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FEATURE_WP_UNPOPULATED (1ULL << 13)
#define FEATURE_WP_ASYNC (1ULL << 15)
#define SCAN_WP_MATCHING (1ULL << 0)
#define SCAN_CHECK_WPASYNC (1ULL << 1)
#define PAGE_WRITTEN (1ULL << 1)

struct scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN_IOCTL _IOWR('f', 16, struct scan_arg)
_Static_assert(sizeof(struct scan_arg) == 96, "struct pm_scan_arg is 96 bytes");
_Static_assert(sizeof(pmt_bench_region) == 24, "struct page_region is 24 bytes");

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22   // Linux 5.14
#endif

int pmt_bench_uffd_register(void *base, size_t length, int populated, pmt_bench_uffd *out) {
    // As PmemTrack does for its own mapping: 4 KiB entries, so a store
    // reports its page, not a huge page.
    madvise(base, length, MADV_NOHUGEPAGE);
    if (populated) {
        // MAP_POPULATE ran before the advice and may have mapped large
        // folios by PMD (tmpfs huge pages, ext4 large folios): a store into
        // one would report 2 MiB. Drop the entries (the file keeps its
        // pages) and fault them in again as 4 KiB entries.
        if (madvise(base, length, MADV_DONTNEED) != 0 || madvise(base, length, MADV_POPULATE_READ) != 0) return -1;
    }
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (uffd < 0) return -1;
    struct uffdio_api api = {.api = UFFD_API, .features = FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED};
    struct uffdio_register reg = {
        .range = {.start = (uintptr_t)base, .len = length}, .mode = UFFDIO_REGISTER_MODE_WP};
    int pagemap = -1;
    if (ioctl(uffd, UFFDIO_API, &api) != 0 || ioctl(uffd, UFFDIO_REGISTER, &reg) != 0 ||
        (pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0) {
        int saved = errno;
        close(uffd);
        errno = saved;
        return -1;
    }
    *out = (pmt_bench_uffd){.uffd = uffd, .pagemap = pagemap};
    return 0;
}

void pmt_bench_uffd_close(pmt_bench_uffd *u) {
    if (u->pagemap >= 0) close(u->pagemap);
    if (u->uffd >= 0) close(u->uffd);   // closing it unregisters the range
    u->uffd = u->pagemap = -1;
}

static struct scan_arg scan_arg(uint64_t start, uint64_t end, int protect, pmt_bench_region *vec, size_t cap) {
    return (struct scan_arg){
        .size = sizeof(struct scan_arg),
        .flags = SCAN_CHECK_WPASYNC | (protect ? SCAN_WP_MATCHING : 0),
        .start = start, .end = end,
        .vec = (uintptr_t)vec, .vec_len = vec ? cap : 0,
        .category_mask = PAGE_WRITTEN, .return_mask = PAGE_WRITTEN};
}

int pmt_bench_uffd_arm(const pmt_bench_uffd *u, void *base, size_t length) {
    struct scan_arg arg = scan_arg((uintptr_t)base, (uintptr_t)base + length, 1, NULL, 0);
    return ioctl(u->pagemap, PAGEMAP_SCAN_IOCTL, &arg) < 0 ? -1 : 0;
}

long pmt_bench_uffd_scan(const pmt_bench_uffd *u, void *base, size_t length, int protect, pmt_bench_region *vec,
                         size_t capacity, void (*each)(const pmt_bench_region *, void *), void *context) {
    uint64_t cursor = (uintptr_t)base, end = (uintptr_t)base + length;
    // Pages below `high` were counted already. On Linux 6.18, when a call
    // reports more than 512 regions (the kernel's bounce buffer), walk_end
    // comes back at the end of the first 512 although every region was
    // copied out: the next call walks the rest again. With protection that
    // finds nothing new; without, it reports those regions a second time.
    uint64_t high = cursor, page = (uint64_t)sysconf(_SC_PAGESIZE);
    long pages = 0;
    while (cursor < end) {
        struct scan_arg arg = scan_arg(cursor, end, protect, vec, capacity);
        long filled = ioctl(u->pagemap, PAGEMAP_SCAN_IOCTL, &arg);
        if (filled < 0) return -1;
        for (long i = 0; i < filled; i++) {
            uint64_t from = vec[i].start > high ? vec[i].start : high;
            if (vec[i].end > from) pages += (long)((vec[i].end - from) / page);
            if (vec[i].end > high) high = vec[i].end;
            if (each) each(&vec[i], context);
        }
        if (arg.walk_end <= cursor) {
            errno = EPROTO;
            return -1;
        }
        cursor = arg.walk_end;
    }
    return pages;
}

struct flush_batch {
    pmt_bench_region regions[PMT_BENCH_RUNS_PER_DRAIN];
    size_t count, bytes, batches;
};

static void flush_batch(struct flush_batch *batch) {
    if (batch->count == 0) return;
    for (size_t i = 0; i < batch->count; i++)
        pmem_flush((const void *)(uintptr_t)batch->regions[i].start, batch->regions[i].end - batch->regions[i].start);
    pmem_drain();
    batch->count = batch->bytes = 0;
    batch->batches++;
}

static void queue_region(const pmt_bench_region *region, void *context) {
    // In batches, as PmemTrack's CacheLineFlusher has them drained: the
    // regions of a batch flushed back to back, one drain.
    struct flush_batch *batch = context;
    batch->regions[batch->count++] = *region;
    batch->bytes += region->end - region->start;
    // The first region is a batch of its own, as in PmemTrack's sync.
    size_t limit = batch->batches == 0 ? 1 : PMT_BENCH_RUNS_PER_DRAIN;
    if (batch->count == limit || batch->bytes >= PMT_BENCH_BYTES_PER_DRAIN) flush_batch(batch);
}

long pmt_bench_uffd_scan_and_flush(const pmt_bench_uffd *u, void *base, size_t length, pmt_bench_region *vec,
                                   size_t capacity) {
    struct flush_batch batch = {.count = 0};
    long pages = pmt_bench_uffd_scan(u, base, length, 1, vec, capacity, queue_region, &batch);
    flush_batch(&batch);
    return pages;
}

struct file_sync {
    long regions;
    pmt_bench_region first;
};

static void note_region(const pmt_bench_region *region, void *context) {
    struct file_sync *sync = context;
    if (sync->regions++ == 0) sync->first = *region;
}

long pmt_bench_uffd_scan_and_fdatasync(const pmt_bench_uffd *u, void *base, size_t length, pmt_bench_region *vec,
                                       size_t capacity, int fd) {
    struct file_sync sync = {0};
    long pages = pmt_bench_uffd_scan(u, base, length, 1, vec, capacity, note_region, &sync);
    if (pages < 0) return -1;
    // PmemTrack's FileSyncFlusher: msync of the run when there is only one,
    // else one fdatasync for all of them.
    int rc = 0;
    if (sync.regions == 1)
        rc = pmem_msync((const void *)(uintptr_t)sync.first.start, sync.first.end - sync.first.start);
    else if (sync.regions > 1)
        rc = fdatasync(fd);
    return rc == 0 ? pages : -1;
}
