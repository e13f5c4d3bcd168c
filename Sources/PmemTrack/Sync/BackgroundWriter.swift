import Foundation

/// The time base of background writeback. Tests substitute a clock they
/// advance by hand, so that no test waits for real time to pass.
protocol WritebackClock: Sendable {
    /// Time since an arbitrary, fixed origin.
    var now: Duration { get }
    /// Waits on `condition`, which the caller has locked, until `deadline`,
    /// a signal, or a spurious wakeup; the caller re-checks.
    func wait(_ condition: NSCondition, until deadline: Duration)
}

/// The real clock.
struct ContinuousWritebackClock: WritebackClock {
    private let origin = ContinuousClock.now

    var now: Duration { ContinuousClock.now - origin }

    func wait(_ condition: NSCondition, until deadline: Duration) {
        let remaining = (deadline - now).components
        let seconds = Double(remaining.seconds) + Double(remaining.attoseconds) / 1e18
        _ = condition.wait(until: Date(timeIntervalSinceNow: max(seconds, 0)))
    }
}

/// One mapping's background writeback thread (see ``TrackedMapping/Writeback``).
///
/// Every `interval` (half the maximum dirty age) it runs a whole-mapping
/// sync; with a dirty-byte limit it also polls the dirty count eight times
/// per interval and syncs at once above the limit. It holds the mapping
/// weakly, and strongly only during a pass, so the mapping can go away; the
/// mapping stops it (and waits for it) before it closes.
final class BackgroundWriter: @unchecked Sendable {
    let interval: Duration
    let dirtyByteLimit: Int?
    let clock: any WritebackClock
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var stopping = false
    private var passesDone = 0
    private var thread: pthread_t?
    weak var mapping: TrackedMapping?

    /// When the first pass is due: an interval after the writer was made,
    /// not after its thread happens to start.
    private let firstPass: Duration

    init(interval: Duration, dirtyByteLimit: Int?, clock: any WritebackClock) {
        self.interval = interval
        self.dirtyByteLimit = dirtyByteLimit
        self.clock = clock
        firstPass = clock.now + interval
    }

    /// Starts the thread; false if the system refused one.
    func start() -> Bool {
        guard let thread = System.startThread({ self.loop() }) else { return false }
        self.thread = thread
        return true
    }

    /// Stops the thread and waits for it: a pass in progress finishes first.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        let thread = self.thread
        condition.unlock()
        if let thread { pthread_join(thread, nil) }
        condition.lock()
        self.thread = nil
        condition.unlock()
    }

    /// Whether the thread runs (until ``stop()``).
    var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return thread != nil
    }

    /// Waits until `count` passes (each a sync, successful or not) are done;
    /// false after `seconds` of real time.
    func waitForPasses(_ count: Int, seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while passesDone < count { if !condition.wait(until: deadline) { return passesDone >= count } }
        return true
    }

    private func loop() {
        // Polls and passes follow a schedule fixed when the writer was made,
        // however late its thread starts or long a pass takes.
        let poll = dirtyByteLimit == nil ? interval : interval / 8
        var nextPass = firstPass
        var nextPoll = firstPass - interval + poll
        condition.lock()
        while !stopping {
            let wake = min(nextPass, nextPoll)
            while !stopping && clock.now < wake { clock.wait(condition, until: wake) }
            if stopping { break }
            condition.unlock()
            // Unlocked: stop() may be waiting to tell us to finish.
            let started = clock.now
            let due = started >= nextPass || (started >= nextPoll && overLimit())
            if due { pass() }
            condition.lock()
            while nextPoll <= started { nextPoll += poll }
            if due {
                passesDone += 1
                // Passes start at most an interval apart, however long one takes.
                nextPass = started + interval
                condition.broadcast()
            }
        }
        condition.unlock()
    }

    private func overLimit() -> Bool {
        guard let dirtyByteLimit, let mapping else { return false }
        return mapping.statistics.dirtyBlocks * mapping.blockSize > dirtyByteLimit
    }

    private func pass() {
        guard let mapping else { return }
        mapping.backgroundSync()
    }
}
