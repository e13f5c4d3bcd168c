// The baselines PmemTrack is measured against: the same system calls and
// flushes with no tracking around them. Each suite measures these in the
// same process, on the same file pages, between PmemTrack's measurements.
#ifndef PMT_BENCH_BASELINES_H
#define PMT_BENCH_BASELINES_H

#include <stddef.h>
#include <stdint.h>

/// A run of adjacent blocks: its byte offset in a mapping and its length.
typedef struct {
    size_t offset;
    size_t length;
} pmt_bench_run;

/// CLOCK_MONOTONIC in nanoseconds: the clock of every measured window.
uint64_t pmt_bench_now_ns(void);

// MARK: Mappings

/// Maps `length` bytes of `fd` shared and writable; with `populate`, every
/// page is faulted in now (MAP_POPULATE). NULL on failure, errno set.
void *pmt_bench_map_shared(int fd, size_t length, int populate);
int pmt_bench_unmap(void *base, size_t length);
/// mprotect(PROT_READ) over the whole mapping.
int pmt_bench_protect_all(void *base, size_t length);

// MARK: Fault baseline

/// Installs a minimal SIGSEGV handler for `base..<base+length`: it makes the
/// faulting page writable and returns. Faults elsewhere go to the handler
/// that was installed before. Returns 0, or -1 with errno.
int pmt_bench_handler_install(void *base, size_t length);
/// Puts the previous handler back. Returns 0, or -1 with errno.
int pmt_bench_handler_uninstall(void);
/// Faults the minimal handler has served since the process started.
uint64_t pmt_bench_handler_faults(void);

// MARK: Sync baselines

/// Setup for the raw work: makes each run writable and stores one byte into
/// each of its blocks, as PmemTrack's fault path and the store would.
int pmt_bench_unprotect_and_store(void *base, const pmt_bench_run *runs, size_t count, size_t block_size,
                                  uint8_t value);
/// PmemTrack's CacheLineFlusher drains once per this many runs, or once the
/// runs reach this many bytes (runsPerDrain, bytesPerDrain); the raw work
/// drains as often.
#define PMT_BENCH_RUNS_PER_DRAIN 64
#define PMT_BENCH_BYTES_PER_DRAIN (1u << 20)
/// The raw work of a PmemTrack sync on persistent memory, per batch of
/// runs: mprotect(PROT_READ) of each, pmem_flush of each, one pmem_drain.
int pmt_bench_protect_and_flush(void *base, const pmt_bench_run *runs, size_t count);
/// The raw work of a PmemTrack sync on an ordinary file: mprotect(PROT_READ)
/// of each run, then one fdatasync of the file.
int pmt_bench_protect_and_fdatasync(void *base, const pmt_bench_run *runs, size_t count, int fd);
/// pmem_persist of the whole mapping: what an untracked app does on pmem.
void pmt_bench_persist_whole(const void *base, size_t length);
/// pmem_msync of the whole mapping: what an untracked app does on a file.
int pmt_bench_msync_whole(const void *base, size_t length);

// MARK: userfaultfd baselines

/// A shadow mapping's own userfaultfd and /proc/self/pagemap descriptors.
typedef struct {
    int uffd;
    int pagemap;
} pmt_bench_uffd;

/// struct page_region: a run of written pages, [start, end).
typedef struct {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
} pmt_bench_region;

/// Registers `base..<base+length` with a new userfaultfd in write-protect
/// mode with WP_ASYNC and WP_UNPOPULATED (after MADV_NOHUGEPAGE, as
/// PmemTrack does), and opens /proc/self/pagemap. With `populated`, first
/// re-maps every page with 4 KiB entries (MAP_POPULATE may have mapped huge
/// ones). 0, or -1 with errno.
int pmt_bench_uffd_register(void *base, size_t length, int populated, pmt_bench_uffd *out);
/// Closes both descriptors; the registration goes with the userfaultfd.
void pmt_bench_uffd_close(pmt_bench_uffd *u);
/// Arms the range: PAGEMAP_SCAN with WP_MATCHING and no vector
/// (vec = NULL, vec_len = 0), write-protecting every page. 0, or -1.
int pmt_bench_uffd_arm(const pmt_bench_uffd *u, void *base, size_t length);
/// PAGEMAP_SCAN over the range for written pages, `capacity` regions per
/// call, resuming at walk_end; with `protect` each is write-protected again.
/// Calls `each` (if not NULL) per region. Returns the pages reported, or -1.
long pmt_bench_uffd_scan(const pmt_bench_uffd *u, void *base, size_t length, int protect, pmt_bench_region *vec,
                         size_t capacity, void (*each)(const pmt_bench_region *, void *), void *context);
/// The raw work of a userfaultfd PmemTrack sync on persistent memory: one
/// scan that write-protects, then per batch of regions pmem_flush of each
/// and one pmem_drain.
/// Returns the pages reported, or -1.
long pmt_bench_uffd_scan_and_flush(const pmt_bench_uffd *u, void *base, size_t length, pmt_bench_region *vec,
                                   size_t capacity);
/// The same on an ordinary file: one scan that write-protects, then msync
/// of the region if there is one, else one fdatasync. Pages, or -1.
long pmt_bench_uffd_scan_and_fdatasync(const pmt_bench_uffd *u, void *base, size_t length, pmt_bench_region *vec,
                                       size_t capacity, int fd);

// MARK: Index baseline

// A flat bitmap of one bit per block, `words` holding (block_count + 63) / 64
// words, bit b of word w standing for block 64 * w + b.

/// Sets one block's bit with an atomic OR: a flat tracker's fault-path work.
void pmt_bench_bitmap_set(uint64_t *words, size_t block);
/// Clears the bits of blocks first..<first+count, one atomic AND per word.
void pmt_bench_bitmap_clear(uint64_t *words, size_t first, size_t count);
/// Scans every word for the maximal runs of set bits, ascending, and stores
/// the first `capacity` in `runs` (offset: first block; length: blocks).
/// Returns how many runs there are, which may exceed `capacity`.
size_t pmt_bench_bitmap_runs(const uint64_t *words, size_t block_count, pmt_bench_run *runs, size_t capacity);

#endif
