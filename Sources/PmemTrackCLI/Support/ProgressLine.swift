import Foundation

/// A progress line on standard error for runs longer than a second: updated
/// in place on a terminal, a plain line every few seconds otherwise, so that
/// logs stay readable. Silent for short runs.
struct ProgressLine {
    private let label: String
    private let total: Int
    private let start = ContinuousClock.now
    private var lastShown: ContinuousClock.Instant?
    private let interactive = isatty(STDERR_FILENO) == 1
    private(set) var shown = false

    init(label: String, total: Int) {
        self.label = label
        self.total = total
    }

    /// Call often; it looks at the clock only every 1024 operations.
    mutating func update(done: Int) {
        guard done & 1023 == 0 else { return }
        let now = ContinuousClock.now
        let elapsed = (now - start).seconds
        let interval = interactive ? 0.25 : 5.0
        guard elapsed >= 1, lastShown.map({ (now - $0).seconds >= interval }) ?? true else { return }
        lastShown = now
        shown = true
        let rate = Double(done) / elapsed
        let line = String(format: "%@ %3.0f%%  %@/%@ ops  %@ ops/s", label, Double(done) / Double(total) * 100,
                          Report.grouped(done), Report.grouped(total), Report.grouped(Int(rate)))
        FileHandle.standardError.write(Data((interactive ? "\r\(line)" : "\(line)\n").utf8))
    }

    /// Clears the line on a terminal.
    func finish() {
        guard shown, interactive else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
