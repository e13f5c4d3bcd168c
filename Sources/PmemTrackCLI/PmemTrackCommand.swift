import ArgumentParser

/// `pmemtrack`: run example fsync workloads on a tracked mapping, measure how
/// the flush set grows under three cleaning policies, and report what this
/// system offers for persistent memory.
@main
struct PmemTrackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pmemtrack",
        abstract: "Exercise PmemTrack: example workloads, the flush-set growth experiment, a system report, and the crash lab.",
        subcommands: [WorkloadCommand.self, GrowthCommand.self, DoctorCommand.self, CrashCommand.self],
        defaultSubcommand: WorkloadCommand.self
    )
}
