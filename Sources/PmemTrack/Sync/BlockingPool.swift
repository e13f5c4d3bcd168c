#if canImport(Glibc)
import Glibc
#endif

/// PmemTrack's own threads for blocking work started from async code: a
/// sync waits in `fdatasync` or cache flushes, and doing that on one of the
/// cooperative pool's few threads would stall every task scheduled there.
///
/// Threads start on demand, when a job arrives and none is idle, up to
/// ``maximumThreads``; beyond that, jobs queue in arrival order. Idle threads
/// stay for the next job. The pool is process-wide and never shuts down.
final class BlockingPool: @unchecked Sendable {
    static let shared = BlockingPool(maximumThreads: 64)

    let maximumThreads: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var jobs: [@Sendable () -> Void] = []
    private var threads = 0
    private var idle = 0

    init(maximumThreads: Int) {
        self.maximumThreads = maximumThreads
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    /// Runs `job` on a pool thread.
    func run(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        jobs.append(job)
        // Each waiting thread takes one queued job when it wakes, and one
        // signalled a moment ago may not have taken its job yet: start a
        // thread whenever queued jobs outnumber waiting threads. (Comparing
        // `idle` with 0 alone would let two jobs share one waking thread,
        // and a job that blocks would hold the other back.)
        let start = jobs.count > idle && threads < maximumThreads
        if start { threads += 1 }
        if idle > 0 { pthread_cond_signal(wake) }
        pthread_mutex_unlock(mutex)
        if start { startThread() }
    }

    private func startThread() {
        guard let thread = System.startThread({ self.work() }) else {
            // No thread: run the job here rather than lose it. The caller is
            // then blocked for the job's length, which is what a sync
            // without this pool would do.
            pthread_mutex_lock(mutex)
            threads -= 1
            let job = jobs.isEmpty ? nil : jobs.removeFirst()
            pthread_mutex_unlock(mutex)
            job?()
            return
        }
        pthread_detach(thread)
    }

    private func work() {
        pthread_mutex_lock(mutex)
        while true {
            while jobs.isEmpty {
                idle += 1
                pthread_cond_wait(wake, mutex)
                idle -= 1
            }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(mutex)
            job()
            pthread_mutex_lock(mutex)
        }
    }
}
