// The SIGSEGV handler: the write-tracking fault path, and chaining to the
// handler that was installed before ours.
//
// Everything the handler runs is async-signal-safe: atomics, futex,
// mprotect, sigaction, sigprocmask. No malloc, no locks other than block
// locks, no Swift. Installing it (pmt_install_handler) is not: it uses
// pthread_once, and is never called from a signal handler.
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

// MARK: Fault path

static inline void pause_at(pmt_region *region, pmt_fault_step step, uint64_t block) {
    pmt_fault_hook hook = atomic_load_explicit(&region->fault_hook, memory_order_acquire);
    if (__builtin_expect(hook != NULL, 0)) hook(region->fault_hook_context, step, block);
}

/// The fault path's mprotect to PROT_READ | PROT_WRITE, or the failure a
/// test injected (pmt_region_inject_fault_mprotect_failures): -1 with errno
/// set, as mprotect fails.
static inline int make_writable(pmt_region *region, void *start, size_t length) {
    if (__builtin_expect(atomic_load_explicit(&region->injected_mprotect_failures, memory_order_relaxed) != 0, 0)) {
        uint32_t left = atomic_load_explicit(&region->injected_mprotect_failures, memory_order_acquire);
        while (left != 0 && !atomic_compare_exchange_weak_explicit(&region->injected_mprotect_failures, &left, left - 1,
                                                                   memory_order_acquire, memory_order_acquire)) {}
        if (left != 0) {
            errno = atomic_load_explicit(&region->injected_mprotect_errno, memory_order_relaxed);
            return -1;
        }
    }
    return mprotect(start, length, PROT_READ | PROT_WRITE);
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
    bool ok = make_writable(region, (void *)region->base, region->length) == 0;
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
    int rc = make_writable(region, start, protect_length(region, lo, hi - lo));
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
    int rc = make_writable(region, start, protect_length(region, block, 1));
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

void pmt_region_inject_fault_mprotect_failures(pmt_region *region, int error, uint32_t count) {
    atomic_store_explicit(&region->injected_mprotect_errno, error, memory_order_relaxed);
    // Release: a fault that sees the count sees the errno.
    atomic_store_explicit(&region->injected_mprotect_failures, count, memory_order_release);
}

uint32_t pmt_region_injected_fault_mprotect_failures(const pmt_region *region) {
    return atomic_load(&region->injected_mprotect_failures);
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

// MARK: Installing

/// The synchronous signals: those the kernel raises on the thread whose
/// instruction caused them (a bad access, SIGSEGV or SIGBUS; an illegal or
/// privileged instruction, SIGILL; an arithmetic trap, SIGFPE; a breakpoint
/// or single step, SIGTRAP; a system call refused by seccomp, SIGSYS).
///
/// This one list serves both places that block signals while holding a block
/// lock: the handler's sa_mask, and the sync engine's and pin's mask
/// (System.blockAsyncSignals, through pmt_fill_async_signals). Every other
/// signal is asynchronous and blocked there, so that an application handler
/// that stores to a block this thread has locked cannot run and wait for that
/// lock for ever. These six stay deliverable because they cannot wait:
/// blocking one does not defer it, the kernel unblocks it, resets it to the
/// default action and the process dies (Linux's force_sig_info), so an
/// application's own handler for it, or ours, would never run. And SIGSEGV
/// must reach our handler even inside it: a chained handler's store to a
/// tracked block is a fault we track (SA_NODEFER).
static const int synchronous_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};

void pmt_fill_async_signals(sigset_t *set) {
    sigfillset(set);
    for (unsigned i = 0; i < sizeof synchronous_signals / sizeof *synchronous_signals; i++)
        sigdelset(set, synchronous_signals[i]);
}

/// The outcome of the one installation attempt: 0, or the errno it failed
/// with. Written by install_once inside pthread_once, which orders that
/// write before the return of every pthread_once call, in every thread.
static int install_error;
static pthread_once_t install_once_control = PTHREAD_ONCE_INIT;
static _Atomic(pmt_install_hook) install_hook;

void pmt_set_install_hook(pmt_install_hook hook) { atomic_store(&install_hook, hook); }

static void install_once(void) {
    pmt_install_hook hook = atomic_load(&install_hook);
    if (hook != NULL) {
        int injected = hook();
        if (injected != 0) {
            install_error = injected;
            return;
        }
    }
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_segv;
    // SA_ONSTACK: Go and Swift run handlers on the alternate stack.
    // SA_NODEFER: a fault inside a chained handler must still reach it.
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_NODEFER;
    // Every asynchronous signal blocked while we may hold a block lock.
    pmt_fill_async_signals(&ours.sa_mask);
    install_error = sigaction(SIGSEGV, &ours, &previous) == 0 ? 0 : errno;
}

/// One attempt per process, whatever its outcome. pthread_once runs
/// install_once in exactly one caller, however many call at once; callers
/// that arrive while it runs wait for it to return, and every caller, then
/// or later, reads the same install_error.
///
/// A failure is reported again, not retried. With a valid action,
/// sigaction(SIGSEGV) fails only with EINVAL or EFAULT, conditions of the
/// process that a second attempt would meet again, so a retry would gain
/// nothing and would give callers different answers: one per attempt, with
/// attempts to tell apart for the callers that waited on each. One outcome
/// per process means no caller is told the handler is installed while
/// another is told it is not, and `previous` is written by one sigaction.
int pmt_install_handler(void) {
    int rc = pthread_once(&install_once_control, install_once);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    if (install_error != 0) {
        errno = install_error;
        return -1;
    }
    return 0;
}
