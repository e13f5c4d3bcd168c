// The sync baselines. The raw work repeats exactly the system calls and
// flushes of PmemTrack's SyncEngine (Sources/PmemTrack/Sync/SyncEngine.swift,
// claim, flush and complete): on persistent memory, per batch of runs
// write-protect each, flush each, one drain; on an ordinary file,
// write-protect every run, then one fdatasync. What PmemTrack adds on top
// (index walk, block locks, signal mask, file-size checks, counters) is
// what the ratio measures.
#include "BenchmarkBaselines.h"

#include <libpmem.h>
#include <sys/mman.h>
#include <unistd.h>

int pmt_bench_unprotect_and_store(void *base, const pmt_bench_run *runs, size_t count, size_t block_size,
                                  uint8_t value) {
    char *bytes = base;
    for (size_t i = 0; i < count; i++) {
        if (mprotect(bytes + runs[i].offset, runs[i].length, PROT_READ | PROT_WRITE) != 0) return -1;
        for (size_t at = 0; at < runs[i].length; at += block_size)
            *(volatile uint8_t *)(bytes + runs[i].offset + at) = value;
    }
    return 0;
}

int pmt_bench_protect_and_flush(void *base, const pmt_bench_run *runs, size_t count) {
    char *bytes = base;
    // In batches, as PmemTrack's CacheLineFlusher has them drained: protect
    // each run of the batch, flush them back to back, one drain. The first
    // run is a batch of its own, as in PmemTrack's sync.
    for (size_t first = 0; first < count;) {
        size_t end = first, batch_bytes = 0;
        size_t limit = first == 0 ? 1 : PMT_BENCH_RUNS_PER_DRAIN;
        while (end < count && end - first < limit && batch_bytes < PMT_BENCH_BYTES_PER_DRAIN) {
            if (mprotect(bytes + runs[end].offset, runs[end].length, PROT_READ) != 0) return -1;
            batch_bytes += runs[end].length;
            end++;
        }
        for (size_t i = first; i < end; i++) pmem_flush(bytes + runs[i].offset, runs[i].length);
        pmem_drain();
        first = end;
    }
    return 0;
}

int pmt_bench_protect_and_fdatasync(void *base, const pmt_bench_run *runs, size_t count, int fd) {
    char *bytes = base;
    for (size_t i = 0; i < count; i++)
        if (mprotect(bytes + runs[i].offset, runs[i].length, PROT_READ) != 0) return -1;
    // One fdatasync makes every run durable, as PmemTrack's FileSyncFlusher
    // drain does for all the runs of a sync.
    return fdatasync(fd);
}

void pmt_bench_persist_whole(const void *base, size_t length) { pmem_persist(base, length); }

int pmt_bench_msync_whole(const void *base, size_t length) { return pmem_msync(base, length); }
