// Region records: allocated and freed outside the signal handler.
#include "pmt_region.h"

#include <stdlib.h>

// The handler relies on these atomics being lock-free: a locked atomic
// could deadlock against the thread it interrupted.
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "pointer atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "futex words are 32 bits");

pmt_region *pmt_region_create(uintptr_t base, size_t length, unsigned block_shift, pmt_index *index) {
    pmt_region *region = calloc(1, sizeof *region);
    if (region == NULL) return NULL;
    region->base = base;
    region->length = length;
    region->block_shift = block_shift;
    region->nblocks = pmt_index_block_count(index);
    region->index = index;
    return region;
}

void pmt_region_destroy(pmt_region *region) { free(region); }

uint64_t pmt_region_write_faults(const pmt_region *region) { return atomic_load(&region->write_faults); }

uint64_t pmt_region_degraded_events(const pmt_region *region) { return atomic_load(&region->degraded_events); }
