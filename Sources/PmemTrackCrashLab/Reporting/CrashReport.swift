/// What an exploration found and how far it got.
public struct CrashReport<Acknowledgement: Hashable & Sendable>: Sendable, CustomStringConvertible {
    public enum Verdict: String, Hashable, Sendable {
        /// Every crash point was explored with the strategy, and every image passed.
        case passed
        /// At least one image broke a promise: see ``CrashReport/failures``.
        case failed
        /// No image failed, but the budget ended the exploration, or the
        /// strategy generated nothing for some crash point: not a pass.
        case notMeasured
    }

    public let model: CrashModel
    public let strategy: CrashStrategy
    public let verdict: Verdict
    /// One per cause, minimised, in the order first found.
    public let failures: [CrashFailure<Acknowledgement>]
    /// One per crash point explored, in recording order.
    public let coverage: [PointCoverage]
    /// Crash points in the recording; ``coverage`` is shorter when the budget ran out.
    public let pointsRecorded: Int
    /// Images checked, and images skipped because an identical one was checked.
    public let imagesChecked: Int
    public let duplicatesSkipped: Int
    /// Checks run to minimise failures, beyond ``imagesChecked``.
    public let minimisationChecks: Int
    /// Why exploration stopped early, if it did.
    public let budgetCut: String?

    /// What happened at one crash point.
    public struct PointCoverage: Hashable, Sendable {
        public let point: CrashPoint
        /// What ran: "exhaustive", a combination of strategies, or "snapshot".
        public let strategy: String
        /// Uncertain units at the point.
        public let units: Int
        public let imagesChecked: Int
        public let duplicatesSkipped: Int
        /// Whether every image the model allows was checked (or skipped as a duplicate).
        public let complete: Bool
        /// Whether the budget ended exploration inside this point.
        public let cut: Bool
    }

    /// A few lines: verdict, counts, coverage by strategy, and each failure.
    public var description: String {
        var lines = ["crash lab, model \(model), strategy \(strategy): \(verdict)"]
        lines.append(
            "  \(coverage.count) of \(pointsRecorded) crash points explored; \(imagesChecked) images checked, "
                + "\(duplicatesSkipped) duplicates skipped, \(minimisationChecks) checks to minimise")
        var byStrategy: [String: (points: Int, maxUnits: Int)] = [:]
        for entry in coverage {
            let current = byStrategy[entry.strategy, default: (0, 0)]
            byStrategy[entry.strategy] = (current.points + 1, max(current.maxUnits, entry.units))
        }
        for (name, stats) in byStrategy.sorted(by: { $0.value.points > $1.value.points }) {
            lines.append("  \(name) at \(stats.points) crash points, n up to \(stats.maxUnits)")
        }
        if let budgetCut { lines.append("  stopped: \(budgetCut)") }
        for failure in failures { lines.append(failure.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")) }
        return lines.joined(separator: "\n")
    }
}

/// One cause of failure, with its smallest failing image.
public struct CrashFailure<Acknowledgement: Hashable & Sendable>: Sendable, CustomStringConvertible {
    /// The first crash point where it was found.
    public let point: CrashPoint
    /// What the check threw.
    public let message: String
    /// Units whose presence the failure needs (removing any one of them from
    /// the image makes it pass).
    public let present: [CrashUnit]
    /// Units whose absence the failure needs.
    public let absent: [CrashUnit]
    /// Acknowledged since the last sync that completed before the point:
    /// the promises the image puts at risk.
    public let acknowledgedAtRisk: [Acknowledgement]
    /// Begun and not acknowledged at the point.
    public let inFlight: [Acknowledgement]
    /// Re-runs the minimised image: ``CrashLab/replay(_:check:)``.
    public let replayID: CrashStateID
    /// Images of this cause seen while exploring.
    public let occurrences: Int

    public var description: String {
        func list(_ units: [CrashUnit]) -> String { units.isEmpty ? "none" : units.map(\.description).joined(separator: ", ") }
        func names(_ operations: [Acknowledgement]) -> String {
            operations.isEmpty ? "none" : operations.map { "\($0)" }.joined(separator: ", ")
        }
        return """
            FAILURE at crash point \(point): \(message)
              present: \(list(present))
              absent: \(list(absent))
              acknowledged at risk: \(names(acknowledgedAtRisk)); in flight: \(names(inFlight))
              \(occurrences) image(s); replay: \(replayID)
            """
    }
}
