// The index baseline: a flat bitmap, one bit per block, the least state a
// write tracker can keep. Setting and clearing are the atomic RMWs that
// PmemTrack's leaves take too (a fault handler may set bits while a sync
// clears others), sequentially consistent like PmemTrack's. Finding the set
// blocks has no summary to consult: it reads every word, O(N/64) whatever k,
// where PmemTrack's radix tree skips clean subtrees. That is what the
// IndexOps comparison shows.
#include "BenchmarkBaselines.h"

#define WORD_BITS 64

void pmt_bench_bitmap_set(uint64_t *words, size_t block) {
    __atomic_fetch_or(&words[block / WORD_BITS], UINT64_C(1) << (block % WORD_BITS), __ATOMIC_SEQ_CST);
}

void pmt_bench_bitmap_clear(uint64_t *words, size_t first, size_t count) {
    size_t end = first + count;
    while (first < end) {
        size_t w = first / WORD_BITS;
        size_t lo = first % WORD_BITS;
        size_t hi = end - w * WORD_BITS < WORD_BITS ? end - w * WORD_BITS : WORD_BITS;
        uint64_t upper = hi == WORD_BITS ? UINT64_MAX : (UINT64_C(1) << hi) - 1;
        uint64_t mask = upper & ~((UINT64_C(1) << lo) - 1);
        __atomic_fetch_and(&words[w], ~mask, __ATOMIC_SEQ_CST);
        first = w * WORD_BITS + hi;
    }
}

size_t pmt_bench_bitmap_runs(const uint64_t *words, size_t block_count, pmt_bench_run *runs, size_t capacity) {
    size_t word_count = (block_count + WORD_BITS - 1) / WORD_BITS;
    size_t found = 0, start = 0;
    int in_run = 0;
    for (size_t w = 0; w < word_count; w++) {
        // Relaxed: a concurrent fault handler's bits need no ordering here,
        // and on x86 this is the plain load PmemTrack's leaves read with.
        uint64_t bits = __atomic_load_n(&words[w], __ATOMIC_RELAXED);
        // The common cases: a clean word outside a run, a full one inside.
        if (bits == (in_run ? UINT64_MAX : 0)) continue;
        unsigned pos = 0;
        while (pos < WORD_BITS) {
            // Outside a run look for the next set bit, inside for the next clear one.
            uint64_t rest = (in_run ? ~bits : bits) >> pos;
            if (rest == 0) break;
            pos += (unsigned)__builtin_ctzll(rest);
            size_t block = w * WORD_BITS + pos;
            if (in_run) {
                if (found < capacity) runs[found] = (pmt_bench_run){.offset = start, .length = block - start};
                found++;
            } else {
                start = block;
            }
            in_run = !in_run;
        }
    }
    if (in_run) {
        // Bits past block_count are never set: a run still open ends there.
        if (found < capacity) runs[found] = (pmt_bench_run){.offset = start, .length = block_count - start};
        found++;
    }
    return found;
}
