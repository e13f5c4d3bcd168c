// Internal interface between the registry and the fault handler.
#ifndef PMT_REGISTRY_INTERNAL_H
#define PMT_REGISTRY_INTERNAL_H

#include "pmt_region.h"

struct pmt_slot {
    _Atomic uintptr_t start;
    _Atomic uintptr_t end;
    _Atomic(pmt_region *) region;
    _Atomic uint32_t readers;
};

/// A slot being filled or drained: never matched, never reused.
#define PMT_SLOT_CLAIMED ((pmt_region *)1)

/// Finds the region holding `addr` and pins it against unregistering until
/// pmt_registry_leave(*slot_out). Returns NULL if no region holds it.
pmt_region *pmt_registry_enter(uintptr_t addr, struct pmt_slot **slot_out);
void pmt_registry_leave(struct pmt_slot *slot);

/// pthread_atfork child handler: makes every registered region usable by
/// the one thread the child has.
void pmt_registry_after_fork(void);

/// Whether the island estimate has reached the VMA budget (region.c).
bool pmt_vma_budget_exceeded(void);

#endif
