import ArgumentParser
import Testing
@testable import PmemTrackCLI

@Suite("pmemtrack crash")
struct CrashCommandTests {
    /// Bad arguments are rows of the bad-input table
    /// (PmemTrackTests/BadInputTests.swift), run through the built tool.
    @Test("wal passes; a seeded bug exits 1")
    func exitStatus() throws {
        try CrashCommand.parse(["wal", "--tracking", "mprotect"]).run()
        #expect(throws: ExitCode(1)) { try CrashCommand.parse(["--bug", "acknowledge-before-sync", "--tracking", "mprotect"]).run() }
        #expect(throws: ExitCode(1)) { try CrashCommand.parse(["--bug", "commit-word-straddles", "--model", "page-cache-512"]).run() }
        try CrashCommand.parse(["--list-bugs"]).run()
    }
}
