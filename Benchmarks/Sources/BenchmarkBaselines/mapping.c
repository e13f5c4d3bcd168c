// The baselines' own view of a benchmark file: a second, plain shared
// mapping of the file PmemTrack maps, so that both work on the same
// page-cache pages.
#include "BenchmarkBaselines.h"

#include <sys/mman.h>

void *pmt_bench_map_shared(int fd, size_t length, int populate) {
    int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
    void *base = mmap(NULL, length, PROT_READ | PROT_WRITE, flags, fd, 0);
    return base == MAP_FAILED ? NULL : base;
}

int pmt_bench_unmap(void *base, size_t length) { return munmap(base, length); }

int pmt_bench_protect_all(void *base, size_t length) { return mprotect(base, length, PROT_READ); }
