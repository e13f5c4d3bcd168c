/// The state of one exploration: images seen, budget spent, failures by
/// cause, coverage by crash point.
struct Exploration<Acknowledgement: Hashable & Sendable> {
    let model: CrashModel
    let strategy: CrashStrategy
    let budget: CrashBudget
    private let started = ContinuousClock.now
    private var seen = Set<UInt64>()
    private var failures: [CrashFailure<Acknowledgement>] = []
    private var causes: [String: Int] = [:]
    private var coverage: [CrashReport<Acknowledgement>.PointCoverage] = []
    private(set) var imagesChecked = 0
    private var duplicatesSkipped = 0
    private var budgetCut: String?
    private var uncovered = 0

    init(model: CrashModel, strategy: CrashStrategy, budget: CrashBudget) {
        self.model = model
        self.strategy = strategy
        self.budget = budget
    }

    /// Explores one crash point; false once the budget has run out.
    mutating func explore(_ recorded: RecordedPoint, with explorer: Explorer<Acknowledgement>) -> Bool {
        let point = explorer.prepare(recorded)
        let n = point.units.count
        var images = 0
        var duplicates = 0
        var cut = false
        let visit = { (present: [Int], state: inout Exploration) -> Bool in
            if let reason = state.budgetExhausted() {
                state.budgetCut = "\(reason), at crash point \(recorded.point)"
                cut = true
                return false
            }
            guard state.seen.insert(explorer.hash(of: present, in: point)).inserted else {
                duplicates += 1
                state.duplicatesSkipped += 1
                return true
            }
            images += 1
            state.imagesChecked += 1
            if let error = explorer.run(present, in: point) { state.noteFailure(error, present: present, at: point, explorer) }
            return true
        }
        let name: String
        let complete: Bool
        if model.isSnapshotOnly {
            name = "snapshot"
            _ = visit([], &self)
            complete = !cut
        } else if n == 0 {
            // One image, the durable one, whatever the strategy.
            name = "exhaustive"
            _ = visit([], &self)
            complete = !cut
        } else {
            name = strategy.name(forUnits: n)
            strategy.forEachSubset(units: n, point: recorded.point.number) { visit($0, &self) }
            complete = strategy.isExhaustive(forUnits: n) && !cut
            if images + duplicates == 0 && !cut { uncovered += 1 }
        }
        coverage.append(
            .init(
                point: recorded.point, strategy: name, units: model.isSnapshotOnly ? 0 : n, imagesChecked: images,
                duplicatesSkipped: duplicates, complete: complete, cut: cut))
        return !cut
    }

    private func budgetExhausted() -> String? {
        if let limit = budget.images, imagesChecked >= limit { return "image budget of \(limit) spent" }
        if let limit = budget.time, ContinuousClock.now - started >= limit { return "time budget of \(limit) spent" }
        return nil
    }

    /// Failures with the same cause at the same call site are one failure;
    /// the first image of each is minimised while its point is prepared.
    private mutating func noteFailure(
        _ error: any Error, present: [Int], at point: Explorer<Acknowledgement>.Prepared,
        _ explorer: Explorer<Acknowledgement>
    ) {
        let cause = Self.cause(of: error)
        let key = point.recorded.point.site + "|" + cause
        if let index = causes[key] {
            failures[index] = failures[index].counted()
            return
        }
        causes[key] = failures.count
        let all = Array(point.units.indices)
        var needed: [Int] = []
        var missing: [Int] = []
        var replay = present
        if !model.isSnapshotOnly {
            let fails = { (subset: [Int]) -> Bool in
                explorer.run(subset, in: point).map { Self.cause(of: $0) == cause } ?? false
            }
            needed = minimalFailingSubset(present, fails: fails)
            let candidates = all.filter { !needed.contains($0) }
            missing = minimalFailingSubset(candidates) { absent in fails(all.filter { !absent.contains($0) }) }
            replay = all.filter { !missing.contains($0) }
        }
        let id = CrashStateID(
            model: model, point: point.recorded.point.number, fingerprint: point.fingerprint,
            present: model.isSnapshotOnly ? [] : replay.map { point.units[$0].unit.number })
        failures.append(
            CrashFailure(
                point: point.recorded.point, message: "\(error)", present: needed.map { point.units[$0].unit },
                absent: missing.map { point.units[$0].unit }, acknowledgedAtRisk: point.acknowledgedSinceLastSync,
                inFlight: point.promises.inFlight, replayID: id, occurrences: 1))
    }

    /// What groups failures: the place of a failed requirement, or the
    /// type and text of any other error.
    static func cause(of error: any Error) -> String {
        if let failure = error as? CrashCheckFailure { return "\(failure.fileID):\(failure.line)" }
        return "\(String(reflecting: type(of: error))): \(error)"
    }

    func report(pointsRecorded: Int, minimisationChecks: Int) -> CrashReport<Acknowledgement> {
        let verdict: CrashReport<Acknowledgement>.Verdict =
            !failures.isEmpty ? .failed : (budgetCut != nil || uncovered > 0 ? .notMeasured : .passed)
        return CrashReport(
            model: model, strategy: strategy, verdict: verdict, failures: failures, coverage: coverage,
            pointsRecorded: pointsRecorded, imagesChecked: imagesChecked, duplicatesSkipped: duplicatesSkipped,
            minimisationChecks: minimisationChecks - imagesChecked,
            budgetCut: budgetCut ?? (uncovered > 0 ? "\(uncovered) crash points had more units than the strategy covers" : nil))
    }
}

extension CrashFailure {
    func counted() -> CrashFailure {
        CrashFailure(
            point: point, message: message, present: present, absent: absent, acknowledgedAtRisk: acknowledgedAtRisk,
            inFlight: inFlight, replayID: replayID, occurrences: occurrences + 1)
    }
}
