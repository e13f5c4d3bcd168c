// Region records: allocated and freed outside the signal handler.
#include "pmt_region.h"

#include <stdlib.h>

// The handler relies on these atomics being lock-free: a locked atomic
// could deadlock against the thread it interrupted.
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "pointer atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "futex words are 32 bits");

pmt_region *pmt_region_create(uintptr_t base, size_t length, unsigned block_shift, pmt_index *index,
                              bool handles_faults) {
    pmt_region *region = calloc(1, sizeof *region);
    if (region == NULL) return NULL;
    region->base = base;
    region->length = length;
    region->block_shift = block_shift;
    region->nblocks = pmt_index_block_count(index);
    region->index = index;
    region->handles_faults = handles_faults;
    return region;
}

void pmt_region_destroy(pmt_region *region) {
    // Its islands go with it.
    pmt_region_set_islands(region, 0);
    free(region);
}

uint64_t pmt_region_coarsened_blocks(const pmt_region *region) { return atomic_load(&region->coarsened_blocks); }

// MARK: VMA budget

/// Island estimate over all regions, and the budget in islands. Until a
/// budget is set there is none.
static _Atomic int64_t total_islands;
static _Atomic int64_t island_budget = INT64_MAX;

void pmt_set_vma_budget(uint64_t vmas) { atomic_store(&island_budget, (int64_t)(vmas / 2)); }

uint64_t pmt_vma_budget(void) {
    int64_t islands = atomic_load(&island_budget);
    return islands == INT64_MAX ? UINT64_MAX : (uint64_t)islands * 2;
}

bool pmt_vma_budget_exceeded(void) { return atomic_load(&total_islands) >= atomic_load(&island_budget); }

void pmt_region_add_islands(pmt_region *region, int64_t delta) {
    atomic_fetch_add(&region->islands, delta);
    atomic_fetch_add(&total_islands, delta);
}

void pmt_region_set_islands(pmt_region *region, int64_t islands) {
    int64_t old = atomic_exchange(&region->islands, islands);
    atomic_fetch_add(&total_islands, islands - old);
}

uint64_t pmt_region_write_faults(const pmt_region *region) { return atomic_load(&region->write_faults); }

uint64_t pmt_region_degraded_events(const pmt_region *region) { return atomic_load(&region->degraded_events); }
