import ArgumentParser
import Foundation

/// `pmemtrack doctor PATH`: what this system offers PmemTrack at PATH.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Report whether PATH is persistent memory and what the CPU and kernel offer.",
        discussion: """
            PATH may be a directory, probed with a temporary file made in it and removed, or an \
            existing file, mapped without being written.
            """
    )

    @Argument(help: "A directory or file on the file system to examine.")
    var path: String = "."

    func run() throws {
        let report = try SystemReport(path: path)
        print(Report.table(report.rows))
    }
}
