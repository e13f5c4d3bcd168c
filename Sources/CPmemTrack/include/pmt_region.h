// Tracked regions and the registry the fault handler searches.
//
// "Async-signal-safe", here and in the other headers of this directory,
// means safe to call from a signal handler on Linux with glibc: the function
// uses only atomics, functions POSIX lists as async-signal-safe, system calls
// that glibc passes straight to the kernel without locks or allocation (such
// as mprotect, madvise, mmap, munmap, mincore, ioctl, futex through syscall),
// and sysconf(_SC_PAGESIZE), which glibc answers from a value it keeps. The
// fault handler relies on the same.
#ifndef PMT_REGION_H
#define PMT_REGION_H

#include "pmt_index.h"
#include <signal.h>
#include <stdatomic.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Test-only pause points on the fault path (see pmt_set_fault_hook).
typedef enum {
    PMT_FAULT_LOCKED = 0,   // the block lock is held, DIRTY not yet set
    PMT_FAULT_DIRTIED = 1,  // DIRTY is set, the block is still read-only
} pmt_fault_step;

typedef void (*pmt_fault_hook)(void *context, pmt_fault_step step, uint64_t block);

/// One tracked mapping as the fault handler sees it. Owned by the Swift
/// TrackedMapping; the handler reads it only while registered.
typedef struct pmt_region {
    uintptr_t base;
    size_t length;            // bytes mapped, a multiple of the page size
    unsigned block_shift;     // log2 of the block size
    uint64_t nblocks;
    pmt_index *index;
    _Atomic uint64_t write_faults;     // faults that dirtied a block
    _Atomic uint64_t degraded_events;  // times mprotect failed with ENOMEM
                                       // and the whole region went writable
    /// Estimate of this region's writable islands (maximal runs of writable
    /// blocks), each of which costs the process at most 2 VMAs. Faults add
    /// to it; syncs recount it from the DIRTY runs.
    _Atomic int64_t islands;
    /// Blocks made writable and DIRTY by coarsening, beyond the faulting one.
    _Atomic uint64_t coarsened_blocks;
    _Atomic(pmt_fault_hook) fault_hook;
    void *fault_hook_context;
    /// Test-only: run the fault path without the block lock (a broken
    /// protocol, to prove the tests catch it). Never set in production.
    bool mutant_unlocked_fault;
    /// Test-only (pmt_region_inject_fault_mprotect_failures): how many more
    /// of the fault path's mprotect calls fail without running, and with
    /// which errno. Zero in production: one predictable branch per call.
    _Atomic uint32_t injected_mprotect_failures;
    _Atomic int injected_mprotect_errno;
    /// Whether the SIGSEGV handler tracks this region's writes (the
    /// mprotect backend). A region of the userfaultfd backend is registered
    /// only so that fork resets its block locks: its write faults are the
    /// kernel's, and a SIGSEGV in it is never ours.
    bool handles_faults;
} pmt_region;

/// Allocates a region record. NULL on ENOMEM.
/// `handles_faults`: whether the SIGSEGV handler tracks its writes.
/// Not async-signal-safe: calloc.
pmt_region *pmt_region_create(uintptr_t base, size_t length, unsigned block_shift, pmt_index *index,
                              bool handles_faults);
/// Frees it. It must not be registered.
/// Not async-signal-safe: free.
void pmt_region_destroy(pmt_region *region);
/// The region's counters (see the fields above). Async-signal-safe.
uint64_t pmt_region_write_faults(const pmt_region *region);
uint64_t pmt_region_degraded_events(const pmt_region *region);
uint64_t pmt_region_coarsened_blocks(const pmt_region *region);

// MARK: VMA budget
//
// Every writable island inside a read-only mapping splits a kernel VMA, and
// vm.max_map_count limits the VMAs of the whole process. PmemTrack keeps an
// estimate of its islands across all regions (syncs recount it). Once it reaches the
// budget, a write fault does not open a new island: it extends the nearest
// DIRTY island in the smallest aligned group of 64^k blocks that has one
// (coarsening), so the estimate can no longer grow but by one per region.

/// Sets the budget, in VMAs, for all regions together, and reads it back
/// (UINT64_MAX until one is set). Async-signal-safe.
void pmt_set_vma_budget(uint64_t vmas);
uint64_t pmt_vma_budget(void);
/// Replaces a region's island estimate with an exact count (after a full
/// sync), or adjusts it by a delta (after a ranged sync, and in the fault
/// handler). Async-signal-safe.
void pmt_region_set_islands(pmt_region *region, int64_t islands);
void pmt_region_add_islands(pmt_region *region, int64_t delta);

/// Capacity of the registry: regions tracked at once in one process.
#define PMT_REGISTRY_SLOTS 1024

/// Publishes `region` to the fault handler and to the fork handler. The
/// first call installs the pthread_atfork child handler, which makes every
/// registered region's index usable by the child's one thread and advances
/// pmt_fork_generation. Returns 0, or -1 with errno: ENOSPC when every slot
/// is taken, ENOMEM if the fork handler could not be installed.
/// Not async-signal-safe: the first call runs pthread_once and
/// pthread_atfork, which allocates.
int pmt_register(pmt_region *region);

/// How many fork()s this process descends from since the first
/// pmt_register: the child handler adds one. A backend whose kernel state
/// does not survive fork (userfaultfd) compares it to notice it is in a child.
/// Async-signal-safe.
uint64_t pmt_fork_generation(void);

/// Withdraws `region` and returns once no fault handler is still reading it;
/// after that the caller may free it (pmt_region_destroy, which is not
/// async-signal-safe). Async-signal-safe: atomics, and sched_yield while
/// fault handlers still inside the region finish.
void pmt_unregister(pmt_region *region);

/// Slots in use now. For leak tests. Async-signal-safe.
unsigned pmt_registry_count(void);

/// Installs the SIGSEGV handler once per process, saving the previous
/// action to chain to. Returns 0, or -1 with errno.
///
/// There is one installation attempt per process, and every caller gets its
/// outcome: callers that arrive while it is in progress wait for it, and
/// callers after it returns get the same result without trying again. A
/// failed attempt (errno from sigaction, or from the test hook below) is not
/// retried: sigaction(SIGSEGV) with a valid action fails only with EINVAL or
/// EFAULT, which no retry cures (see handler.c).
///
/// Not async-signal-safe: pthread_once. Never called from a signal handler;
/// like any pthread_once, it must not be called in the child of a fork()
/// made while another thread was inside it.
int pmt_install_handler(void);

/// Test-only: a function the installation attempt calls first. A non-zero
/// return is taken as the errno of a failed sigaction: the attempt fails with
/// it and installs nothing. Set it (or clear it with NULL) before the first
/// pmt_install_handler of the process, which is the only attempt; tests use
/// a fresh process. Async-signal-safe (an atomic store).
typedef int (*pmt_install_hook)(void);
void pmt_set_install_hook(pmt_install_hook hook);

/// Fills `set` with every signal except the synchronous ones, which are
/// listed once, with the reasons, in handler.c: the mask the fault handler
/// runs with, and the one the sync engine and pins block while they hold
/// block locks. Async-signal-safe (sigfillset, sigdelset).
void pmt_fill_async_signals(sigset_t *set);

/// Runs the fault path for `addr` in the calling thread, exactly as the
/// handler would for a write fault: returns 1 if the address belongs to a
/// registered region and the block was made writable, 0 if not ours, -1 if
/// mprotect failed beyond recovery. Async-signal-safe: it is the handler's
/// own path (atomics, futex, mprotect).
int pmt_handle_write_fault(uintptr_t addr);

/// Sets or clears (NULL) a test-only hook the fault path calls at each
/// pmt_fault_step. Release builds still call it through one predictable
/// branch on a NULL pointer. Async-signal-safe.
void pmt_set_fault_hook(pmt_region *region, pmt_fault_hook hook, void *context);

/// Test-only: the next `count` mprotect calls that the fault path makes for
/// this region fail with `error` instead of running: the block's own, and
/// those of coarsening and of the degrade that follows an ENOMEM, in that
/// order (so count 1 with ENOMEM fails the block's call and lets the degrade
/// run; count 2 fails the degrade too). Count 0 clears it. The system-call
/// layer's injection (System.withInjectedFailures) cannot reach these calls:
/// they are made in C, in the signal handler. Release builds keep the check:
/// one predictable branch on a counter that is zero. Async-signal-safe
/// (atomics).
void pmt_region_inject_fault_mprotect_failures(pmt_region *region, int error, uint32_t count);
/// How many of the failures injected above are still to come.
/// Async-signal-safe.
uint32_t pmt_region_injected_fault_mprotect_failures(const pmt_region *region);

#ifdef __cplusplus
}
#endif

#endif
