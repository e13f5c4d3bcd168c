// The region registry: a fixed array of slots that the fault handler scans
// without locks.
//
// A slot publishes the address range before the region pointer. The handler
// matches the range, announces itself in the slot's reader count, and only
// then loads the pointer. Unregistering clears the pointer, then waits for
// the reader count to drain. With sequentially consistent atomics, a handler
// either loaded the pointer before it was cleared (and the unregistering
// thread sees its reader count and waits), or sees NULL.
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>

static struct pmt_slot slots[PMT_REGISTRY_SLOTS];
/// One past the highest slot ever used: the handler scans only that far.
static _Atomic unsigned high_water;

static _Atomic uint64_t fork_generation;
static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;
static int fork_handler_result;

/// The child of a fork keeps the mappings and a private copy of every
/// index; it must not inherit the parent's lock holders. Every backend
/// needs this, so it is installed with the first region, not with the
/// SIGSEGV handler.
static void install_fork_handler(void) {
    fork_handler_result = pthread_atfork(NULL, NULL, pmt_registry_after_fork);
}

uint64_t pmt_fork_generation(void) { return atomic_load(&fork_generation); }

int pmt_register(pmt_region *region) {
    pthread_once(&fork_handler_once, install_fork_handler);
    if (fork_handler_result != 0) {
        errno = ENOMEM;
        return -1;
    }
    for (unsigned i = 0; i < PMT_REGISTRY_SLOTS; i++) {
        pmt_region *expected = NULL;
        // Claim with a sentinel so the range can be written before the
        // handler can match the slot.
        if (!atomic_compare_exchange_strong(&slots[i].region, &expected, PMT_SLOT_CLAIMED)) continue;
        atomic_store(&slots[i].start, region->base);
        atomic_store(&slots[i].end, region->base + region->length);
        atomic_store(&slots[i].region, region);
        unsigned seen = atomic_load(&high_water);
        while (seen < i + 1 && !atomic_compare_exchange_weak(&high_water, &seen, i + 1)) {}
        return 0;
    }
    errno = ENOSPC;
    return -1;
}

void pmt_unregister(pmt_region *region) {
    for (unsigned i = 0; i < atomic_load(&high_water); i++) {
        if (atomic_load(&slots[i].region) != region) continue;
        atomic_store(&slots[i].end, 0);
        atomic_store(&slots[i].start, 0);
        atomic_store(&slots[i].region, PMT_SLOT_CLAIMED);
        // A handler inside this slot may be waiting for a block lock that a
        // sync holds; that sync finishes without us, so yielding is enough.
        while (atomic_load(&slots[i].readers) != 0) sched_yield();
        atomic_store(&slots[i].region, NULL);
        return;
    }
}

unsigned pmt_registry_count(void) {
    unsigned n = 0;
    for (unsigned i = 0; i < atomic_load(&high_water); i++) {
        pmt_region *r = atomic_load(&slots[i].region);
        if (r != NULL && r != PMT_SLOT_CLAIMED) n++;
    }
    return n;
}

pmt_region *pmt_registry_enter(uintptr_t addr, struct pmt_slot **slot_out) {
    unsigned n = atomic_load(&high_water);
    for (unsigned i = 0; i < n; i++) {
        struct pmt_slot *slot = &slots[i];
        if (addr < atomic_load(&slot->start) || addr >= atomic_load(&slot->end)) continue;
        atomic_fetch_add(&slot->readers, 1);
        pmt_region *r = atomic_load(&slot->region);
        // The slot may have been withdrawn, or reused, since the range check.
        if (r != NULL && r != PMT_SLOT_CLAIMED && addr >= r->base && addr - r->base < r->length) {
            *slot_out = slot;
            return r;
        }
        atomic_fetch_sub(&slot->readers, 1);
    }
    return NULL;
}

void pmt_registry_leave(struct pmt_slot *slot) { atomic_fetch_sub(&slot->readers, 1); }

void pmt_registry_after_fork(void) {
    atomic_fetch_add(&fork_generation, 1);
    for (unsigned i = 0; i < atomic_load(&high_water); i++) {
        // Readers were fault handlers on parent threads that do not exist here.
        atomic_store(&slots[i].readers, 0);
        pmt_region *r = atomic_load(&slots[i].region);
        if (r != NULL && r != PMT_SLOT_CLAIMED) pmt_index_after_fork(r->index);
    }
}
