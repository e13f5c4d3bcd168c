// The SIGSEGV handler: the write-tracking fault path, and chaining to the
// handler that was installed before ours.
//
// Everything here is async-signal-safe: atomics, futex, mprotect, sigaction,
// sigprocmask. No malloc, no locks other than block locks, no Swift.
#include "pmt_lock.h"
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#if defined(__aarch64__)
#include <asm/sigcontext.h>
#endif

static struct sigaction previous;
/// Set when the previous handler asked for SA_RESETHAND and has run once:
/// from then on we chain as if it were SIG_DFL, as the kernel would have.
static _Atomic bool previous_was_reset;
static _Atomic int install_state;   // 0 none, 1 installing, 2 installed

// MARK: Fault path

static inline void pause_at(pmt_region *region, pmt_fault_step step, uint64_t block) {
    pmt_fault_hook hook = atomic_load_explicit(&region->fault_hook, memory_order_acquire);
    if (__builtin_expect(hook != NULL, 0)) hook(region->fault_hook_context, step, block);
}

static inline size_t protect_length(const pmt_region *region, uint64_t first, uint64_t count) {
    size_t start = (size_t)first << region->block_shift;
    size_t end = (size_t)(first + count) << region->block_shift;
    // The last block may extend past the mapping when the file length is
    // not a multiple of the block size.
    return (end < region->length ? end : region->length) - start;
}

/// mprotect failed with ENOMEM: the process is out of VMAs (vm.max_map_count)
/// and this block's boundaries would need new ones. Stop tracking
/// precisely: under every block lock, mark all blocks DIRTY and make the
/// whole region writable. One protection over the region merges its VMAs, so
/// this call needs no new one. Sync flushes everything and re-protects what
/// it can. Returns false if even that failed.
static bool degrade(pmt_region *region) {
    pmt_lock_range(region->index, 0, region->nblocks);
    // DIRTY before writable, as on the normal path.
    pmt_index_set_range(region->index, PMT_TAG_DIRTY, 0, region->nblocks);
    bool ok = mprotect((void *)region->base, region->length, PROT_READ | PROT_WRITE) == 0;
    if (ok) atomic_fetch_add(&region->degraded_events, 1);
    pmt_unlock_range(region->index, 0, region->nblocks);
    return ok;
}

/// Under VMA pressure: instead of opening a new writable island at
/// `block`, extend the nearest DIRTY island in the smallest aligned group
/// of 64, 4096, ... blocks that has one, and make the whole stretch DIRTY
/// and writable. Returns 1 if done, 0 if the region has no DIRTY block at
/// all (a new island is then unavoidable), -1 if mprotect failed.
static int coarsen(pmt_region *region, uint64_t block) {
    pmt_index *index = region->index;
    const unsigned dirty = 1u << PMT_TAG_DIRTY;
    uint64_t lo = 0, hi = 0;
    for (uint64_t span = 64;; span *= 64) {
        uint64_t start = block / span * span;
        uint64_t end = start + span < region->nblocks ? start + span : region->nblocks;
        // The nearest dirty block on either side within the group: the
        // stretch between it and this block is clean, so every block the
        // stretch adds is one that coarsening made dirty.
        uint64_t above = pmt_index_find_set(index, dirty, block + 1, end);
        uint64_t below = pmt_index_find_set_last(index, dirty, start, block);
        bool has_above = above < end, has_below = below < block;
        if (has_above && (!has_below || above - block <= block - below)) { lo = block; hi = above; break; }
        if (has_below) { lo = below + 1; hi = block + 1; break; }
        if (start == 0 && end == region->nblocks) return 0;
    }
    // The same order as a single block, over the stretch, ascending; we
    // hold no other lock.
    pmt_lock_range(index, lo, hi - lo);
    pmt_index_set_range(index, PMT_TAG_DIRTY, lo, hi - lo);
    void *start = (void *)(region->base + ((size_t)lo << region->block_shift));
    int rc = mprotect(start, protect_length(region, lo, hi - lo), PROT_READ | PROT_WRITE);
    int err = errno;
    if (rc == 0) {
        atomic_fetch_add(&region->write_faults, 1);
        atomic_fetch_add(&region->coarsened_blocks, hi - lo - 1);
    }
    pmt_unlock_range(index, lo, hi - lo);
    if (rc == 0) return 1;
    return err == ENOMEM && degrade(region) ? 1 : -1;
}

/// The fault path. Order: lock → DIRTY → writable → unlock. Making the
/// block writable only after DIRTY is set, and only under the lock that sync
/// holds from write-protect to clearing DIRTY, is what closes the 2016 DAX
/// race: a sync can never clear DIRTY between our DIRTY and our mprotect.
static int handle_in_region(pmt_region *region, uintptr_t addr) {
    uint64_t block = (addr - region->base) >> region->block_shift;
    if (pmt_vma_budget_exceeded()) {
        int rc = coarsen(region, block);
        if (rc != 0) return rc;
    }
    bool locking = !region->mutant_unlocked_fault;
    // Lock: waits if a sync is between write-protect and clearing DIRTY.
    if (locking) pmt_lock_block(region->index, block);
    pause_at(region, PMT_FAULT_LOCKED, block);
    // A new island unless the block or a neighbour is DIRTY already. The
    // neighbours are read without their locks, and a DIRTY neighbour may be
    // read-only after a failed flush, so the estimate can be off by the
    // faults that race or follow such failures; every sync recounts it.
    bool new_island = !pmt_index_test(region->index, PMT_TAG_DIRTY, block) &&
                      !(block > 0 && pmt_index_test(region->index, PMT_TAG_DIRTY, block - 1)) &&
                      !(block + 1 < region->nblocks && pmt_index_test(region->index, PMT_TAG_DIRTY, block + 1));
    // DIRTY first: a writable block must always be DIRTY.
    pmt_index_set(region->index, PMT_TAG_DIRTY, block);
    pause_at(region, PMT_FAULT_DIRTIED, block);
    // Writable unconditionally, even if DIRTY was already set: a block whose
    // flush failed stays DIRTY but was write-protected.
    void *start = (void *)(region->base + ((size_t)block << region->block_shift));
    int rc = mprotect(start, protect_length(region, block, 1), PROT_READ | PROT_WRITE);
    int err = errno;
    if (rc == 0) {
        atomic_fetch_add(&region->write_faults, 1);
        if (new_island) pmt_region_add_islands(region, 1);
    }
    if (locking) pmt_unlock_block(region->index, block);
    if (rc == 0) return 1;
    // Release our lock before taking all of them, to keep lock order.
    if (err == ENOMEM && degrade(region)) return 1;
    return -1;
}

int pmt_handle_write_fault(uintptr_t addr) {
    struct pmt_slot *slot;
    pmt_region *region = pmt_registry_enter(addr, &slot);
    if (region == NULL) return 0;
    int rc = region->handles_faults ? handle_in_region(region, addr) : 0;
    pmt_registry_leave(slot);
    return rc;
}

void pmt_set_fault_hook(pmt_region *region, pmt_fault_hook hook, void *context) {
    region->fault_hook_context = context;
    atomic_store_explicit(&region->fault_hook, hook, memory_order_release);
}

// MARK: Classifying the fault

/// True when the faulting access was a store. A load never faults on our
/// PROT_READ blocks, but an instruction fetch does (SEGV_ACCERR too), and
/// must not be taken for a write or it would fault forever.
static bool is_write(const ucontext_t *uc) {
#if defined(__x86_64__)
    // Page-fault error code, bit 1: the access was a write (Intel SDM 4.7).
    return (uc->uc_mcontext.gregs[REG_ERR] & 0x2) != 0;
#elif defined(__aarch64__)
    // ESR_EL1 arrives in an esr_context record; WnR is bit 6 for data aborts.
    const struct _aarch64_ctx *ctx = (const void *)uc->uc_mcontext.__reserved;
    while (ctx->magic != 0) {
        if (ctx->magic == ESR_MAGIC) return (((const struct esr_context *)ctx)->esr >> 6) & 1;
        ctx = (const void *)((const char *)ctx + ctx->size);
    }
    return true;
#else
    (void)uc;
    return true;
#endif
}

// MARK: Chaining

/// Hands a fault that is not ours to the previous handler, as the kernel
/// would have delivered it: with the pre-signal mask plus its sa_mask (plus
/// the signal unless SA_NODEFER), in its own calling convention.
static void chain(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    bool reset = atomic_load(&previous_was_reset);
    void (*plain)(int) = previous.sa_handler;
    if (reset || (!(previous.sa_flags & SA_SIGINFO) && (plain == SIG_DFL || plain == SIG_IGN))) {
        // Default action. An ignored synchronous SIGSEGV cannot be ignored
        // either: the kernel then forces the default, and so do we. Restore
        // it and return; the access repeats and the default action happens.
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        return;
    }
    if (previous.sa_flags & SA_RESETHAND) atomic_store(&previous_was_reset, true);
    sigset_t mask = uc->uc_sigmask, saved;
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&previous.sa_mask, s) == 1) sigaddset(&mask, s);
    if (!(previous.sa_flags & SA_NODEFER)) sigaddset(&mask, sig);
    sigprocmask(SIG_SETMASK, &mask, &saved);
    if (previous.sa_flags & SA_SIGINFO)
        previous.sa_sigaction(sig, info, context);
    else
        plain(sig);
    sigprocmask(SIG_SETMASK, &saved, NULL);
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    int saved_errno = errno;
    // Ours only if: an access error (not an unmapped address) that was a
    // store, inside a registered region.
    if (info->si_code == SEGV_ACCERR && is_write(context)) {
        int rc = pmt_handle_write_fault((uintptr_t)info->si_addr);
        if (rc == 1) {
            errno = saved_errno;
            return;   // the store is retried and now succeeds
        }
    }
    errno = saved_errno;
    chain(sig, info, context);
}

int pmt_install_handler(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&install_state, &expected, 1)) {
        while (atomic_load(&install_state) == 1) {}
        return 0;
    }
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_segv;
    // SA_ONSTACK: Go and Swift run handlers on the alternate stack.
    // SA_NODEFER: a fault inside a chained handler must still reach it.
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_NODEFER;
    // Block every asynchronous signal while we hold a block lock: an
    // application handler that stores to the same block on this thread
    // would otherwise wait for a lock its own thread holds.
    sigfillset(&ours.sa_mask);
    int synchronous[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
    for (unsigned i = 0; i < sizeof synchronous / sizeof *synchronous; i++)
        sigdelset(&ours.sa_mask, synchronous[i]);
    if (sigaction(SIGSEGV, &ours, &previous) != 0) {
        int err = errno;
        atomic_store(&install_state, 0);
        errno = err;
        return -1;
    }
    atomic_store(&install_state, 2);
    return 0;
}
