import Foundation

/// A progress line on standard error for runs longer than a second: updated
/// in place on a terminal, a plain line every few seconds otherwise, so that
/// logs stay readable. Silent for short runs.
struct ProgressLine {
    private let label: String
    private let total: Int
    private let unit: String
    private let sampleEvery: Int
    private let start = ContinuousClock.now
    private var lastShown: ContinuousClock.Instant?
    private let interactive = isatty(STDERR_FILENO) == 1
    private(set) var shown = false

    /// - Parameters:
    ///   - unit: What `done` counts.
    ///   - sampleEvery: Look at the clock only every so many; 1 where each
    ///     step is long.
    init(label: String, total: Int, unit: String = "ops", sampleEvery: Int = 1024) {
        self.label = label
        self.total = total
        self.unit = unit
        self.sampleEvery = sampleEvery
    }

    /// Call often; it looks at the clock only every `sampleEvery` steps.
    mutating func update(done: Int, detail: String = "") {
        guard done % sampleEvery == 0 else { return }
        let now = ContinuousClock.now
        let elapsed = (now - start).seconds
        let interval = interactive ? 0.25 : 5.0
        guard elapsed >= 1, lastShown.map({ (now - $0).seconds >= interval }) ?? true else { return }
        lastShown = now
        shown = true
        let rate = Double(done) / elapsed
        let line = String(format: "%@ %3.0f%%  %@/%@ %@  %@ %@/s%@", label, Double(done) / Double(total) * 100,
                          Report.grouped(done), Report.grouped(total), unit, Report.grouped(Int(rate)), unit,
                          detail.isEmpty ? "" : "  " + detail)
        FileHandle.standardError.write(Data((interactive ? "\r\(line)" : "\(line)\n").utf8))
    }

    /// Clears the line on a terminal.
    func finish() {
        guard shown, interactive else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
