import Testing

extension CrashReport {
    /// Records each failure as a Swift Testing issue of the running test,
    /// with its replay ID, and, unless `allowingBudgetCut`, an issue when the
    /// verdict is ``Verdict/notMeasured``: a budget cut is never a silent pass.
    public func recordIssues(allowingBudgetCut: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
        for failure in failures {
            Issue.record(Comment(rawValue: failure.description), sourceLocation: sourceLocation)
        }
        if verdict == .notMeasured && !allowingBudgetCut {
            Issue.record(
                Comment(rawValue: "crash lab: not measured (\(budgetCut ?? "a crash point had no images")): \(description)"),
                sourceLocation: sourceLocation)
        }
    }
}
